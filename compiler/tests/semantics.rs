//! One test per semantic of the language (docs/language.md), through the real compiler
//! and engine.

#[path = "common/scoring.rs"]
mod scoring;

use leadscore_runtime::bytecode::Program;
use leadscore_runtime::engine::{Cause, Engine, Ingested};
use leadscore_runtime::event::Event;
use leadscore_runtime::state::LeadState;
use leadscore_runtime::time;
use scoring::*;
use serde_json::json;

#[test]
fn field_rules_never_double_count_and_follow_current_attributes() {
    let r = "when country = \"US\" add 30";
    let evs = [
        attrs(0.0, json!({"country": "US"})),
        attrs(1.0, json!({"country": "DE"})),
        attrs(2.0, json!({"country": "us"})),
        attrs(3.0, json!({"title": "x"})),
    ];
    assert_eq!(total(r, &evs, 5.0), 30);
    assert_eq!(total(r, &evs[..2], 5.0), 0);
    // null removes the attribute: the points go away.
    let removed = [
        attrs(0.0, json!({"country": "US"})),
        attrs(1.0, json!({"country": null})),
    ];
    assert_eq!(total(r, &removed, 5.0), 0);
}

#[test]
fn blank_values_count_as_not_set() {
    let r = "when website is set add 10\nwhen website is not set add 1\nwhen tags is set add 100";
    assert_eq!(
        total(r, &[attrs(0.0, json!({"website": "   ", "tags": []}))], 1.0),
        1
    );
    assert_eq!(
        total(
            r,
            &[attrs(0.0, json!({"website": "acme.de", "tags": ["a"]}))],
            1.0
        ),
        110
    );
}

#[test]
fn missing_fields_make_every_comparison_false() {
    let r = "when country != \"US\" add 1\nwhen country not in [\"US\"] add 10\nwhen not (country in [\"US\"]) add 100\nwhen employees < 50 add 1000";
    assert_eq!(total(r, &[attrs(0.0, json!({}))], 1.0), 100);
    assert_eq!(
        total(
            r,
            &[attrs(0.0, json!({"country": "DE", "employees": 10}))],
            1.0
        ),
        1111
    );
}

#[test]
fn lists_satisfy_a_test_when_any_element_does() {
    let r = "when product in [\"b\"] add 1\nwhen product = \"c\" add 10\nwhen product != \"a\" add 100\nwhen product contains \"x\" add 1000";
    assert_eq!(
        total(r, &[attrs(0.0, json!({"product": ["a", "B", "xyz"]}))], 1.0),
        1001
    );
    assert_eq!(total(r, &[attrs(0.0, json!({"product": ["c"]}))], 1.0), 110);
}

#[test]
fn numbers_and_numeric_text_compare_numerically() {
    let r = "when employees < 50 add 1\nwhen employees >= 50 add 10\nwhen zip = \"10115\" add 100";
    assert_eq!(total(r, &[attrs(0.0, json!({"employees": "30"}))], 1.0), 1);
    assert_eq!(total(r, &[attrs(0.0, json!({"employees": 50.0}))], 1.0), 10);
    assert_eq!(
        total(r, &[attrs(0.0, json!({"employees": "fifty"}))], 1.0),
        0
    );
    assert_eq!(total(r, &[attrs(0.0, json!({"zip": 10115}))], 1.0), 100);
}

#[test]
fn text_is_compared_with_unicode_case_folding_and_whole_words() {
    let r = "when street contains \"STRASSE\" add 1\nwhen message contains word \"MOQ\" add 10\nwhen message contains any [\"预算\"] add 100";
    assert_eq!(
        total(
            r,
            &[attrs(
                0.0,
                json!({"street": "Hauptstraße 1", "message": "Unsere moqueta, 预算充足"})
            )],
            1.0
        ),
        101
    );
    assert_eq!(
        total(
            r,
            &[attrs(0.0, json!({"message": "What is your MOQ?"}))],
            1.0
        ),
        10
    );
}

#[test]
fn booleans_read_checkbox_and_spreadsheet_text() {
    let r =
        "when a = true add 1\nwhen b = true add 10\nwhen c = false add 100\nwhen d = true add 1000";
    assert_eq!(
        total(
            r,
            &[attrs(
                0.0,
                json!({"a": true, "b": "on", "c": "No", "d": "maybe"})
            )],
            1.0
        ),
        111
    );
}

#[test]
fn once_versus_each_and_a_cap_reached_mid_event() {
    let evs = [
        ev("email.opened", 0.0),
        ev("email.opened", 1.0),
        ev("email.opened", 2.0),
    ];
    assert_eq!(total("when email.opened add 5", &evs, 3.0), 5);
    assert_eq!(total("when email.opened add 5 each", &evs, 3.0), 15);
    // 10 + 10 + 10 = 30 is cut to 25 by the third event.
    assert_eq!(total("when email.opened add 10 each max 25", &evs, 3.0), 25);
    assert_eq!(
        total("when email.opened subtract 10 each max 25", &evs, 3.0),
        -25
    );
}

#[test]
fn expiry_counts_awards_younger_than_the_duration() {
    let r = "when email.clicked add 10 each max 30 expires after 90d";
    let evs = [
        ev("email.clicked", 0.0),
        ev("email.clicked", 10.0),
        ev("email.clicked", 20.0),
        ev("email.clicked", 30.0),
    ];
    assert_eq!(total(r, &evs, 31.0), 30);
    // At day 100 the day-0 and day-10 awards have expired; at exactly day 110 so has day 20.
    assert_eq!(total(r, &evs, 100.0), 20);
    assert_eq!(total(r, &evs, 109.999), 20);
    assert_eq!(total(r, &evs, 110.0), 10);
    assert_eq!(total(r, &evs, 120.0), 0);
    // Expired awards free room under max: a new click on day 115 counts again.
    let mut more = evs.to_vec();
    more.push(ev("email.clicked", 115.0));
    assert_eq!(total(r, &more, 115.0), 20);
}

#[test]
fn window_counts_events_inside_at_minus_d_to_at() {
    let r = "when site.visited count >= 3 within 7d add 15";
    // The third visit exactly 7 days after the first: the first is outside (at - 7d, at].
    let edge = [
        ev("site.visited", 0.0),
        ev("site.visited", 3.0),
        ev("site.visited", 7.0),
    ];
    assert_eq!(total(r, &edge, 8.0), 0);
    let inside = [
        ev("site.visited", 0.0),
        ev("site.visited", 3.0),
        ev("site.visited", 6.999),
    ];
    assert_eq!(total(r, &inside, 8.0), 15);
    // It awards once and keeps its points.
    let many = [
        ev("site.visited", 0.0),
        ev("site.visited", 1.0),
        ev("site.visited", 2.0),
        ev("site.visited", 3.0),
        ev("site.visited", 4.0),
    ];
    assert_eq!(total(r, &many, 400.0), 15);
    // A later burst still fires after a slow start.
    let late = [
        ev("site.visited", 0.0),
        ev("site.visited", 10.0),
        ev("site.visited", 20.0),
        ev("site.visited", 21.0),
        ev("site.visited", 22.0),
    ];
    assert_eq!(total(r, &late, 23.0), 15);
}

#[test]
fn inactivity_holds_from_the_exact_instant_and_an_event_ends_it() {
    let p = program("when x.y add 50\nwhen inactive for 30d subtract 10\ngrade A when score >= 50\ngrade B otherwise\ntag cold when inactive for 30d\n");
    let evs = events(&[ev("x.y", 0.0)]);
    let before = run(&p, &evs, &day(29.999));
    assert_eq!((before.total, before.grade.as_str()), (50, "A"));
    let at = run(&p, &evs, &day(30.0));
    assert_eq!(
        (at.total, at.grade.as_str(), at.tags.clone()),
        (40, "B", vec!["cold".to_string()])
    );
    assert_eq!(
        at.transitions[1],
        (Some("A".into()), "B".into(), day(30.0), "time".into())
    );
    // An event after the threshold ends the inactivity: back to A, caused by the event.
    let evs = events(&[ev("x.y", 0.0), ev("z.z", 40.0)]);
    let r = run(&p, &evs, &day(41.0));
    assert_eq!(r.grade, "A");
    let causes: Vec<&str> = r.transitions.iter().map(|t| t.3.as_str()).collect();
    assert_eq!(causes, ["event e0", "time", "event e1"]);
    // An event exactly at the threshold: the lead was never inactive.
    let evs = events(&[ev("x.y", 0.0), ev("z.z", 30.0)]);
    assert_eq!(run(&p, &evs, &day(31.0)).transitions.len(), 1);
}

#[test]
fn range_clamps_the_sum_not_each_step() {
    // Step by step: 50, 60 (clamped), then -30 = 30. As a sum: 70, clamped to 60.
    let p = program("score e range 0..60\nwhen a.a add 50 to e\nwhen b.b add 50 to e\nwhen inactive for 1d subtract 30 from e\ngrade A when score >= 60\ngrade C otherwise\n");
    let r = run(&p, &events(&[ev("a.a", 0.0), ev("b.b", 0.5)]), &day(10.0));
    assert_eq!((r.total, r.grade.as_str()), (60, "A"));
    // The explanation adds up thanks to the clamp line.
    assert_eq!(
        r.contributions,
        vec![(Some(2), 50), (Some(3), 50), (Some(4), -30), (None, -10)]
    );
    assert_eq!(r.contributions.iter().map(|c| c.1).sum::<i64>(), r.total);
}

#[test]
fn totals_can_be_negative_and_named_scores_add_up() {
    let p = program("score fit\nscore eng\nwhen a = 1 subtract 10 from fit\nwhen x.x subtract 5 each from eng\ngrade A when fit + eng >= 0\ngrade C otherwise\n");
    let r = run(
        &p,
        &events(&[attrs(0.0, json!({"a": 1})), ev("x.x", 1.0), ev("x.x", 2.0)]),
        &day(3.0),
    );
    assert_eq!(
        (r.scores.clone(), r.total, r.grade.as_str()),
        (vec![-10, -10], -20, "C")
    );
}

#[test]
fn field_valued_points_truncate_and_cap() {
    let r = "when bonus is set add bonus max 20";
    assert_eq!(total(r, &[attrs(0.0, json!({"bonus": 12.9}))], 1.0), 12);
    assert_eq!(total(r, &[attrs(0.0, json!({"bonus": -3.5}))], 1.0), -3);
    assert_eq!(total(r, &[attrs(0.0, json!({"bonus": 50}))], 1.0), 20);
    assert_eq!(total(r, &[attrs(0.0, json!({"bonus": -50}))], 1.0), -20);
    assert_eq!(total(r, &[attrs(0.0, json!({"bonus": "lots"}))], 1.0), 0);
    // From an event's props, with each.
    let evs = [
        ("deal.sized", day(0.0), json!({}), json!({"amount": 7})),
        ("deal.sized", day(1.0), json!({}), json!({"amount": "8.9"})),
    ];
    assert_eq!(total("when deal.sized add amount each", &evs, 2.0), 15);
}

#[test]
fn if_guards_current_attributes_for_field_rules_and_event_time_for_event_rules() {
    let r = "if country in [\"US\"] {\n  when title = \"ceo\" add 10\n  when call.done add 20\n}";
    let evs = [
        attrs(0.0, json!({"country": "US", "title": "CEO"})),
        ev("call.done", 1.0),
        attrs(2.0, json!({"country": "DE"})),
    ];
    // The field rule's points go with the country; the call's points were earned.
    assert_eq!(total(r, &evs, 3.0), 20);
    assert_eq!(total(r, &evs[..2], 3.0), 30);
    // A call before the lead was in the market earns nothing, even once it is.
    let early = [ev("call.done", 0.0), attrs(1.0, json!({"country": "US"}))];
    assert_eq!(total(r, &early, 2.0), 0);
}

#[test]
fn where_reads_props_and_lead_attributes_at_the_event() {
    let r = "when call.done where minutes >= 5 and lead.country = \"US\" add 20";
    let call = |d: f64, m: i64| ("call.done", day(d), json!({}), json!({"minutes": m}));
    assert_eq!(
        total(
            r,
            &[
                attrs(0.0, json!({"country": "US"})),
                call(1.0, 4),
                call(2.0, 5)
            ],
            3.0
        ),
        20
    );
    assert_eq!(
        total(
            r,
            &[call(1.0, 9), attrs(2.0, json!({"country": "US"}))],
            3.0
        ),
        0
    );
    // The event's own attributes apply before its rules run.
    let both = [(
        "call.done",
        day(1.0),
        json!({"country": "us"}),
        json!({"minutes": 6}),
    )];
    assert_eq!(total(r, &both, 3.0), 20);
}

#[test]
fn ties_keep_arrival_order() {
    let r = "when country = \"DE\" add 1";
    let same = [
        attrs(0.0, json!({"country": "US"})),
        attrs(0.0, json!({"country": "DE"})),
    ];
    assert_eq!(total(r, &same, 1.0), 1);
    let swapped = [
        attrs(0.0, json!({"country": "DE"})),
        attrs(0.0, json!({"country": "US"})),
    ];
    assert_eq!(total(r, &swapped, 1.0), 0);
}

#[test]
fn grades_first_match_and_transitions_start_from_null() {
    let p = program("when x.x add 10 each\ngrade A when score >= 30\ngrade B when score >= 20\ngrade C otherwise\ntag hot when grade = A\ntag warm when grade in [\"A\", \"B\"]\n");
    let r = run(
        &p,
        &events(&[ev("x.x", 0.0), ev("x.x", 1.0), ev("x.x", 2.0)]),
        &day(3.0),
    );
    assert_eq!(r.grade, "A");
    assert_eq!(r.tags, vec!["hot", "warm"]);
    let steps: Vec<(Option<String>, String)> = r
        .transitions
        .iter()
        .map(|t| (t.0.clone(), t.1.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (None, "C".into()),
            (Some("C".into()), "B".into()),
            (Some("B".into()), "A".into())
        ]
    );
}

#[test]
fn events_after_now_do_not_count() {
    assert_eq!(
        total(
            "when x.x add 5 each",
            &[ev("x.x", 0.0), ev("x.x", 5.0)],
            1.0
        ),
        5
    );
}

fn apply_all(engine: &mut Engine, p: &Program, evs: &[Event], now: i64) -> LeadState {
    let _ = p;
    let mut lead = engine.new_lead("l");
    let mut out = Vec::new();
    for (i, e) in evs.iter().enumerate() {
        engine
            .ingest(&mut lead, &evs[..=i], e, now, &mut out)
            .unwrap();
    }
    lead
}

#[test]
fn out_of_order_events_rebuild_to_the_same_state() {
    let p = program("when site.visited count >= 2 within 1d add 15\nwhen a = 1 add 1\ngrade A when score >= 16\ngrade C otherwise\n");
    let sorted = events(&[
        ev("site.visited", 0.0),
        attrs(0.5, json!({"a": 1})),
        ev("site.visited", 0.9),
    ]);
    let mut engine = Engine::new(&p);
    let now = t(&day(2.0));
    let straight = apply_all(&mut engine, &p, &sorted, now);
    // The 0.5 event arrives last.
    let mut lead = engine.new_lead("l");
    let mut out = Vec::new();
    engine
        .ingest(&mut lead, &[sorted[0].clone()], &sorted[0], now, &mut out)
        .unwrap();
    engine
        .ingest(
            &mut lead,
            &[sorted[0].clone(), sorted[2].clone()],
            &sorted[2],
            now,
            &mut out,
        )
        .unwrap();
    let how = engine
        .ingest(&mut lead, &sorted, &sorted[1], now, &mut out)
        .unwrap();
    assert_eq!(how, Ingested::Reordered);
    assert_eq!(lead, straight);
    assert_eq!(engine.evaluate(&lead, now, None).total, 16);
}

/// A late event rebuilds the lead; what is news is whether its grade is now another: one
/// transition, caused by the event, never before what was recorded; none if the grade
/// stays.
#[test]
fn a_late_event_records_one_transition_when_the_grade_changes() {
    let p = program("when x.x add 10 each\ngrade A when score >= 20\ngrade C otherwise\n");
    let mut engine = Engine::new(&p);
    let evs = events(&[ev("x.x", 1.0), ev("x.x", 0.5), ev("x.x", 0.2)]);
    let mut lead = engine.new_lead("l");
    let mut out = Vec::new();
    let now = t(&day(1.0));
    engine
        .ingest(&mut lead, &evs[..1], &evs[0], now, &mut out)
        .unwrap();
    assert_eq!(out.len(), 1, "null to C");
    let history = |n: &[usize]| {
        let mut h: Vec<_> = n.iter().map(|&i| evs[i].clone()).collect();
        h.sort_by_key(|e| e.at);
        h
    };
    // The 0.5 event arrives at 2.0: now A. Recorded once, at the instant the lead had been
    // evaluated to (1.0), not at 0.5 (before the recorded C) nor replayed from 0.
    let later = t(&day(2.0));
    let mut out = Vec::new();
    let how = engine
        .ingest(&mut lead, &history(&[0, 1]), &evs[1], later, &mut out)
        .unwrap();
    assert_eq!(how, Ingested::Reordered);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (
            out[0].from.map(|g| p.grades[g.index()].name.as_str()),
            p.grades[out[0].to.index()].name.as_str(),
            out[0].at,
            &out[0].cause
        ),
        (
            Some("C"),
            "A",
            t(&day(1.0)),
            &Cause::Event(evs[1].id.clone())
        )
    );
    // Another late one: still A, nothing to record.
    let mut out = Vec::new();
    engine
        .ingest(&mut lead, &history(&[0, 1, 2]), &evs[2], later, &mut out)
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(engine.evaluate(&lead, later, None).total, 30);
}

#[test]
fn a_state_made_by_another_program_is_rebuilt_with_a_rescore_transition() {
    let old = program("when x.x add 10\ngrade A when score >= 10\ngrade C otherwise\n");
    let new = program("when x.x add 5\ngrade A when score >= 10\ngrade C otherwise\n");
    let evs = events(&[ev("x.x", 0.0), ev("y.y", 1.0)]);
    let now = t(&day(2.0));
    let mut e_old = Engine::new(&old);
    let mut lead = apply_all(&mut e_old, &old, &evs[..1], now);
    assert_eq!(lead.grade_name.as_deref(), Some("A"));
    let mut e_new = Engine::new(&new);
    assert!(!e_new.is_current(&lead));
    let mut out = Vec::new();
    let how = e_new
        .ingest(&mut lead, &evs, &evs[1], now, &mut out)
        .unwrap();
    assert_eq!(how, Ingested::Rescored);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].cause, Cause::Rescore);
    assert_eq!(new.grades[out[0].to.index()].name, "C");
    assert!(e_new.is_current(&lead));
}

#[test]
fn stored_state_round_trips_and_replay_is_deterministic() {
    let p = program(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/001-zoho.rules"
        ))
        .unwrap(),
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/001-zoho.events.jsonl"
    ))
    .unwrap();
    let evs: Vec<Event> = text
        .lines()
        .map(|l| Event::from_json(&serde_json::from_str(l).unwrap()).unwrap())
        .filter(|e| e.lead == "buyer@acme.de")
        .collect::<Vec<_>>();
    let evs: Vec<Event> = evs
        .iter()
        .enumerate()
        .filter(|(i, e)| evs[..*i].iter().all(|x| x.id != e.id))
        .map(|(_, e)| e.clone())
        .collect();
    let now = t("2026-11-20T00:00:00Z");
    let mut engine = Engine::new(&p);
    let mut out = Vec::new();
    let a = engine
        .rebuild("buyer@acme.de", &evs, now, &mut out)
        .unwrap();
    let b = engine
        .rebuild("buyer@acme.de", &evs, now, &mut Vec::new())
        .unwrap();
    assert_eq!(a, b);
    // Store half-way, reload, continue: the same as never stopping.
    let mut half = engine
        .rebuild(
            "buyer@acme.de",
            &evs[..4],
            t(&time::format(evs[3].at)),
            &mut Vec::new(),
        )
        .unwrap();
    let json = serde_json::to_string(&half).unwrap();
    half = serde_json::from_str(&json).unwrap();
    engine.attach(&mut half);
    for e in &evs[4..] {
        engine.apply(&mut half, e, &mut Vec::new()).unwrap();
    }
    engine.advance(&mut half, now, &mut Vec::new());
    assert_eq!(
        engine.evaluate(&half, now, None),
        engine.evaluate(&a, now, None)
    );
    assert_eq!(half.rules, a.rules);
    assert!(json.contains("\"version\":3"));
    // A state stored before hysteresis (version 1) or before language v2's rule state
    // (version 2) is not current: it is rebuilt from the lead's events when next touched.
    for v in [1, 2] {
        let old: LeadState =
            serde_json::from_str(&json.replace("\"version\":3", &format!("\"version\":{v}")))
                .unwrap();
        assert!(!engine.is_current(&old));
    }
    assert!(engine.is_current(&half));
}

/// `grade A when C until X`: a lead enters A when C holds and stays in A until X holds,
/// so a score hovering at the threshold does not flap. Without `until` the same events
/// flap at every step.
#[test]
fn hysteresis_holds_a_grade_until_its_exit_condition() {
    // +4 per `up`, -3 per `down`: 68 after 17 ups, then 72, 69, 73, 70, 67, 64.
    let mut list = Vec::new();
    for i in 0..17 {
        list.push(ev("up", f64::from(i) * 0.01));
    }
    for (i, ty) in ["up", "down", "up", "down", "down", "down"]
        .iter()
        .enumerate()
    {
        list.push(ev(ty, 1.0 + i as f64));
    }
    let evs = events(&list);
    let grades = |src: &str| -> Vec<(Option<String>, String)> {
        run(&program(src), &evs, &day(10.0))
            .transitions
            .iter()
            .map(|t| (t.0.clone(), t.1.clone()))
            .collect()
    };
    let rules = "when up add 4 each\nwhen down subtract 3 each\n";
    let sticky = grades(&format!(
        "{rules}grade A when score >= 70 until score < 65\ngrade B otherwise\n"
    ));
    // 72 enters A; 69 and 66 stay (not below 65); 63 leaves.
    assert_eq!(
        sticky,
        vec![
            (None, "B".into()),
            (Some("B".into()), "A".into()),
            (Some("A".into()), "B".into())
        ]
    );
    let flapping = grades(&format!(
        "{rules}grade A when score >= 70\ngrade B otherwise\n"
    ));
    assert_eq!(flapping.len(), 5, "{flapping:?}");
}

/// The exit condition applies only to a lead already in the grade: grades above still win
/// first, and a lead falling from a higher grade into the band enters by the condition.
#[test]
fn hysteresis_keeps_first_match_order_and_applies_only_to_the_grade_held() {
    let src = "when up add 10 each\nwhen down subtract 10 each\nwhen crash subtract 50 each\ngrade A when score >= 90\ngrade B when score >= 50 until score < 40\ngrade C otherwise\n";
    let p = program(src);
    let path = |list: &[(&str, f64)]| -> Vec<String> {
        let evs = events(&list.iter().map(|(t, d)| ev(t, *d)).collect::<Vec<_>>());
        run(&p, &evs, &day(30.0))
            .transitions
            .iter()
            .map(|t| t.1.clone())
            .collect()
    };
    // 50 (B), 40 (stays B), 50, 90 (A wins first), 80, 70, 60, 50 (B again by its own
    // condition), 40 (stays), 30 (leaves).
    let ups: Vec<(&str, f64)> = (0..5).map(|i| ("up", f64::from(i) * 0.01)).collect();
    let mut list = ups.clone();
    list.extend([("down", 1.0), ("up", 2.0)]);
    list.extend((0..4).map(|i| ("up", 3.0 + f64::from(i) * 0.01)));
    list.extend((0..4).map(|i| ("down", 4.0 + f64::from(i) * 0.01)));
    list.extend([("down", 5.0), ("down", 6.0)]);
    assert_eq!(path(&list), ["C", "B", "A", "B", "C"]);
    // From A straight into B's band (90 → 40 in one event): the band holds only a lead
    // that was in B, so this one falls to C.
    let mut fall = (0..9)
        .map(|i| ("up", f64::from(i) * 0.01))
        .collect::<Vec<_>>();
    fall.push(("crash", 1.0));
    assert_eq!(path(&fall), ["C", "B", "A", "C"]);
}

/// Time moves grades through the same band: an inactivity penalty that leaves the score
/// above the exit keeps the lead in its grade.
#[test]
fn hysteresis_applies_to_time_transitions() {
    let src = "when up add 25 each\nwhen inactive for 30d subtract 15\ngrade A when score >= 70 until score < 50\ngrade B otherwise\n";
    let evs = events(&[ev("up", 0.0), ev("up", 0.1), ev("up", 0.2)]);
    let r = run(&program(src), &evs, &day(40.0));
    assert_eq!(
        (r.total, r.grade.as_str()),
        (60, "A"),
        "75 - 15 stays above 50"
    );
    let plain = "when up add 25 each\nwhen inactive for 30d subtract 15\ngrade A when score >= 70\ngrade B otherwise\n";
    let r = run(&program(plain), &evs, &day(40.0));
    assert_eq!(r.grade, "B");
    assert_eq!(r.transitions.last().unwrap().3, "time");
}

/// docs/security.md, "Who is trusted with what": a public event adds attributes no trusted
/// sender set and changes those the public set; it never sets or removes a protected
/// field, nor a trusted sender's value; a trusted sender's value replaces a public one.
#[test]
fn public_events_add_to_trusted_attributes_and_never_set_protected_ones() {
    let p = program(
        "field bonus protected\nwhen country = \"DE\" add 30\nwhen title = \"CEO\" add 20\n\
         when bonus > 0 add bonus max 20\ngrade A when score >= 1000000\ngrade C otherwise\n",
    );
    let list = [
        (json!({"country": "DE"}), false), // CRM: 30
        (json!({"country": "PL", "title": "CEO", "bonus": 20}), true), // form: title only
        (json!({"title": "Intern"}), true), // the public corrects itself
        (json!({"country": null}), true),  // cannot remove the CRM's
        (json!({"title": "CEO"}), false),  // the CRM takes the title
        (json!({"title": "Intern"}), true), // and keeps it
        (json!({"bonus": 15}), false),     // the salesperson's bonus
    ];
    let evs: Vec<Event> = list
        .iter()
        .enumerate()
        .map(|(i, (a, public))| {
            let mut v = json!({"id": format!("e{i}"), "lead": "l", "type": "lead.updated",
                "at": day(i as f64), "attributes": a});
            if *public {
                v["source"] = json!("public");
            }
            Event::from_json(&v).unwrap()
        })
        .collect();
    let after = |n: usize| run(&p, &evs[..n], &day(10.0)).total;
    assert_eq!(after(1), 30);
    assert_eq!(
        after(2),
        50,
        "the form added the title, not the country nor the bonus"
    );
    assert_eq!(after(3), 30, "public over public");
    assert_eq!(after(4), 30, "a public null leaves the CRM's country");
    assert_eq!(after(5), 50);
    assert_eq!(after(6), 50, "the CRM's title stays");
    assert_eq!(after(7), 65);
    let mut engine = Engine::new(&p);
    let lead = engine
        .rebuild("l", &evs, t(&day(10.0)), &mut Vec::new())
        .unwrap();
    assert!(
        lead.public.is_empty(),
        "every value is a trusted sender's now"
    );
    let lead = engine
        .rebuild("l", &evs[..3], t(&day(10.0)), &mut Vec::new())
        .unwrap();
    assert_eq!(lead.public.iter().collect::<Vec<_>>(), ["title"]);
    // Any other source is refused.
    let bad = json!({"id": "x", "lead": "l", "type": "t", "at": day(0.0), "source": "crm"});
    assert_eq!(Event::from_json(&bad).unwrap_err().field, "source");
}

#[test]
fn key_is_the_leads_own_key_except_where_it_names_an_event_property() {
    // The events' lead is "l": `key` reads it in a lead condition; in `where` it is the
    // event's own property; `lead.key` is the attribute named `key`.
    assert_eq!(total("when key = \"l\" add 10", &[ev("x", 0.0)], 1.0), 10);
    assert_eq!(total("when key = \"m\" add 10", &[ev("x", 0.0)], 1.0), 0);
    let prop = (
        "page.viewed",
        day(0.0),
        json!({}),
        json!({"key": "pricing"}),
    );
    assert_eq!(
        total(
            "when page.viewed where key = \"pricing\" add 5",
            std::slice::from_ref(&prop),
            1.0
        ),
        5
    );
    let attr = attrs(0.0, json!({"key": "vip", "@key": "m"}));
    assert_eq!(
        total(
            "when lead.key = \"vip\" add 7",
            std::slice::from_ref(&attr),
            1.0
        ),
        7
    );
    // An attribute spelled like the engine's own field does not replace the key.
    assert_eq!(total("when key = \"l\" add 10", &[attr], 1.0), 10);
}

#[test]
fn a_count_without_within_counts_every_matching_event_ever_and_awards_once() {
    let r = "when site.visited count >= 3 add 10";
    // The third visit, a year and more after the first, earns the points: no window.
    let visits = [
        ev("site.visited", 0.0),
        ev("site.visited", 200.0),
        ev("site.visited", 400.0),
        ev("site.visited", 401.0),
    ];
    assert_eq!(total(r, &visits[..2], 500.0), 0);
    assert_eq!(total(r, &visits[..3], 500.0), 10);
    // Once: a fourth visit adds nothing.
    assert_eq!(total(r, &visits, 500.0), 10);
    // At the instant of the third visit, not before it.
    assert_eq!(total(r, &visits[..3], 399.9), 0);
    // Only matching events count toward it.
    let filtered = "when site.visited where page = \"pricing\" count >= 2 add 5";
    let mixed = [
        (
            "site.visited",
            day(0.0),
            json!({}),
            json!({"page": "pricing"}),
        ),
        ev("site.visited", 1.0),
        (
            "site.visited",
            day(300.0),
            json!({}),
            json!({"page": "pricing"}),
        ),
    ];
    assert_eq!(total(filtered, &mixed[..2], 400.0), 0);
    assert_eq!(total(filtered, &mixed, 400.0), 5);
}

#[test]
fn a_grade_until_false_is_never_left_by_what_the_scores_do_later() {
    let src = "score behavior\nwhen site.visited add 60 each to behavior\nwhen inactive for 10d subtract 100 from behavior\ngrade A when behavior >= 500\ngrade MQL when behavior >= 100 until false\ngrade Nurture otherwise\n";
    let p = program(src);
    let two = events(&[ev("site.visited", 0.0), ev("site.visited", 1.0)]);
    // Day 1: 120, MQL. Day 30: inactive, 20 — still MQL.
    let r = run(&p, &two, &day(30.0));
    assert_eq!((r.total, r.grade.as_str()), (20, "MQL"));
    assert_eq!(
        r.transitions
            .iter()
            .map(|t| t.1.as_str())
            .collect::<Vec<_>>(),
        ["Nurture", "MQL"]
    );
    // A grade above still takes the lead from it.
    let many: Vec<_> = (0..9).map(|d| ev("site.visited", d as f64)).collect();
    assert_eq!(run(&p, &events(&many), &day(9.0)).grade, "A");
    // With an exit it would have been left.
    let leaving = program(&src.replace("until false", "until behavior < 50"));
    assert_eq!(run(&leaving, &two, &day(30.0)).grade, "Nurture");
}

/// A grade with `until` depends on the path through time: a lead stored at one instant and
/// read at a later one is graded as if it had been brought through every time change in
/// between (what the sweep would have recorded), not from the scores at the read alone.
#[test]
fn a_read_long_after_the_last_evaluation_walks_the_time_changes_in_between() {
    let src = "when stay add 50\nwhen up add 60 each max 60 expires after 2d\nwhen inactive for 3d subtract 30\ngrade A when score >= 100 until score < 80\ngrade B when score >= 40 until false\ngrade C otherwise\n";
    let p = program(src);
    let evs = events(&[ev("stay", 0.0), ev("up", 0.0)]);
    let mut engine = Engine::new(&p);
    let stored = engine
        .rebuild("l", &evs, t(&day(0.0)), &mut Vec::new())
        .unwrap();
    assert_eq!(p.grades[stored.grade.unwrap() as usize].name, "A");
    // Day 2: the award expires, 50 (left A, into B). Day 3: inactive, 20 — B is kept.
    let late = engine.evaluate(&stored, t(&day(10.0)), None);
    assert_eq!(
        (late.total, p.grades[late.grade.index()].name.as_str()),
        (20, "B")
    );
    let walked = run(&p, &evs, &day(10.0));
    assert_eq!((walked.total, walked.grade.as_str()), (20, "B"));
    // The stored state itself is not changed by the read.
    assert_eq!(stored.evaluated_at, Some(t(&day(0.0))));
}

#[test]
fn apart_scores_are_shown_and_graded_on_but_left_out_of_the_total() {
    let src = "score fit\nscore profile apart\nwhen country = \"DE\" add 30 to fit\nwhen title contains \"ceo\" add 50 to profile\ngrade A when score >= 50\ngrade B when profile >= 50\ngrade C otherwise\n";
    let p = program(src);
    let r = run(
        &p,
        &events(&[attrs(0.0, json!({"country": "DE", "title": "CEO"}))]),
        &day(1.0),
    );
    assert_eq!(r.scores, [30, 50]);
    assert_eq!(r.total, 30);
    assert_eq!(r.grade, "B");
}

#[test]
fn total_is_the_named_sum_and_difference_clamped_with_a_line_that_says_so() {
    let src = "score engagement range 0..100\nscore behavior\nscore risk\ntotal = engagement + behavior - risk range 0..150\nwhen email.opened add 30 each to engagement\nwhen site.visited add 40 each to behavior\nwhen email.bounced add 15 to risk\ngrade A when score >= 120\ngrade B otherwise\n";
    let p = program(src);
    let mut evs = vec![
        ev("email.opened", 0.0),
        ev("email.opened", 0.1),
        ev("email.opened", 0.2),
        ev("email.opened", 0.3),
        ev("site.visited", 0.4),
        ev("site.visited", 0.5),
    ];
    // engagement 120 → 100 (clamp −20), behavior 80: 180 → 150 (the total's clamp −30).
    let r = run(&p, &events(&evs), &day(1.0));
    assert_eq!(r.scores, [100, 80, 0]);
    assert_eq!((r.total, r.grade.as_str()), (150, "A"));
    assert_eq!(
        r.contributions,
        [(Some(5), 120), (Some(6), 80), (None, -20), (None, -30)]
    );
    // A subtracted score takes from the total; inside the range nothing is clamped.
    evs.truncate(2);
    evs.push(ev("email.bounced", 0.6));
    let r = run(&p, &events(&evs), &day(1.0));
    assert_eq!((r.scores.clone(), r.total), (vec![60, 0, 15], 45));
    // The lines add up: each score's lines and clamp, then the total's.
    let per_score = |i: usize| -> i64 {
        r.contributions
            .iter()
            .zip(&run_scores(&p, &events(&evs)))
            .filter(|(_, s)| **s == i)
            .map(|(c, _)| c.1)
            .sum()
    };
    assert_eq!(per_score(0) + per_score(1) - per_score(2), r.total);
}

/// The score each explanation line belongs to (`usize::MAX` for the total's clamp).
fn run_scores(p: &Program, evs: &[Event]) -> Vec<usize> {
    let mut engine = Engine::new(p);
    let lead = engine
        .rebuild("l", evs, t(&day(1.0)), &mut Vec::new())
        .unwrap();
    let mut lines = Vec::new();
    engine.evaluate(&lead, t(&day(1.0)), Some(&mut lines));
    lines
        .iter()
        .map(|c| {
            if c.score == leadscore_runtime::bytecode::TOTAL {
                usize::MAX
            } else {
                c.score.index()
            }
        })
        .collect()
}
