//! The ingest service on the in-memory store with a clock the test moves: the time sweep,
//! rescoring after a rules change, and duplicates inside one request.

use leadscore_runtime::time::{self, Micros};
use leadscore_service::{parse_events, Service};
use leadscore_store::memory::MemoryStore;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const DAY: Micros = 86_400 * 1_000_000;

fn program(src: &str) -> leadscore_runtime::bytecode::Program {
    leadscore_compiler::compile(src, "t")
        .expect("compiles")
        .program
}

fn service(src: &str, start: &str) -> (Service, Arc<AtomicI64>) {
    let clock = Arc::new(AtomicI64::new(time::parse(start).unwrap()));
    let c = clock.clone();
    let s = Service::with_clock(
        program(src),
        Arc::new(MemoryStore::new()),
        Arc::new(move || c.load(Ordering::SeqCst)),
    );
    (s, clock)
}

async fn post(s: &Service, body: Value) -> Value {
    let events = parse_events(&body, s.now()).expect("valid");
    s.ingest(events).await.expect("stored").to_json()
}

const RULES: &str = "when email.opened add 50\nwhen inactive for 30d subtract 40\ngrade A when score >= 50\ngrade B otherwise\n";

#[tokio::test]
async fn the_sweep_records_time_transitions_at_the_instant_they_happen() {
    let (s, clock) = service(RULES, "2026-11-01T00:00:00Z");
    let out = post(&s, json!({"id": "o1", "lead": "a@x.com", "type": "email.opened", "at": "2026-11-01T00:00:00Z"})).await;
    assert_eq!(out["leads"][0]["grade"], "A");
    // Not due yet: nothing swept.
    clock.fetch_add(29 * DAY, Ordering::SeqCst);
    assert_eq!(s.sweep(100).await.unwrap(), 0);
    clock.fetch_add(2 * DAY, Ordering::SeqCst);
    assert_eq!(s.sweep(100).await.unwrap(), 1);
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["grade"], "B");
    let t = &lead["transitions"][1];
    assert_eq!(t["cause"], "time");
    assert_eq!(t["from"], "A");
    assert_eq!(
        t["at"], "2026-12-01T00:00:00Z",
        "the instant inactivity began"
    );
    // Swept once: nothing more is due.
    assert_eq!(s.sweep(100).await.unwrap(), 0);
    assert_eq!(
        s.lead("a@x.com").await.unwrap().found().unwrap()["transitions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_rules_change_rescores_a_lead_when_it_is_next_touched() {
    let (s, _clock) = service(RULES, "2026-11-01T00:00:00Z");
    post(&s, json!({"id": "o1", "lead": "a@x.com", "type": "email.opened", "at": "2026-11-01T00:00:00Z"})).await;
    s.set_program(program(
        "when email.opened add 10 each\ngrade A when score >= 50\ngrade B otherwise\n",
    ));
    // Read: shown as the new rules score it.
    assert_eq!(
        s.lead("a@x.com").await.unwrap().found().unwrap()["score"],
        10
    );
    let out = post(&s, json!({"id": "o2", "lead": "a@x.com", "type": "email.opened", "at": "2026-11-01T00:00:00Z"})).await;
    let lead = &out["leads"][0];
    assert_eq!(lead["score"], 20);
    assert_eq!(lead["transitions"][0]["cause"], "rescore");
    assert_eq!(lead["transitions"][0]["from"], "A");
    assert_eq!(lead["transitions"][0]["to"], "B");
}

#[tokio::test]
async fn ids_repeated_in_one_request_count_once_and_each_lead_is_reported() {
    let (s, _clock) = service(
        "when ping add 1 each\ngrade A otherwise\n",
        "2026-11-01T00:00:00Z",
    );
    let at = "2026-11-01T00:00:00Z";
    let out = post(
        &s,
        json!([
            {"id": "1", "lead": "a@x.com", "type": "ping", "at": at},
            {"id": "1", "lead": "a@x.com", "type": "ping", "at": at},
            {"id": "1", "lead": "b@x.com", "type": "ping", "at": at},
            {"id": "2", "lead": " A@X.com ", "type": "ping", "at": at},
        ]),
    )
    .await;
    assert_eq!(out["accepted"], 3);
    assert_eq!(out["duplicates"], json!(["1"]));
    let scores: Vec<(String, i64)> = out["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["lead"].as_str().unwrap().to_string(),
                l["score"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(scores, vec![("a@x.com".into(), 2), ("b@x.com".into(), 1)]);
}

/// A lead's stored state stays far below DynamoDB's 400 KB item limit however many events
/// it has: rule state is bounded (counts, at most N window instants, capped expiries).
#[test]
fn a_lead_with_100000_events_has_a_small_state() {
    use leadscore_runtime::engine::Engine;
    use leadscore_runtime::event::Event;
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/001-zoho.rules"
    ))
    .unwrap();
    let p = program(&src);
    let mut engine = Engine::new(&p);
    let start = time::parse("2026-01-01T00:00:00Z").unwrap();
    let types = [
        "site.visited",
        "page.viewed",
        "email.opened",
        "email.clicked",
        "email.unsubscribed",
        "form.submitted",
    ];
    let mut lead = engine.new_lead("big@x.com");
    let mut out = Vec::new();
    for i in 0..100_000i64 {
        let e = Event::from_json(&json!({
            "id": format!("e{i}"), "lead": "big@x.com", "type": types[i as usize % types.len()],
            "at": time::format(start + i * 60_000_000),
            "attributes": {"country": "DE", "message": format!("note {i}")},
            "props": {"page": "pricing", "form": "inquiry"},
        }))
        .unwrap();
        engine.apply(&mut lead, &e, &mut out).unwrap();
        out.clear();
    }
    assert_eq!(lead.events, 100_000);
    let bytes = serde_json::to_vec(&lead).unwrap().len();
    assert!(bytes < 16 * 1024, "state is {bytes} bytes");
}

/// Language v2's rule state is bounded too: 20,000 events on decaying, distinct, capped,
/// prior-waiting and time-award rules keep at most 1,024 awards, max/points values and
/// N/points instants per rule.
#[test]
fn language_v2_rule_state_stays_bounded_over_20000_events() {
    use leadscore_runtime::engine::Engine;
    use leadscore_runtime::event::Event;
    // The contract, and a decaying rule without `max` whose live awards outnumber 1,024.
    let p = program(&format!(
        "{}when site.visited add 4 each to engagement\n",
        include_str!("../compiler/tests/data/ok/language-v2-contract.rules")
    ));
    let mut engine = Engine::new(&p);
    let start = time::parse("2026-01-01T00:00:00Z").unwrap();
    let types = [
        "page.viewed",
        "email.opened",
        "email.sent",
        "email.replied",
        "site.visited",
    ];
    let mut lead = engine.new_lead("big@x.com");
    let mut out = Vec::new();
    let mut at = start;
    for i in 0..20_000i64 {
        // Every event a new email id and a pricing page; six minutes apart, and every
        // 5,000th after 40 quiet days, so awards pile up and decay and spells end.
        at += if i % 5_000 == 0 { 40 * 86_400 } else { 360 } * 1_000_000;
        let e = Event::from_json(&json!({
            "id": format!("e{i}"), "lead": "big@x.com", "type": types[i as usize % types.len()],
            "at": time::format(at),
            "props": {"url": "https://x.example/pricing", "email_id": format!("m{i}")},
        }))
        .unwrap();
        engine.apply(&mut lead, &e, &mut out).unwrap();
        out.clear();
    }
    for (_, st) in &lead.rules {
        assert!(st.awards.len() <= 1024, "{} awards", st.awards.len());
        assert!(st.seen.len() <= 10, "{} distinct values", st.seen.len());
        assert!(st.capped.len() <= 1, "{} capped instants", st.capped.len());
    }
    assert!(
        lead.rules.iter().any(|(_, st)| st.awards.len() == 1024),
        "the bound is reached"
    );
    let bytes = serde_json::to_vec(&lead).unwrap().len();
    assert!(bytes < 64 * 1024, "state is {bytes} bytes");
}

#[tokio::test]
async fn a_sweep_that_meets_a_lead_of_older_rules_records_its_rescore() {
    let (s, clock) = service(RULES, "2026-11-01T00:00:00Z");
    post(&s, json!({"id": "o1", "lead": "a@x.com", "type": "email.opened", "at": "2026-11-01T00:00:00Z"})).await;
    // New rules grade the same history lower; the lead is due for its inactivity rule.
    s.set_program(program(
        "when email.opened add 10\nwhen inactive for 30d subtract 40\ngrade A when score >= 50\ngrade B otherwise\n",
    ));
    clock.fetch_add(31 * DAY, Ordering::SeqCst);
    assert_eq!(s.sweep(100).await.unwrap(), 1);
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["grade"], "B");
    let t = lead["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(
        (
            t[1]["cause"].clone(),
            t[1]["from"].clone(),
            t[1]["to"].clone()
        ),
        (json!("rescore"), json!("A"), json!("B"))
    );
    // Once rescored, the page-by-page rescore has nothing left to do.
    let done = s.rescore(10, None).await.unwrap();
    assert_eq!((done.rescored, done.current, done.next), (0, 1, None));
}

const LIVE: &str = "when email.opened add 10 each\ngrade A when score >= 30\ngrade B otherwise\n";
const SHADOW: &str = "when email.opened add 20 each\nwhen page.viewed add 5 each\ngrade A when score >= 30\ngrade B otherwise\n";

fn opened(id: &str, at: &str) -> Value {
    json!({"id": id, "lead": "a@x.com", "type": "email.opened", "at": at})
}

#[tokio::test]
async fn shadow_rules_are_scored_and_stored_for_every_event_but_never_move_the_live_grade() {
    let (live_only, _) = service(LIVE, "2026-11-10T00:00:00Z");
    let (s, _) = service(LIVE, "2026-11-10T00:00:00Z");
    // One event before the shadow starts: the shadow catches up from the history.
    for svc in [&live_only, &s] {
        post(svc, opened("o1", "2026-11-01T00:00:00Z")).await;
    }
    s.set_shadow(Some(program(SHADOW)));
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["shadow"]["score"], 20, "{lead}");
    // In order, then one out of order (the shadow is rebuilt as the live lead is).
    for (id, at) in [
        ("o2", "2026-11-03T00:00:00Z"),
        ("o3", "2026-11-02T00:00:00Z"),
    ] {
        for svc in [&live_only, &s] {
            post(svc, opened(id, at)).await;
        }
    }
    let page =
        json!({"id": "p1", "lead": "a@x.com", "type": "page.viewed", "at": "2026-11-04T00:00:00Z"});
    for svc in [&live_only, &s] {
        post(svc, page.clone()).await;
    }
    let with = s.lead("a@x.com").await.unwrap().found().unwrap();
    let without = live_only.lead("a@x.com").await.unwrap().found().unwrap();
    for k in ["score", "grade", "transitions", "contributions"] {
        assert_eq!(with[k], without[k], "{k}: the shadow changed the live lead");
    }
    assert_eq!(
        (with["score"].clone(), with["grade"].clone()),
        (json!(30), json!("A"))
    );
    let live_hash = program(LIVE).hash_hex();
    for t in with["transitions"].as_array().unwrap() {
        assert_eq!(t["program"], json!(live_hash), "{t}");
        assert_eq!(t["ruleset"], "t");
    }
    let shadow = &with["shadow"];
    assert_eq!(shadow["program"], json!(program(SHADOW).hash_hex()));
    assert_eq!(
        (shadow["score"].clone(), shadow["grade"].clone()),
        (json!(65), json!("A"))
    );
    assert_eq!(
        shadow["contributions"].as_array().unwrap().len(),
        2,
        "{shadow}"
    );

    // The shadow is stored with the lead, in step with its events.
    let stored = s
        .store()
        .load("a@x.com", &[])
        .await
        .unwrap()
        .lead
        .unwrap()
        .state;
    let stored_shadow = stored.shadow.expect("stored with the lead");
    assert_eq!(stored_shadow.program, program(SHADOW).hash_hex());
    assert_eq!(stored_shadow.events, 4);
    // It equals what the shadow rules give when they run live.
    let (as_live, _) = service(SHADOW, "2026-11-10T00:00:00Z");
    for (id, at) in [
        ("o1", "2026-11-01T00:00:00Z"),
        ("o2", "2026-11-03T00:00:00Z"),
        ("o3", "2026-11-02T00:00:00Z"),
    ] {
        post(&as_live, opened(id, at)).await;
    }
    post(&as_live, page).await;
    let reference = as_live.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(shadow["scores"], reference["scores"]);

    // Switch over: the shadow becomes the live rules.
    s.set_program(program(SHADOW));
    s.set_shadow(None);
    let after = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(after["score"], 65);
    assert_eq!(after["shadow"], Value::Null);
}

#[tokio::test]
async fn an_ab_split_scores_each_lead_by_its_arm_and_keeps_it_there() {
    let (s, _) = service(LIVE, "2026-11-10T00:00:00Z");
    s.set_variant(Some((program(SHADOW), 5_000)));
    // Arms pinned by runtime/src/split.rs: a, b and d in B (the variant), c in A.
    for k in ["a", "b", "c", "d"] {
        for i in 0..2 {
            post(
                &s,
                json!({"id": format!("{k}{i}"), "lead": format!("{k}@x.com"),
                "type": "email.opened", "at": "2026-11-01T00:00:00Z"}),
            )
            .await;
        }
    }
    for (k, arm, score, grade) in [
        ("a", "B", 40, "A"),
        ("b", "B", 40, "A"),
        ("c", "A", 20, "B"),
        ("d", "B", 40, "A"),
    ] {
        let lead = s
            .lead(&format!("{k}@x.com"))
            .await
            .unwrap()
            .found()
            .unwrap();
        assert_eq!(lead["arm"], arm, "{lead}");
        assert_eq!(
            (lead["score"].clone(), lead["grade"].clone()),
            (json!(score), json!(grade)),
            "{k}"
        );
        let by = if arm == "B" { SHADOW } else { LIVE };
        assert_eq!(lead["program"], json!(program(by).hash_hex()));
        assert_eq!(
            lead["transitions"][0]["program"],
            json!(program(by).hash_hex())
        );
    }
    // The split ends: variant leads return to the live rules, with a rescore transition
    // when their grade changes.
    s.set_variant(None);
    let out = post(&s, json!({"id": "a2", "lead": "a@x.com", "type": "email.opened", "at": "2026-11-02T00:00:00Z"})).await;
    let lead = &out["leads"][0];
    assert_eq!(
        (lead["score"].clone(), lead["grade"].clone()),
        (json!(30), json!("A"))
    );
    let c = s.lead("c@x.com").await.unwrap().found().unwrap();
    assert_eq!(c["arm"], Value::Null);
    // b and d (two opens: 20 under the live rules) drop from A to B when rescored.
    let done = s.rescore(10, None).await.unwrap();
    assert_eq!((done.rescored, done.changed_grade, done.current), (2, 2, 2));
    let d = s.lead("d@x.com").await.unwrap().found().unwrap();
    let last = d["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["cause"].clone(),
            last["from"].clone(),
            last["to"].clone()
        ),
        (json!("rescore"), json!("A"), json!("B"))
    );
}

#[tokio::test]
async fn an_interrupted_rescore_resumes_by_running_again() {
    let (s, _) = service(LIVE, "2026-11-10T00:00:00Z");
    for k in 0..5 {
        post(&s, json!({"id": format!("e{k}"), "lead": format!("l{k}@x.com"), "type": "email.opened", "at": "2026-11-01T00:00:00Z"})).await;
    }
    s.set_program(program(SHADOW));
    // One page of two, then the run "stops".
    let first = s.rescore(2, None).await.unwrap();
    assert_eq!(first.rescored, 2);
    assert!(first.next.is_some());
    // Started again from the top: the two done are skipped, the three left are done.
    let mut total = (0, 0);
    let mut after = None;
    loop {
        let page = s.rescore(2, after).await.unwrap();
        total.0 += page.rescored;
        total.1 += page.current;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(total.0, 3, "only the leads not yet rescored");
    assert!(
        total.1 >= 2,
        "the two already rescored are skipped: {total:?}"
    );
    for k in 0..5 {
        let loaded = s
            .store()
            .load(&format!("l{k}@x.com"), &[])
            .await
            .unwrap()
            .lead;
        let loaded = loaded.unwrap();
        assert_eq!(
            loaded.state.program,
            program(SHADOW).hash_hex(),
            "stored rescored"
        );
    }
}

/// The lead as the offline reference scores `events` at `now`.
fn offline(src: &str, events: &[Value], now: Micros) -> Value {
    let events = events
        .iter()
        .map(|v| leadscore_runtime::event::Event::from_json(v).unwrap())
        .collect();
    let (scored, _) = leadscore_runtime::offline::score_all(&program(src), events, now).unwrap();
    assert_eq!(scored.len(), 1);
    scored.into_iter().next().unwrap().json()
}

fn same_scores(online: &Value, offline: &Value) {
    for k in ["score", "scores", "grade", "tags", "contributions"] {
        assert_eq!(
            online[k], offline[k],
            "{k}: online {online:#} offline {offline:#}"
        );
    }
}

const OPENS: &str = "when email.opened add 10 each\nwhen inactive for 2d subtract 5\ngrade A when score >= 30\ngrade B otherwise\n";

#[tokio::test]
async fn a_request_with_a_newer_and_an_older_event_scores_the_whole_history() {
    // Stored a2, a3; then one request [a5, a1]: a5 newer than the latest, a1 older.
    let (s, clock) = service(OPENS, "2026-11-10T00:00:00Z");
    let e = |id: &str, day: u32| opened(id, &format!("2026-11-0{day}T00:00:00Z"));
    post(&s, json!([e("a2", 2), e("a3", 3)])).await;
    let out = post(&s, json!([e("a5", 5), e("a1", 1)])).await;
    assert_eq!(out["accepted"], 2);
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["events"], 4, "{lead:#}");
    let all = [e("a2", 2), e("a3", 3), e("a5", 5), e("a1", 1)];
    same_scores(&lead, &offline(OPENS, &all, s.now()));
    // And it stays right: the next event continues from the whole history.
    clock.fetch_add(DAY, Ordering::SeqCst);
    post(&s, json!(opened("a6", "2026-11-10T12:00:00Z"))).await;
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    let mut all = all.to_vec();
    all.push(opened("a6", "2026-11-10T12:00:00Z"));
    same_scores(&lead, &offline(OPENS, &all, s.now()));
    assert_eq!(lead["events"], 5);
}

#[tokio::test]
async fn an_event_ahead_of_the_clock_counts_from_its_instant_and_is_never_lost() {
    let (s, clock) = service(&ahead_rules(), "2026-11-10T00:00:00Z");
    post(
        &s,
        json!([
            opened("a1", "2026-11-09T00:00:00Z"),
            opened("a2", "2026-11-09T01:00:00Z")
        ]),
    )
    .await;
    // Three minutes ahead: accepted, stored, not counted yet.
    let ahead = opened("a3", "2026-11-10T00:03:00Z");
    let out = post(&s, json!(ahead)).await;
    assert_eq!(out["accepted"], 1);
    assert_eq!(out["leads"][0]["score"], 20, "{out:#}");
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["score"], 20);
    // A late event rebuilds the lead: the event ahead is kept, still waiting.
    post(&s, json!(opened("a0", "2026-11-08T00:00:00Z"))).await;
    assert_eq!(
        s.lead("a@x.com").await.unwrap().found().unwrap()["score"],
        30
    );
    // Once the clock reaches it, it counts: on a read, in the sweep and in the stored state.
    clock.fetch_add(4 * 60 * 1_000_000, Ordering::SeqCst);
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    assert_eq!(lead["score"], 40, "{lead:#}");
    assert_eq!(s.sweep(100).await.unwrap(), 1, "the sweep takes it in");
    let all = [
        opened("a1", "2026-11-09T00:00:00Z"),
        opened("a2", "2026-11-09T01:00:00Z"),
        ahead,
        opened("a0", "2026-11-08T00:00:00Z"),
    ];
    let lead = s.lead("a@x.com").await.unwrap().found().unwrap();
    same_scores(&lead, &offline(&ahead_rules(), &all, s.now()));
    assert_eq!(lead["events"], 4);
    let t = lead["transitions"].as_array().unwrap();
    assert_eq!(t.last().unwrap()["to"], "A", "{t:#?}");
    assert_eq!(t.last().unwrap()["event"], "a3");
    assert_eq!(t.last().unwrap()["at"], "2026-11-10T00:03:00Z");
}

fn ahead_rules() -> String {
    OPENS.replace(">= 30", ">= 40")
}

const KEYED: &str = "when domain(key) = \"acme.co.uk\" add 10\nwhen email.opened add 1 each\nwhen lead.key = \"vip\" add 100\ntag internal when domain(key) = \"ourfirm.com\"\ngrade A when score >= 10\ngrade B otherwise\n";

#[tokio::test(flavor = "multi_thread")]
async fn rules_read_the_leads_key_on_every_request_and_no_event_sets_it() {
    // docs/language.md, "The lead's key": `key` is the lead's own key, read again from the
    // stored lead on every request (SQLite: the state round-trips through the file), and
    // an event's attributes cannot stand in for it; `lead.key` is an attribute.
    let dir = std::env::temp_dir().join(format!("leadscore-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = leadscore_store::sqlite::SqliteStore::open(dir.join("k.db")).unwrap();
    let now = time::parse("2026-11-10T00:00:00Z").unwrap();
    let s = Service::with_clock(program(KEYED), Arc::new(store), Arc::new(move || now));
    let e = |id: &str, lead: &str, attrs: Value| {
        json!({"id": id, "lead": lead, "type": "email.opened",
               "at": format!("2026-11-0{id}T10:00:00Z"), "attributes": attrs})
    };
    let first = e("1", "Buyer@Sales.ACME.co.uk", json!({}));
    let second = e(
        "2",
        "buyer@sales.acme.co.uk",
        json!({"@key": "x@ourfirm.com", "key": "x@ourfirm.com"}),
    );
    post(&s, first.clone()).await;
    post(&s, second.clone()).await;
    let lead = s
        .lead("buyer@sales.acme.co.uk")
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(lead["score"], 12, "{lead:#}");
    assert_eq!(lead["tags"], json!([]), "{lead:#}");
    assert_eq!(lead["attributes"]["key"], "x@ourfirm.com");
    assert!(lead["attributes"].get("@key").is_none(), "{lead:#}");
    same_scores(&lead, &offline(KEYED, &[first, second], now));
    // A lead keyed in the firm's own domain is tagged by its key alone; `lead.key` reads
    // the attribute of that name.
    let own = e("3", "me@ourfirm.com", json!({"key": "vip"}));
    post(&s, own.clone()).await;
    let lead = s.lead("me@ourfirm.com").await.unwrap().found().unwrap();
    assert_eq!(lead["tags"], json!(["internal"]), "{lead:#}");
    assert_eq!(lead["score"], 101, "{lead:#}");
    same_scores(&lead, &offline(KEYED, &[own], now));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `notify … once`: the first crossing is sent; the lead falling back (time), crossing
/// again, a late event that rebuilds it and a reload of the same rules with a rescore
/// never send it again — while the statement without `once` notifies each crossing.
#[tokio::test]
async fn a_once_notification_is_sent_once_per_lead_whatever_happens_later() {
    let rules = "channel hook = webhook \"https://crm.example.com/leadscore\" signed \"HOOK_SECRET\"\nwhen email.opened add 30 each\nwhen inactive for 2d subtract 40\ngrade A when score >= 50\ngrade B otherwise\nnotify hook when score crosses 50 once\nnotify hook when score crosses 40\n";
    let (s, clock) = service(rules, "2026-11-01T02:00:00Z");
    let open =
        |id: &str, at: &str| json!({"id": id, "lead": "a@x.com", "type": "email.opened", "at": at});
    let sent = |s: &Service| {
        let store = s.store().clone();
        async move {
            let notes = store.due_notes(i64::MAX, 1000).await.unwrap();
            let count = |text: &str| {
                notes
                    .iter()
                    .filter(|n| n.note.body["rule"]["text"] == text)
                    .count()
            };
            (
                count("notify hook when score crosses 50 once"),
                count("notify hook when score crosses 40"),
            )
        }
    };
    post(&s, open("o1", "2026-11-01T00:00:00Z")).await;
    post(&s, open("o2", "2026-11-01T01:00:00Z")).await;
    assert_eq!(sent(&s).await, (1, 1), "60: both cross");
    // Two days of silence: 20. Then two opens: 80, crossing both again.
    clock.fetch_add(3 * DAY, Ordering::SeqCst);
    s.sweep(100).await.unwrap();
    post(&s, open("o3", "2026-11-04T00:00:00Z")).await;
    post(&s, open("o4", "2026-11-04T01:00:00Z")).await;
    assert_eq!(sent(&s).await, (1, 2), "the once statement stays quiet");
    // A late event rebuilds the lead from its events; the same rules reloaded rescore it.
    post(&s, open("o0", "2026-10-31T00:00:00Z")).await;
    // Reloaded with the threshold edited (the statement is another): once per lead and
    // channel, so the lead crossing 200 sends nothing to the hook again.
    s.set_program(program(
        &rules.replace("crosses 50 once", "crosses 200 once"),
    ));
    clock.fetch_add(3 * DAY, Ordering::SeqCst);
    s.sweep(100).await.unwrap();
    post(&s, open("o5", "2026-11-07T00:00:00Z")).await;
    let out = post(&s, open("o6", "2026-11-07T01:00:00Z")).await;
    assert_eq!(out["leads"][0]["score"], 210, "{out}");
    let once = |notes: &[leadscore_store::Outboxed], lead: &str| {
        notes
            .iter()
            .filter(|n| {
                n.note.lead == lead
                    && n.note.body["rule"]["text"]
                        .as_str()
                        .unwrap()
                        .ends_with(" once")
            })
            .count()
    };
    let notes = s.store().due_notes(i64::MAX, 1000).await.unwrap();
    assert_eq!(
        once(&notes, "a@x.com"),
        1,
        "rebuilt, rescored and edited: still once for the channel"
    );
    // Another lead has its own.
    let seven: Vec<Value> = (0..7)
        .map(|i| json!({"id": format!("b{i}"), "lead": "b@x.com", "type": "email.opened", "at": "2026-11-07T01:00:00Z"}))
        .collect();
    post(&s, Value::Array(seven)).await;
    let notes = s.store().due_notes(i64::MAX, 1000).await.unwrap();
    assert_eq!(once(&notes, "b@x.com"), 1);
}
