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
