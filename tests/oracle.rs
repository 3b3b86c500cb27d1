//! The oracle: every online path scores as the offline reference does.
//!
//! Random leads and event streams over a few days are sent through the real HTTP router
//! (the one `serve` and the Lambda entry run) on memory, a SQLite file and DynamoDB (moto):
//! in random batches of 1–20, shuffled, with duplicates (the same id again, and the same id
//! with other content), late events, events up to 5 minutes ahead of the clock, merges,
//! restarts, sweeps and a rules reload with a rescore. After each case every lead read over
//! HTTP must equal [`offline::score_all`] (what `leadscore score --now T` prints) over the
//! same events: score, scores, grade, tags, contributions; the stored event count must be
//! the unique count; and the recorded transitions must follow docs/language.md
//! ("Transitions online").
//!
//! Cases: `LEADSCORE_ORACLE_CASES` (default 500) on memory, a fifth of that on SQLite and
//! a twentieth on DynamoDB. A failing case is shrunk, and prints its requests as a replay.

mod common;

use axum::body::Body;
use axum::http::Request;
use leadscore_http::{router, App, Config};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::event::Event;
use leadscore_runtime::offline;
use leadscore_runtime::time::{self, Micros};
use leadscore_service::Service;
use leadscore_store::{memory::MemoryStore, sqlite::SqliteStore, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const MINUTE: Micros = 60 * 1_000_000;
const HOUR: Micros = 60 * MINUTE;

/// Short windows, expiry, inactivity, a range, field points, hysteresis and a guard, so
/// that a few days of events cross every kind of threshold.
const SHORT: &str = r#"
set tier1 = ["US", "DE", "JP"]
score fit
score engagement range 0..60
when country in tier1 add 30 to fit
when title contains any word ["ceo", "manager"] add 20 to fit
when sales_bonus > 0 add sales_bonus max 20 to fit
when email.opened add 5 each max 25 to engagement
when email.clicked add 10 each max 30 expires after 2d to engagement
when site.visited count >= 3 within 1d add 15 to engagement
when page.viewed where page = "pricing" add 20 to engagement
when call.completed where minutes >= 5 add 20 to engagement
when email.unsubscribed count >= 2 within 1d subtract 20 from engagement
when inactive for 1d subtract 10 from engagement
if country in tier1 {
  when form.submitted where form = "inquiry" add 10 to engagement
}
grade A when fit + engagement >= 70 until fit + engagement < 60
grade B when fit + engagement >= 40
grade C otherwise
tag HOT when grade = A
tag cold when grade = C and inactive for 2d
"#;

fn rules(which: u8) -> Program {
    let src = match which % 4 {
        0 => SHORT.to_string(),
        // SHORT with language v2: a score apart, a total of its own with a range, a
        // lifetime count, a grade never left, an event after an earlier one, a cap per
        // period, distinct values, a reset, a question, decay and time awards.
        3 => SHORT
            .replace(
                "when country in tier1 add 30 to fit\n",
                "when country in tier1 add 30 to fit ask \"Which market?\"\nwhen email.replied within 6h of email.opened add 8 to engagement\nwhen page.viewed add 4 each up to 8 per 6h to engagement\nwhen page.viewed add 3 each distinct page max 6 to profile\nwhen whatsapp.added reset engagement\n",
            )
            .replace(
                "score engagement range 0..60\n",
                "score engagement range 0..60 decay 25% every 1d\nscore profile apart\ntotal = fit + engagement range 0..90\nafter inactive for 12h subtract 5 every 6h max 15 from engagement\nafter inactive for 1d add 10 to profile\n",
            )
            .replace(
                "when inactive for 1d subtract 10 from engagement\n",
                "when inactive for 1d subtract 10 from engagement\nwhen site.visited count >= 4 add 5 to engagement\nwhen title contains \"ceo\" add 40 to profile\n",
            )
            .replace(
                "grade B when fit + engagement >= 40\n",
                "grade B when fit + engagement >= 40 until false\n",
            )
            .replace(
                "tag HOT when grade = A\n",
                "tag HOT when grade = A\ntag profiled when profile >= 40\n",
            ),
        // Seed 001 as shipped: tiers, windows over 7 days, 30 days of silence.
        1 => include_str!("../examples/001-zoho.rules").to_string(),
        // SHORT with other points: what a reload brings.
        _ => SHORT
            .replace("add 5 each max 25", "add 7 each max 28")
            .replace(">= 70 until fit + engagement < 60", ">= 65"),
    };
    leadscore_compiler::compile(&src, "oracle.rules")
        .expect("the oracle's rules compile")
        .program
}

/// One generated event, before it is turned into JSON.
#[derive(Clone, Debug)]
struct Ev {
    lead: u8,
    kind: u8,
    /// Minutes after the start.
    minute: u32,
    variant: u8,
    /// How it arrives: 0–6 soon after it happened, 7–8 late (up to two days), 9 ahead
    /// of the server's clock (up to 5 minutes).
    arrival: u8,
    delay: u32,
}

#[derive(Clone, Debug)]
enum Op {
    Merge(u8, u8),
    Reload,
    Restart,
    Sweep,
}

#[derive(Clone, Debug)]
struct Case {
    rules: u8,
    events: Vec<Ev>,
    /// (index of an earlier event, whether its content differs).
    duplicates: Vec<(usize, bool)>,
    batches: Vec<usize>,
    shuffle: u64,
    /// (after how many batches, what).
    ops: Vec<(usize, Op)>,
    /// Hours after the last request that the leads are read.
    read_after: u32,
}

fn case() -> impl Strategy<Value = Case> {
    let ev = (
        0u8..4,
        0u8..10,
        0u32..4 * 24 * 60,
        any::<u8>(),
        0u8..10,
        any::<u32>(),
    )
        .prop_map(|(lead, kind, minute, variant, arrival, delay)| Ev {
            lead,
            kind,
            minute,
            variant,
            arrival,
            delay,
        });
    let op = prop_oneof![
        (0u8..4, 0u8..4).prop_map(|(a, b)| Op::Merge(a, b)),
        Just(Op::Reload),
        Just(Op::Restart),
        Just(Op::Sweep),
    ];
    (
        any::<u8>(),
        prop::collection::vec(ev, 1..50),
        prop::collection::vec((any::<usize>(), any::<bool>()), 0..15),
        prop::collection::vec(1usize..=20, 1..30),
        any::<u64>(),
        prop::collection::vec((0usize..30, op), 0..4),
        0u32..72,
    )
        .prop_map(
            |(rules, events, duplicates, batches, shuffle, ops, read_after)| Case {
                rules,
                events,
                duplicates,
                batches,
                shuffle,
                ops,
                read_after,
            },
        )
}

fn start() -> Micros {
    time::parse("2026-11-01T00:00:00Z").unwrap()
}

fn key(lead: u8) -> String {
    format!("l{lead}@x.com")
}

/// The event's JSON; `variant` picks its content.
fn event_json(id: &str, lead: u8, kind: u8, at: Micros, v: u8) -> Value {
    let pick = |xs: &[&str]| xs[v as usize % xs.len()].to_string();
    let (ty, attributes, props) = match kind {
        0 => (
            "form.submitted",
            json!({"country": pick(&["US", "DE", "PL", "MY", "CN", ""]),
                   "title": pick(&["CEO", "Project Manager", "Assistant", "Engineer", "Sales Manager"]),
                   "product": pick(&["LED Panel", "cable", "furniture", "toys"]),
                   "message": pick(&["need 500 pcs", "hello", "MOQ and spec please. Thanks."])}),
            json!({"form": pick(&["contact", "inquiry"])}),
        ),
        1 => ("email.opened", json!({}), json!({})),
        2 => ("email.clicked", json!({}), json!({})),
        3 => ("site.visited", json!({}), json!({})),
        4 => (
            "page.viewed",
            json!({}),
            json!({"page": pick(&["product", "pricing", "blog"])}),
        ),
        5 => ("call.completed", json!({}), json!({"minutes": v % 10})),
        6 => ("email.unsubscribed", json!({}), json!({})),
        7 => ("email.replied", json!({}), json!({})),
        8 => (
            "lead.updated",
            match v % 4 {
                0 => json!({"sales_bonus": v % 30}),
                1 => json!({"sales_bonus": "15"}),
                2 => json!({"country": null}),
                _ => json!({"country": pick(&["JP", "MX", "US"])}),
            },
            json!({}),
        ),
        _ => ("whatsapp.added", json!({}), json!({})),
    };
    let mut e = json!({"id": id, "lead": key(lead), "type": ty, "at": time::format(at),
           "attributes": attributes, "props": props});
    // Half the forms come from the website (public: they only add to what trusted senders
    // said, and never set the protected `sales_bonus`), a third of them trying to.
    if kind == 0 && v % 2 == 1 {
        e["source"] = json!("public");
    }
    if kind == 0 && v % 3 == 0 {
        e["attributes"]["sales_bonus"] = json!(v % 25);
    }
    e
}

/// What is sent, in order: batches (each at its clock), with operations between them.
#[derive(Debug)]
enum Step {
    Batch { clock: Micros, events: Vec<Value> },
    Op(Op, Micros),
}

/// A small deterministic generator for the shuffles (the case's seed drives it).
struct Mix(u64);

impl Mix {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

fn plan(c: &Case) -> Vec<Step> {
    // (delivered at, json); every `at` distinct, so that ties never depend on arrival.
    let mut deliveries: Vec<(Micros, Value)> = Vec::new();
    for (i, e) in c.events.iter().enumerate() {
        let at = start() + e.minute as Micros * MINUTE + i as Micros;
        let delivered = match e.arrival {
            0..=6 => at + (e.delay % 600) as Micros * 1_000_000,
            7 | 8 => at + (e.delay % 2880) as Micros * MINUTE,
            // Up to five minutes ahead of the clock when it arrives.
            _ => at - (e.delay % 300) as Micros * 1_000_000,
        };
        let id = format!("e{i}");
        deliveries.push((delivered, event_json(&id, e.lead, e.kind, at, e.variant)));
    }
    for &(i, differs) in &c.duplicates {
        let (orig_at, orig) = deliveries[i % c.events.len()].clone();
        let mut dup = orig.clone();
        if differs {
            let e = &c.events[i % c.events.len()];
            let at = time::parse(orig["at"].as_str().unwrap()).unwrap();
            let other = event_json(
                orig["id"].as_str().unwrap(),
                e.lead,
                (e.kind + 1) % 10,
                at,
                e.variant.wrapping_add(1),
            );
            dup = other;
        }
        let later = orig_at + (i % 1440) as Micros * MINUTE;
        deliveries.push((later, dup));
    }
    deliveries.sort_by_key(|(d, _)| *d);
    let mut mix = Mix(c.shuffle);
    let mut steps = Vec::new();
    let mut rest = deliveries.as_slice();
    let mut sizes = c.batches.iter().cycle();
    let mut n = 0;
    let mut clock = start();
    while !rest.is_empty() {
        for (after, op) in &c.ops {
            if *after == n {
                steps.push(Step::Op(op.clone(), clock));
            }
        }
        let size = (*sizes.next().unwrap()).min(rest.len());
        let (batch, tail) = rest.split_at(size);
        rest = tail;
        clock = clock.max(batch.last().unwrap().0);
        let mut events: Vec<Value> = batch.iter().map(|(_, v)| v.clone()).collect();
        for i in (1..events.len()).rev() {
            events.swap(i, mix.next(i + 1));
        }
        steps.push(Step::Batch { clock, events });
        n += 1;
    }
    steps
}

/// A store to run a case on, and how to reopen it (a restart).
#[derive(Clone)]
enum Backend {
    Memory(Arc<MemoryStore>),
    Sqlite(std::path::PathBuf),
    Dynamo(aws_sdk_dynamodb::Client, String),
}

impl Backend {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Memory(m) => m.clone(),
            Backend::Sqlite(path) => Arc::new(SqliteStore::open(path).expect("opens")),
            Backend::Dynamo(client, table) => Arc::new(leadscore_store::dynamo::DynamoStore::new(
                client.clone(),
                table.clone(),
            )),
        }
    }
}

struct Online {
    service: Arc<Service>,
    router: axum::Router,
}

async fn online(backend: &Backend, program: Program, clock: &Arc<AtomicI64>) -> Online {
    let c = clock.clone();
    // Seed 001's rules assign leads (docs/desk.md): with its people, so that every batch
    // also assigns, recycles and counts on the desk — and the scores stay the reference's.
    let config = Config::parse(
        "[teams]\nsenior = [\"amy@firm.example\", \"li@firm.example\"]\nsales = [\"bo@firm.example\", \"cy@firm.example\"]\neu_owners = [\"hans@firm.example\"]\n[desk]\nmax_active_per_owner = 3\n",
    )
    .expect("the oracle's configuration");
    let service = Arc::new(
        Service::with_clock(
            program,
            backend.open().await,
            Arc::new(move || c.load(Ordering::SeqCst)),
        )
        .with_roster(leadscore_service::Roster::from_config(&config))
        .expect("the oracle's teams"),
    );
    let router = router(App::new(service.clone(), config));
    Online { service, router }
}

async fn call(router: &axum::Router, req: Request<Body>) -> (u16, Value) {
    common::oneshot(router, req).await
}

fn post(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Which key each lead's events belong to after the merges (the key it ended up in).
fn root(merged: &HashMap<String, String>, k: &str) -> String {
    let mut k = k.to_string();
    while let Some(n) = merged.get(&k) {
        k = n.clone();
    }
    k
}

/// Runs one case; the error names what differed, with the requests as a replay.
async fn run(backend: Backend, c: &Case) -> Result<(), String> {
    let steps = plan(c);
    let replay = || {
        steps
            .iter()
            .map(|s| match s {
                Step::Batch { clock, events } => format!(
                    "clock {} POST /events {}",
                    time::format(*clock),
                    Value::Array(events.clone())
                ),
                Step::Op(op, clock) => format!("clock {} {op:?}", time::format(*clock)),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let fail = |what: String| Err(format!("{what}\nreplay:\n{}", replay()));
    let clock = Arc::new(AtomicI64::new(start()));
    let mut program = rules(c.rules);
    let mut on = online(&backend, program.clone(), &clock).await;
    // What was sent, in order (the offline reference's input), and what the model knows.
    let mut sent: Vec<Value> = Vec::new();
    let mut merged: HashMap<String, String> = HashMap::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    // Leads whose transitions must equal the offline replay's exactly, and the instant
    // each lead was last evaluated to (a write or a sweep).
    let mut inexact: BTreeSet<String> = BTreeSet::new();
    let mut touched: HashMap<String, Micros> = HashMap::new();
    let mut swept = Micros::MIN;
    let mut latest: HashMap<String, Micros> = HashMap::new();
    for step in &steps {
        match step {
            Step::Batch { clock: t, events } => {
                clock.store(*t, Ordering::SeqCst);
                let (status, body) =
                    call(&on.router, post("/events", &Value::Array(events.clone()))).await;
                if status != 200 {
                    return fail(format!("POST /events answered {status}: {body}"));
                }
                for e in events {
                    let lead = root(&merged, e["lead"].as_str().unwrap());
                    let id = e["id"].as_str().unwrap().to_string();
                    if !seen.insert((lead.clone(), id)) {
                        continue;
                    }
                    let at = time::parse(e["at"].as_str().unwrap()).unwrap();
                    let evaluated = touched
                        .get(&lead)
                        .copied()
                        .unwrap_or(Micros::MIN)
                        .max(swept);
                    let before = latest.insert(lead.clone(), at).unwrap_or(Micros::MIN);
                    if at > *t || at < evaluated || at < before {
                        inexact.insert(lead.clone());
                    }
                    // Each event taken brings the lead up to the request's clock.
                    touched.insert(lead, *t);
                }
                sent.extend(events.iter().cloned());
            }
            Step::Op(Op::Merge(a, b), _) => {
                let (a, b) = (root(&merged, &key(*a)), root(&merged, &key(*b)));
                let exists = |k: &str| seen.iter().any(|(l, _)| l == k);
                if a == b || !exists(&a) || !exists(&b) {
                    continue;
                }
                let (status, body) = call(
                    &on.router,
                    post(&format!("/leads/{a}/merge"), &json!({"lead": b})),
                )
                .await;
                if status != 200 {
                    return fail(format!("merge {b} into {a} answered {status}: {body}"));
                }
                // b's events are a's now: ids stay unique per lead (they carry the index).
                seen = seen
                    .into_iter()
                    .map(|(l, id)| (if l == b { a.clone() } else { l }, id))
                    .collect();
                merged.insert(b.clone(), a.clone());
                inexact.insert(a);
            }
            Step::Op(Op::Reload, _) => {
                program = rules(c.rules.wrapping_add(1 + c.rules % 2));
                on.service.set_program(program.clone());
                let mut after: Option<String> = None;
                loop {
                    let body = match &after {
                        Some(a) => json!({"limit": 2, "after": a}),
                        None => json!({"limit": 2}),
                    };
                    let (status, page) = call(&on.router, post("/admin/rescore", &body)).await;
                    if status != 200 {
                        return fail(format!("rescore answered {status}: {page}"));
                    }
                    match page["next"].as_str() {
                        Some(n) => after = Some(n.to_string()),
                        None => break,
                    }
                }
                inexact.extend(seen.iter().map(|(l, _)| l.clone()));
            }
            Step::Op(Op::Restart, _) => {
                drop(on);
                on = online(&backend, program.clone(), &clock).await;
            }
            Step::Op(Op::Sweep, t) => {
                while on.service.sweep(100).await.map_err(|e| e.to_string())? > 0 {}
                swept = *t;
            }
        }
    }
    let last = clock.load(Ordering::SeqCst);
    let now = last + c.read_after as Micros * HOUR;
    clock.store(now, Ordering::SeqCst);

    // The reference over what was sent, each event under the lead it ended up in.
    let reference: Vec<Event> = sent
        .iter()
        .map(|v| {
            let mut e = Event::from_json(v).unwrap();
            e.lead = root(&merged, &e.lead);
            e
        })
        .collect();
    let (scored, _) = offline::score_all(&program, reference.clone(), now).unwrap();
    let expected: BTreeMap<String, Value> = scored
        .into_iter()
        .map(|s| (s.lead.clone(), s.json()))
        .collect();
    let leads: BTreeSet<String> = seen.iter().map(|(l, _)| l.clone()).collect();
    for pass in ["read", "read after the sweep"] {
        if pass != "read" {
            while on.service.sweep(100).await.map_err(|e| e.to_string())? > 0 {}
        }
        // Leads that count against an owner, as the leads say (docs/desk.md).
        let mut owned = 0u64;
        for lead in &leads {
            let (status, mut view) = call(
                &on.router,
                Request::get(format!("/leads/{lead}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            if status != 200 {
                return fail(format!(
                    "{pass}: GET /leads/{lead} answered {status}: {view}"
                ));
            }
            let unique = seen.iter().filter(|(l, _)| l == lead).count();
            let due = reference
                .iter()
                .filter(|e| &e.lead == lead && e.at <= now)
                .map(|e| &e.id)
                .collect::<BTreeSet<_>>()
                .len();
            if view["desk"]["owner"].is_string() && view["desk"]["closed"] == false {
                owned += 1;
            }
            // The desk's overdue tags are the desk's: offline scoring has no desk.
            if view["desk"]["overdue"] == true {
                let desk_tags: Vec<Value> = on
                    .service
                    .rules()
                    .program
                    .overdue_tags
                    .iter()
                    .map(|t| json!(t.name))
                    .collect();
                if let Some(tags) = view["tags"].as_array_mut() {
                    tags.retain(|t| !desk_tags.contains(t));
                }
            }
            let Some(want) = expected.get(lead) else {
                if view["events"] != 0 {
                    return fail(format!(
                        "{pass}: {lead} has no event before now offline: {view:#}"
                    ));
                }
                continue;
            };
            for k in [
                "score",
                "scores",
                "grade",
                "tags",
                "contributions",
                "open_questions",
            ] {
                if view[k] != want[k] {
                    return fail(format!(
                        "{pass}: {lead} at {}: {k} online {} offline {}\nonline {view:#}\noffline {want:#}",
                        time::format(now),
                        view[k],
                        want[k]
                    ));
                }
            }
            if view["events"] != due {
                return fail(format!(
                    "{pass}: {lead}: {} events counted, {due} before now",
                    view["events"]
                ));
            }
            let stored = on
                .service
                .store()
                .history(lead)
                .await
                .map_err(|e| e.to_string())?
                .len();
            if stored != unique {
                return fail(format!(
                    "{pass}: {lead}: {stored} events stored, {unique} unique"
                ));
            }
            if pass != "read" {
                if let Err(e) = transitions_hold(&view, want, !inexact.contains(lead)) {
                    return fail(format!("{lead}: {e}\nonline {view:#}\noffline {want:#}"));
                }
            }
        }
        let record = on
            .service
            .store()
            .desk()
            .await
            .map_err(|e| e.to_string())?
            .record;
        let counted: u64 = record.active.values().sum();
        OWNED.fetch_add(owned, Ordering::SeqCst);
        if counted != owned {
            return fail(format!(
                "{pass}: the desk counts {counted} owned leads ({:?}), the leads say {owned}",
                record.active
            ));
        }
    }
    Ok(())
}

/// docs/language.md, "Transitions online": a chain from `null` to the grade the lead has,
/// never going back in time; equal to the offline replay's when every event of the lead
/// arrived in order (at or after the instant the lead had been evaluated to, none ahead of
/// the clock) and no merge or rescore touched it.
fn transitions_hold(view: &Value, want: &Value, exact: bool) -> Result<(), String> {
    // Transitions moved over from a merged key keep that key's own chain.
    let t: Vec<Value> = view["transitions"]
        .as_array()
        .ok_or("no transitions")?
        .iter()
        .filter(|x| x.get("merged_from").is_none())
        .cloned()
        .collect();
    let mut prev: Option<&Value> = None;
    for x in &t {
        let from = &x["from"];
        let expect_from = prev.map_or(&Value::Null, |p| &p["to"]);
        if from != expect_from {
            return Err(format!(
                "transition {x} starts from {from}, the log was at {expect_from}"
            ));
        }
        if let Some(p) = prev {
            let at = |t: &Value| time::parse(t["at"].as_str().unwrap_or_default());
            if at(x) < at(p) {
                return Err(format!("transition {x} is before {p}"));
            }
        }
        prev = Some(x);
    }
    if prev.map(|p| &p["to"]) != Some(&view["grade"]) {
        return Err(format!(
            "the log ends at {:?}, the lead is {}",
            prev.map(|p| &p["to"]),
            view["grade"]
        ));
    }
    if exact {
        let strip = |t: &[Value]| -> Vec<Value> {
            t.iter()
                .map(|x| json!([x["from"], x["to"], x["at"], x["cause"], x["event"]]))
                .collect()
        };
        let (got, expected) = (strip(&t), strip(want["transitions"].as_array().unwrap()));
        if got != expected {
            return Err(format!("transitions online {got:?}, offline {expected:?}"));
        }
    }
    Ok(())
}

fn cases(divisor: u32) -> u32 {
    let n: u32 = std::env::var("LEADSCORE_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    (n / divisor).max(1)
}

/// Leads seen owned on the desk, over every case of the run: the desk is exercised.
static OWNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs the oracle with `cases` cases, each on a store from `backend`.
fn oracle<F, Fut>(cases: u32, backend: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Backend>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(RunConfig {
        cases,
        failure_persistence: None,
        ..RunConfig::default()
    });
    let result = runner.run(&case(), |c| {
        rt.block_on(async {
            let b = backend().await;
            run(b, &c).await.map_err(TestCaseError::fail)
        })
    });
    eprintln!(
        "oracle: {cases} cases in {:.1?} ({} leads seen owned)",
        started.elapsed(),
        OWNED.load(Ordering::SeqCst)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        cases < 20 || OWNED.load(Ordering::SeqCst) > 0,
        "no case assigned a lead: the desk went untested"
    );
}

#[test]
fn http_on_memory_equals_the_offline_reference() {
    oracle(cases(1), || async {
        Backend::Memory(Arc::new(MemoryStore::new()))
    });
}

#[test]
fn http_on_sqlite_equals_the_offline_reference() {
    let dir = common::tmp("oracle");
    let n = std::sync::atomic::AtomicUsize::new(0);
    oracle(cases(5), || {
        let path = dir.join(format!("case-{}.db", n.fetch_add(1, Ordering::SeqCst)));
        async move { Backend::Sqlite(path) }
    });
}

#[test]
fn http_on_dynamodb_equals_the_offline_reference() {
    let endpoint = common::moto();
    oracle(cases(20), || {
        let endpoint = endpoint.clone();
        async move {
            let client = common::dynamo_client(&endpoint).await;
            let table = common::table_name("oracle");
            leadscore_store::dynamo::DynamoStore::new(client.clone(), table.clone())
                .create_table()
                .await
                .expect("table created");
            Backend::Dynamo(client, table)
        }
    });
}
