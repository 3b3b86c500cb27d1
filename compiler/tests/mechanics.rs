//! Language v2's event mechanics (docs/language.md), one test per edge: `within D of`,
//! `up to N per D`, `distinct`, `reset`, `ask` — through the real compiler and engine.

#[path = "common/scoring.rs"]
mod scoring;

use scoring::*;
use serde_json::{json, Value};

fn with(ty: &str, d: f64, props: Value) -> (&str, String, Value, Value) {
    (ty, day(d), json!({}), props)
}

const HOUR: f64 = 1.0 / 24.0;

#[test]
fn within_of_fires_only_after_an_earlier_event_inside_the_window_both_ends_included() {
    let src = "when email.replied within 24h of email.sent add 10";
    // Exactly 24 hours after the send: inside.
    assert_eq!(
        total(src, &[ev("email.sent", 0.0), ev("email.replied", 1.0)], 2.0),
        10
    );
    // A microsecond later than 24 hours: outside.
    let late = vec![
        ev("email.sent", 0.0),
        (
            "email.replied",
            time_plus(day(1.0), 1),
            json!({}),
            json!({}),
        ),
    ];
    assert_eq!(total(src, &late, 2.0), 0);
    // At the same instant as the send: inside.
    assert_eq!(
        total(src, &[ev("email.sent", 3.0), ev("email.replied", 3.0)], 4.0),
        10
    );
    // A reply with no send before it, and a send after the reply: nothing.
    assert_eq!(total(src, &[ev("email.replied", 1.0)], 2.0), 0);
    assert_eq!(
        total(src, &[ev("email.replied", 1.0), ev("email.sent", 1.5)], 2.0),
        0
    );
    // The latest send counts: a reply 30 hours after the first and 6 after the second.
    assert_eq!(
        total(
            src,
            &[
                ev("email.sent", 0.0),
                ev("email.sent", 1.0),
                ev("email.replied", 1.25)
            ],
            2.0
        ),
        10
    );
}

fn time_plus(at: String, micros: i64) -> String {
    leadscore_runtime::time::format(t(&at) + micros)
}

#[test]
fn within_of_filters_the_earlier_event_and_combines_with_each_and_max() {
    let src =
        "when email.replied within 2d of email.sent where campaign = \"spring\" add 5 each max 10";
    let evs = [
        with("email.sent", 0.0, json!({"campaign": "autumn"})),
        ev("email.replied", 0.5),
        with("email.sent", 1.0, json!({"campaign": "Spring"})),
        ev("email.replied", 1.5),
        ev("email.replied", 2.0),
        ev("email.replied", 2.5),
    ];
    // The autumn send opens no window; the spring one (folded) does: three replies in it,
    // capped at 10.
    assert_eq!(total(src, &evs, 3.0), 10);
    assert_eq!(total(src, &evs[..4], 3.0), 5);
    // Three days after the spring send the window is closed.
    let mut later = evs[..3].to_vec();
    later.push(ev("email.replied", 3.5));
    assert_eq!(total(src, &later, 4.0), 0);
}

#[test]
fn a_cap_per_period_counts_the_awards_in_the_half_open_period_before_each_event() {
    let src = "when page.viewed add 10 each up to 20 per 1d";
    // Three views on day 0: two award. Exactly one day after the first, the first has
    // left the period (at − D is not in it): a third award.
    let evs = [
        ev("page.viewed", 0.0),
        ev("page.viewed", 0.25),
        ev("page.viewed", 0.5),
        ev("page.viewed", 1.0),
    ];
    assert_eq!(total(src, &evs[..3], 0.6), 20);
    assert_eq!(total(src, &evs, 1.1), 30);
    // Just before the day is over the first still counts.
    let early = [
        ev("page.viewed", 0.0),
        ev("page.viewed", 0.25),
        ("page.viewed", time_plus(day(1.0), -1), json!({}), json!({})),
    ];
    assert_eq!(total(src, &early, 1.1), 20);
    // A refused event does not count against the period: awards at 0 and 0.5, refused at
    // 0.9, and at 1.2 only the award at 0.5 is still in the period.
    let refused = [
        ev("page.viewed", 0.0),
        ev("page.viewed", 0.5),
        ev("page.viewed", 0.9),
        ev("page.viewed", 1.2),
        ev("page.viewed", 1.3),
    ];
    assert_eq!(total(src, &refused[..4], 1.25), 30);
    assert_eq!(total(src, &refused, 1.35), 30);
    // With `max`, the rule's total is capped too, as the contract's example.
    let capped =
        "when page.viewed where url contains \"/pricing\" add 10 each up to 10 per 1d max 50";
    let daily: Vec<_> = (0..8)
        .flat_map(|d| {
            [
                with("page.viewed", f64::from(d), json!({"url": "/pricing"})),
                with(
                    "page.viewed",
                    f64::from(d) + HOUR,
                    json!({"url": "/pricing"}),
                ),
            ]
        })
        .collect();
    assert_eq!(total(capped, &daily[..6], 3.0), 30);
    assert_eq!(total(capped, &daily, 9.0), 50);
}

#[test]
fn distinct_awards_once_per_value_and_not_without_it() {
    let src = "when email.opened add 2 each distinct email_id max 20";
    let evs = [
        with("email.opened", 0.0, json!({"email_id": "welcome"})),
        with("email.opened", 0.1, json!({"email_id": "WELCOME"})),
        with("email.opened", 0.2, json!({"email_id": "offer"})),
        with("email.opened", 0.3, json!({})),
        with("email.opened", 0.4, json!({"email_id": 7})),
        with("email.opened", 0.5, json!({"email_id": "7"})),
    ];
    // welcome (folded, once), offer, 7 (number and text are the same value).
    assert_eq!(total(src, &evs, 1.0), 6);
    // Capped by max: 15 different emails, 10 awards.
    let many: Vec<_> = (0..15)
        .map(|i| {
            with(
                "email.opened",
                f64::from(i) * 0.1,
                json!({"email_id": format!("m{i}")}),
            )
        })
        .collect();
    assert_eq!(total(src, &many, 2.0), 20);
}

#[test]
fn a_reset_clears_the_score_s_event_awards_up_to_it_and_later_events_earn_again() {
    let src = "score engagement\nscore fit\nwhen country = \"DE\" add 30 to fit\nwhen email.opened add 5 each max 15 to engagement\nwhen site.visited count >= 2 within 7d add 20 to engagement\nwhen deal.lost reset engagement\nwhen call.completed add 7 to fit\ngrade A when score >= 1000\ngrade C otherwise\n";
    let p = program(src);
    let mut evs = vec![
        attrs(0.0, json!({"country": "DE"})),
        ev("call.completed", 0.0),
        ev("email.opened", 0.0),
        ev("email.opened", 0.1),
        ev("site.visited", 0.2),
        ev("site.visited", 0.3),
    ];
    let before = run(&p, &events(&evs), &day(1.0));
    assert_eq!(before.scores, [30, 37]);
    // The reset: engagement's event awards are gone; fit (a field rule and an event rule
    // of another score) is not touched.
    evs.push(ev("deal.lost", 0.5));
    let after = run(&p, &events(&evs), &day(1.0));
    assert_eq!(after.scores, [0, 37]);
    // A later event earns again, and the window counts afresh: one visit is not two.
    evs.push(ev("email.opened", 0.6));
    evs.push(ev("site.visited", 0.7));
    let again = run(&p, &events(&evs), &day(1.0));
    assert_eq!(again.scores, [5, 37]);
    evs.push(ev("site.visited", 0.8));
    assert_eq!(run(&p, &events(&evs), &day(1.0)).scores, [25, 37]);
    // The cap counts afresh too: three more opens reach max 15 again.
    evs.extend([
        ev("email.opened", 0.9),
        ev("email.opened", 0.95),
        ev("email.opened", 0.97),
    ]);
    assert_eq!(run(&p, &events(&evs), &day(1.0)).scores, [35, 37]);
}

#[test]
fn a_reset_at_an_instant_also_clears_that_instant_s_awards_before_it_in_arrival_order() {
    let src = "when email.opened add 5 each\nwhen deal.lost reset score\n";
    let evs = [
        ev("email.opened", 1.0),
        ev("deal.lost", 1.0),
        ev("email.opened", 1.0),
    ];
    // The open before the reset (same instant, earlier arrival) is cleared; the one after
    // counts.
    assert_eq!(total(src, &evs, 2.0), 5);
}

#[test]
fn ask_lists_the_rules_that_give_nothing_yet_in_source_order() {
    let src = "score clarity\nwhen quantity is set add 1 to clarity ask \"How many units do you plan to order?\"\nwhen delivery_time is set add 1 to clarity ask \"When do you need them?\"\nwhen email.replied add 1 to clarity ask \"Did they reply?\"\ngrade A when clarity >= 3\ngrade C otherwise\n";
    let p = program(src);
    let none = run(&p, &events(&[attrs(0.0, json!({"name": "x"}))]), &day(1.0));
    assert_eq!(
        none.questions,
        [
            (2, "How many units do you plan to order?".to_string()),
            (3, "When do you need them?".to_string()),
            (4, "Did they reply?".to_string())
        ]
    );
    let some = run(
        &p,
        &events(&[
            attrs(0.0, json!({"quantity": 500})),
            ev("email.replied", 0.5),
        ]),
        &day(1.0),
    );
    assert_eq!(some.questions, [(3, "When do you need them?".to_string())]);
    // A program without `ask` has no open questions at all (the key is left out).
    let plain = program("when quantity is set add 1\ngrade A when score >= 1\ngrade C otherwise\n");
    assert_eq!(leadscore_runtime::view::questions(&plain, &[]), None);
}

#[test]
fn decay_takes_p_percent_of_each_award_every_period_truncated_on_its_own() {
    let src = "score engagement decay 25% every 90d\nwhen form.submitted add 100 to engagement\n";
    let one = [ev("form.submitted", 0.0)];
    let at = |d: f64| total(src, &one, d);
    // 100 until the 90th day, then 75, 56 (56.25), 42 (42.1875), 31 (31.64…).
    assert_eq!(at(89.99), 100);
    assert_eq!(at(90.0), 75);
    assert_eq!(at(180.0), 56);
    assert_eq!(at(270.0), 42);
    assert_eq!(at(360.0), 31);
    // `each`: every award on its own clock.
    let each =
        "score engagement decay 25% every 90d\nwhen form.submitted add 100 each to engagement\n";
    let two = [ev("form.submitted", 0.0), ev("form.submitted", 45.0)];
    assert_eq!(total(each, &two, 90.0), 175);
    assert_eq!(total(each, &two, 135.0), 150);
    // Exact where floating point is not: 70% of 10 is 7, of 100 is 70, then 49, 34.
    let thirty = "when x add 10 decay 30% every 1d\nwhen y add 100 decay 30% every 1d\n";
    assert_eq!(total(thirty, &[ev("x", 0.0)], 1.0), 7);
    assert_eq!(total(thirty, &[ev("y", 0.0)], 1.0), 70);
    assert_eq!(total(thirty, &[ev("y", 0.0)], 2.0), 49);
    assert_eq!(total(thirty, &[ev("y", 0.0)], 3.0), 34);
    // Past what 128-bit integers hold (100^20), floating point: 1,000,000 × 0.99^20 =
    // 817,906.9…
    let slow = "when x add 1000000 decay 1% every 1d\n";
    assert_eq!(total(slow, &[ev("x", 0.0)], 11.0), 895_338); // exact: 0.99^11 = 0.8953382…
    assert_eq!(total(slow, &[ev("x", 0.0)], 20.0), 817_906);
}

#[test]
fn max_caps_the_decayed_sum_and_a_rule_s_own_decay_overrides_its_score_s() {
    let src = "score s decay 25% every 90d\nwhen ping add 10 each max 20 decay 50% every 1d to s\nwhen form add 100 to s\n";
    let four: Vec<_> = (0..4).map(|_| ev("ping", 0.0)).collect();
    // 4 × 10 capped at 20; day 1: 4 × 5 = 20; day 2: 4 × 2 (2.5 truncated) = 8.
    assert_eq!(total(src, &four, 0.5), 20);
    assert_eq!(total(src, &four, 1.0), 20);
    assert_eq!(total(src, &four, 2.0), 8);
    // The form follows the score's 25% every 90 days.
    assert_eq!(total(src, &[ev("form", 0.0)], 2.0), 100);
    assert_eq!(total(src, &[ev("form", 0.0)], 90.0), 75);
    // Field rules in a decaying score do not decay.
    let field = "score s decay 50% every 1d\nwhen country = \"DE\" add 30 to s\n";
    assert_eq!(
        total(field, &[attrs(0.0, json!({"country": "DE"}))], 10.0),
        30
    );
}

#[test]
fn a_decayed_award_worth_nothing_is_dropped_and_time_transitions_land_on_period_edges() {
    let src = "score s decay 50% every 1d\nwhen ping add 8 each to s\ngrade A when s >= 8\ngrade B otherwise\n";
    let p = program(src);
    let evs = events(&(0..50).map(|_| ev("ping", 0.0)).collect::<Vec<_>>());
    let mut engine = leadscore_runtime::engine::Engine::new(&p);
    let mut tr = Vec::new();
    let lead = engine.rebuild("l", &evs, t(&day(30.0)), &mut tr).unwrap();
    // 8, 4, 2, 1, 0: four days later every award is worth nothing.
    assert_eq!(engine.evaluate(&lead, t(&day(30.0)), None).total, 0);
    let later = events(&[ev("ping", 30.0)]);
    let mut lead = lead;
    engine.apply(&mut lead, &later[0], &mut Vec::new()).unwrap();
    assert_eq!(
        lead.rules[0].1.awards.len(),
        1,
        "the worthless awards are gone"
    );
    // 50 awards of 8 → 4 → 2 → 1 → 0: the lead leaves A at day 4 exactly.
    let r = run(&p, &evs, &day(30.0));
    let last = r.transitions.last().unwrap();
    assert_eq!((last.1.as_str(), last.3.as_str()), ("B", "time"));
    assert_eq!(t(&last.2), t(&day(4.0)));
}

#[test]
fn a_time_award_is_made_once_per_spell_and_kept_after_the_lead_is_active_again() {
    let src = "score engagement\nafter inactive for 30d subtract 10 from engagement\nwhen email.opened add 1 each to engagement\n";
    let first = [ev("email.opened", 0.0)];
    assert_eq!(total(src, &first, 29.99), 1);
    assert_eq!(total(src, &first, 30.0), -9);
    assert_eq!(total(src, &first, 60.0), -9, "once per spell");
    let back = [ev("email.opened", 0.0), ev("email.opened", 40.0)];
    assert_eq!(
        total(src, &back, 41.0),
        -8,
        "kept after the lead is active again"
    );
    assert_eq!(total(src, &back, 69.99), -8);
    assert_eq!(total(src, &back, 70.0), -18, "a new spell");
    // An event exactly at the instant the award was due ends the spell first.
    let tie = [ev("email.opened", 0.0), ev("email.opened", 30.0)];
    assert_eq!(total(src, &tie, 31.0), 2);
}

#[test]
fn a_repeating_time_award_comes_every_period_of_a_spell_up_to_its_max() {
    let src = "score behavior\nafter inactive for 30d subtract 5 every 7d max 30 from behavior\nwhen site.visited add 100 to behavior\n";
    let one = [ev("site.visited", 0.0)];
    // At 30, 37, 44, 51, 58 and 65 days; never more than 30 in all.
    for (d, want) in [
        (29.9, 100),
        (30.0, 95),
        (36.9, 95),
        (37.0, 90),
        (44.0, 85),
        (65.0, 70),
        (200.0, 70),
    ] {
        assert_eq!(total(src, &one, d), want, "day {d}");
    }
    // The max bounds the rule's total across spells too.
    let again = [ev("site.visited", 0.0), ev("site.visited", 100.0)];
    assert_eq!(total(src, &again, 300.0), 70);
    // Interrupted at day 40 (two awards made), the next spell starts from that event.
    let cut = [ev("site.visited", 0.0), ev("site.visited", 40.0)];
    assert_eq!(total(src, &cut, 69.9), 90);
    assert_eq!(total(src, &cut, 70.0), 85);
    // The transition out of A happens at the award's exact instant, caused by time.
    let p = program(&format!(
        "{src}grade A when behavior >= 90\ngrade B otherwise\n"
    ));
    let r = run(&p, &events(&one), &day(100.0));
    let last = r.transitions.last().unwrap();
    assert_eq!(
        (last.0.as_deref(), last.1.as_str(), last.3.as_str()),
        (Some("A"), "B", "time")
    );
    assert_eq!(t(&last.2), t(&day(44.0)));
    // Its explanation line is the rule's own.
    assert!(
        r.contributions.contains(&(Some(2), -30)),
        "{:?}",
        r.contributions
    );
}

#[test]
fn a_reset_forgets_the_score_s_time_awards_too() {
    let src = "score engagement\nafter inactive for 1d subtract 10 from engagement\nwhen deal.lost reset engagement\nwhen ping add 1 to engagement\n";
    let evs = [ev("ping", 0.0), ev("deal.lost", 2.0)];
    assert_eq!(total(src, &evs[..1], 2.5), -9);
    assert_eq!(total(src, &evs, 2.5), 0);
}

/// Issue 18's contract (compiler/tests/data/ok/language-v2-contract.rules) over one lead's
/// months, worked by hand.
#[test]
fn the_language_v2_contract_scores_a_lead_as_worked_by_hand() {
    let p = program(include_str!("data/ok/language-v2-contract.rules"));
    let pricing = json!({"url": "https://x.example/pricing"});
    let mut evs = vec![
        ev("email.sent", 0.0),
        ev("email.replied", 0.5), // within 24h of the send: +10 engagement
        with("email.opened", 0.6, json!({"email_id": "a"})), // +2
        with("email.opened", 0.7, json!({"email_id": "a"})), // the same email: nothing
        with("email.opened", 0.8, json!({"email_id": "b"})), // +2
        with("page.viewed", 1.0, pricing.clone()), // +10
        with("page.viewed", 1.1, pricing.clone()), // the day's cap is reached
        with("page.viewed", 2.0, pricing.clone()), // +10
    ];
    evs.extend((0..5).map(|i| ev("site.visited", 3.0 + f64::from(i) * 0.1))); // +10 at the fifth
    evs.push(ev("demo.requested", 3.5)); // +50
    let scores = |r: &Result| {
        let s = |n: &str| r.scores[p.score_index(n).unwrap().index()];
        (s("engagement"), s("behavior"), r.total)
    };
    let r = run(&p, &events(&evs), &day(4.0));
    assert_eq!(scores(&r), (14, 80, 94));
    assert_eq!(r.grade, "Nurture");
    assert_eq!(
        r.questions,
        [(34, "How many units do you plan to order?".to_string())]
    );
    evs.push(with("page.viewed", 4.0, pricing.clone()));
    evs.push(with("page.viewed", 5.0, pricing));
    let r = run(&p, &events(&evs), &day(5.5));
    assert_eq!((scores(&r), r.grade.as_str()), ((14, 100, 114), "MQL"));
    // 30 days of silence from day 5: engagement −10 once, behavior −5 at 35, 42, … up to
    // −30; MQL is never left.
    let r = run(&p, &events(&evs), &day(36.0));
    assert_eq!((scores(&r), r.grade.as_str()), ((4, 95, 99), "MQL"));
    // Day 100: the event awards have decayed once (10 → 7, 2 → 1, 2 → 1), −10 → −1,
    // clamped to 0; behavior 100 − 30.
    let r = run(&p, &events(&evs), &day(100.0));
    assert_eq!((scores(&r), r.grade.as_str()), ((0, 70, 70), "MQL"));
    // A lost deal resets engagement: its event and time awards are gone.
    evs.push(ev("deal.lost", 100.0));
    evs.push(attrs(100.0, json!({"quantity": 500})));
    let r = run(&p, &events(&evs), &day(100.5));
    assert_eq!(scores(&r), (0, 70, 70));
    assert!(r.questions.is_empty());
}

/// With fixed points and `max M`, only the newest M awards are kept: they decide the
/// capped sum now and later.
#[test]
fn a_decaying_rule_with_max_keeps_only_the_newest_max_awards() {
    let src = "when ping add 10 each max 30 decay 50% every 1d\n";
    let p = program(&format!(
        "{src}grade A when score >= 1000\ngrade C otherwise\n"
    ));
    let evs = events(
        &(0..100)
            .map(|i| ev("ping", f64::from(i) * 0.01))
            .collect::<Vec<_>>(),
    );
    let mut engine = leadscore_runtime::engine::Engine::new(&p);
    let lead = engine
        .rebuild("l", &evs, t(&day(1.0)), &mut Vec::new())
        .unwrap();
    assert_eq!(lead.rules[0].1.awards.len(), 30);
    for d in [1.0, 2.0, 3.0, 4.5] {
        let all: i64 = (0..100)
            .map(|i| {
                let k = ((d - f64::from(i) * 0.01) + 1e-9).floor() as u32;
                10 >> k.min(63)
            })
            .sum::<i64>()
            .min(30);
        assert_eq!(
            total(
                src,
                &(0..100)
                    .map(|i| ev("ping", f64::from(i) * 0.01))
                    .collect::<Vec<_>>(),
                d
            ),
            all,
            "day {d}"
        );
    }
}
