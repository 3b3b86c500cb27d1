//! The sales desk (docs/desk.md) on every store — memory, a SQLite file and DynamoDB
//! (moto) — through the service with a clock the test moves: assignment (in order, round
//! robin, by region, capacity), owners kept while the grade stays in one `assign`,
//! follow-ups and deadlines (overdue at the exact instant, cleared by a follow-up),
//! recycling, plans, closing, score history and rising leads, the work queues' filters,
//! sorts and cursors, and round robin staying exact under 64 concurrent writers in two
//! services sharing one store.

mod common;

use leadscore_runtime::time::{self, Micros};
use leadscore_service::config::Config;
use leadscore_service::{parse_events, Queue, Roster, Service};
use leadscore_store::{memory::MemoryStore, sqlite::SqliteStore, LeadLog, NoteStatus, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const HOUR: Micros = 3_600_000_000;
const DAY: Micros = 24 * HOUR;
const START: &str = "2026-11-02T09:00:00Z";

/// Seed 001's routing, its scores cut down to what the tests move.
const RULES: &str = r#"
set eu_markets = ["DE", "FR", "IT"]
when form.submitted where form = "inquiry" add 70
when form.submitted where form = "contact" add 45
when page.viewed add 10 each
when deal.won add 1
grade A when score >= 70
grade B when score >= 40
grade C otherwise

channel managers = webhook "https://crm.example/managers"
channel reps = webhook "https://crm.example/reps"

assign grade A and country in eu_markets to team eu_owners within 1h
assign grade A to team senior round robin within 1h
assign grade B to team sales round robin within 24h plan b_cadence
assign otherwise to pool

plan b_cadence = [email at 0d, call at 2d, email at 6d]
recycle after 48h without followup
notify managers when followup overdue
notify reps when owner changes
notify reps when task due
tag overdue when followup overdue
"#;

const CONFIG: &str = r#"
[teams]
senior    = ["amy@firm.example", "li@firm.example"]
sales     = ["bo@firm.example", "cy@firm.example", "di@firm.example"]
eu_owners = ["hans@firm.example"]

[desk]
followup_events = ["sales.contacted", "call.completed", "email.sent_by_rep"]
"#;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Sqlite,
    Dynamo,
}

const KINDS: [Kind; 3] = [Kind::Memory, Kind::Sqlite, Kind::Dynamo];

async fn store(kind: Kind, name: &str) -> Arc<dyn Store> {
    match kind {
        Kind::Memory => Arc::new(MemoryStore::new()),
        Kind::Sqlite => Arc::new(
            SqliteStore::open(common::tmp(&format!("desk-{name}")).join("desk.db")).unwrap(),
        ),
        Kind::Dynamo => {
            Arc::new(common::new_table(common::dynamo_client(&common::moto()).await, name).await)
        }
    }
}

struct Desk {
    s: Service,
    clock: Arc<AtomicI64>,
    store: Arc<dyn Store>,
    seq: AtomicI64,
}

fn roster(config: &str) -> Roster {
    Roster::from_config(&Config::parse(config).unwrap())
}

fn service(rules: &str, config: &str, store: Arc<dyn Store>, clock: Arc<AtomicI64>) -> Service {
    let program = leadscore_compiler::compile(rules, "desk").unwrap().program;
    let c = clock.clone();
    Service::with_clock(program, store, Arc::new(move || c.load(Ordering::SeqCst)))
        .with_roster(roster(config))
        .unwrap()
}

async fn desk(kind: Kind, name: &str, rules: &str, config: &str) -> Desk {
    let store = store(kind, name).await;
    let clock = Arc::new(AtomicI64::new(time::parse(START).unwrap()));
    Desk {
        s: service(rules, config, store.clone(), clock.clone()),
        clock,
        store,
        seq: AtomicI64::new(0),
    }
}

impl Desk {
    fn now(&self) -> Micros {
        self.clock.load(Ordering::SeqCst)
    }

    fn pass(&self, by: Micros) {
        self.clock.fetch_add(by, Ordering::SeqCst);
    }

    /// One event now (its id fresh).
    async fn send(&self, lead: &str, ty: &str, extra: Value) -> Value {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut e = json!({"id": format!("e{n}"), "lead": lead, "type": ty,
                           "at": time::format(self.now())});
        if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            o.extend(x.clone());
        }
        let events = parse_events(&e, self.now()).unwrap();
        self.s.ingest(events).await.unwrap().to_json()
    }

    /// A contact form: 45 points, a B lead.
    async fn contact(&self, lead: &str) {
        self.send(
            lead,
            "form.submitted",
            json!({"props": {"form": "contact"}}),
        )
        .await;
    }

    async fn inquiry(&self, lead: &str, country: &str) {
        self.send(
            lead,
            "form.submitted",
            json!({"attributes": {"country": country}, "props": {"form": "inquiry"}}),
        )
        .await;
    }

    async fn lead(&self, lead: &str) -> Value {
        self.s.lead(lead).await.unwrap().found().unwrap()
    }

    async fn owner(&self, lead: &str) -> Value {
        self.lead(lead).await["desk"]["owner"].clone()
    }

    async fn queue(&self, query: &str, reader: Option<&str>) -> Vec<String> {
        let pairs = Queue::pairs(query).unwrap();
        let mut q = Queue::parse(&pairs, reader, self.now()).unwrap();
        q.list.limit = 100;
        self.s
            .queue(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.lead)
            .collect()
    }

    /// Pending notifications by channel, with what each was about.
    async fn notes(&self) -> Vec<(String, Value)> {
        self.store
            .notes(NoteStatus::Pending, 1000, None)
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.note.channel, o.note.body))
            .collect()
    }
}

#[tokio::test]
async fn leads_are_assigned_by_the_first_assign_that_has_someone_on_every_store() {
    for kind in KINDS {
        let d = desk(kind, "assign", RULES, CONFIG).await;
        // A from Germany: the region's owner. A elsewhere: the senior team in turn.
        d.inquiry("de@buyer.example", "DE").await;
        for i in 0..4 {
            d.inquiry(&format!("us{i}@buyer.example"), "US").await;
        }
        assert_eq!(
            d.owner("de@buyer.example").await,
            "hans@firm.example",
            "{kind:?}"
        );
        let seniors: Vec<Value> = futures_owners(&d, "us", 4).await;
        assert_eq!(
            seniors,
            [
                "amy@firm.example",
                "li@firm.example",
                "amy@firm.example",
                "li@firm.example"
            ],
            "{kind:?}: round robin in the team's order"
        );
        // C: the pool, nobody's.
        d.send("c@buyer.example", "page.viewed", json!({})).await;
        let c = d.lead("c@buyer.example").await;
        assert_eq!(c["desk"]["owner"], Value::Null, "{kind:?}");
        assert_eq!(c["desk"]["pool"], true, "{kind:?}");
        // The change is recorded with the rule that made it.
        let de = d.lead("de@buyer.example").await;
        let change = &de["desk"]["changes"][0];
        assert_eq!(change["to_owner"], "hans@firm.example");
        assert_eq!(change["from_owner"], Value::Null);
        assert_eq!(change["cause"], "grade");
        assert_eq!(change["line"], 14, "{kind:?}");
        assert_eq!(
            change["rule"],
            "assign grade A and country in eu_markets to team eu_owners within 1h"
        );
        assert_eq!(de["desk"]["deadline"], "2026-11-02T10:00:00Z", "within 1h");
        // The owner is told (`notify reps when owner changes`), with the change.
        let notes = d.notes().await;
        let owner_notes: Vec<&Value> = notes
            .iter()
            .filter(|(c, b)| c == "reps" && b["owner_change"].is_object())
            .map(|(_, b)| b)
            .collect();
        assert_eq!(owner_notes.len(), 5, "{kind:?}: one per assignment");
        assert!(owner_notes
            .iter()
            .any(|b| b["owner_change"]["to_owner"] == "hans@firm.example"
                && b["owner"] == "hans@firm.example"
                && b["lead"] == "de@buyer.example"));
        // Queues: by owner, the pool.
        assert_eq!(
            d.queue("owner=amy@firm.example", None).await,
            ["us0@buyer.example", "us2@buyer.example"],
            "{kind:?}"
        );
        assert_eq!(d.queue("pool=true", None).await, ["c@buyer.example"]);
    }
}

async fn futures_owners(d: &Desk, prefix: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(d.owner(&format!("{prefix}{i}@buyer.example")).await);
    }
    out
}

#[tokio::test]
async fn a_lead_keeps_its_owner_while_its_grade_stays_in_one_assign_and_moves_with_it() {
    let rules = RULES.replace(
        "assign grade B to team sales round robin within 24h plan b_cadence",
        "assign grade A, B to team sales round robin within 24h",
    );
    let rules = rules
        .replace(
            "assign grade A and country in eu_markets to team eu_owners within 1h\n",
            "",
        )
        .replace("assign grade A to team senior round robin within 1h\n", "")
        .replace("notify reps when task due\n", "")
        .replace(
            "plan b_cadence = [email at 0d, call at 2d, email at 6d]\n",
            "",
        );
    for kind in KINDS {
        let d = desk(kind, "keep", &rules, CONFIG).await;
        // B (contact form): bo. Then A: the same `assign` line, the same owner.
        d.contact("x@buyer.example").await;
        assert_eq!(d.owner("x@buyer.example").await, "bo@firm.example");
        d.send("x@buyer.example", "page.viewed", json!({})).await;
        d.send("x@buyer.example", "page.viewed", json!({})).await;
        d.send("x@buyer.example", "page.viewed", json!({})).await;
        let x = d.lead("x@buyer.example").await;
        assert_eq!(x["grade"], "A", "{kind:?}");
        assert_eq!(x["desk"]["owner"], "bo@firm.example", "{kind:?}: kept");
        assert_eq!(x["desk"]["changes"].as_array().unwrap().len(), 1);
    }
    // Another `assign`: a new owner from that line.
    for kind in KINDS {
        let d = desk(kind, "move", RULES, CONFIG).await;
        d.contact("y@buyer.example").await;
        assert_eq!(d.owner("y@buyer.example").await, "bo@firm.example");
        for _ in 0..3 {
            d.send("y@buyer.example", "page.viewed", json!({})).await;
        }
        let y = d.lead("y@buyer.example").await;
        assert_eq!(y["grade"], "A");
        assert_eq!(y["desk"]["owner"], "amy@firm.example", "{kind:?}");
        let last = &y["desk"]["changes"][1];
        assert_eq!(last["from_owner"], "bo@firm.example");
        assert_eq!(last["to_owner"], "amy@firm.example");
        assert_eq!(y["desk"]["tasks"], json!([]), "{kind:?}: B's plan stopped");
    }
}

#[tokio::test]
async fn a_missed_deadline_is_overdue_at_its_instant_and_a_followup_clears_it() {
    for kind in KINDS {
        let d = desk(kind, "overdue", RULES, CONFIG).await;
        d.inquiry("a@buyer.example", "US").await;
        // 59 minutes: not yet.
        d.pass(59 * 60_000_000);
        d.s.sweep(100).await.unwrap();
        assert_eq!(d.lead("a@buyer.example").await["tags"], json!([]));
        assert!(d.queue("overdue=true", None).await.is_empty());
        // Past the hour: the sweep finds it (the deadline is in the sweep's index).
        d.pass(2 * 60_000_000);
        assert_eq!(d.s.sweep(100).await.unwrap(), 1, "{kind:?}");
        let a = d.lead("a@buyer.example").await;
        assert_eq!(a["tags"], json!(["overdue"]), "{kind:?}");
        assert_eq!(a["desk"]["overdue"], true);
        let overdue: Vec<Value> = d
            .notes()
            .await
            .into_iter()
            .filter(|(c, b)| c == "managers" && b["overdue"].is_object())
            .map(|(_, b)| b)
            .collect();
        assert_eq!(overdue.len(), 1, "{kind:?}: once");
        assert_eq!(overdue[0]["overdue"]["deadline"], "2026-11-02T10:00:00Z");
        assert_eq!(overdue[0]["overdue"]["owner"], "amy@firm.example");
        assert_eq!(overdue[0]["tags"], json!(["overdue"]));
        assert_eq!(d.queue("overdue=true", None).await, ["a@buyer.example"]);
        assert_eq!(d.queue("tag=overdue", None).await, ["a@buyer.example"]);
        // Swept again: nothing more.
        assert_eq!(d.s.sweep(100).await.unwrap(), 0, "{kind:?}");
        // The rep calls: no longer overdue, the follow-up recorded.
        d.send(
            "a@buyer.example",
            "call.completed",
            json!({"props": {"owner": "amy@firm.example"}}),
        )
        .await;
        let a = d.lead("a@buyer.example").await;
        assert_eq!(a["tags"], json!([]), "{kind:?}");
        assert_eq!(a["desk"]["overdue"], false);
        assert_eq!(a["desk"]["followup_by"], "amy@firm.example");
        assert!(d.queue("overdue=true", None).await.is_empty(), "{kind:?}");
        assert!(d.queue("tag=overdue", None).await.is_empty(), "{kind:?}");
    }
}

#[tokio::test]
async fn a_followup_in_time_meets_the_deadline_even_when_it_arrives_after_it() {
    for kind in KINDS {
        let d = desk(kind, "late-followup", RULES, CONFIG).await;
        d.inquiry("a@buyer.example", "US").await;
        let contacted = time::format(d.now() + 30 * 60_000_000);
        // Reported two hours later (a CRM's batch), no sweep in between.
        d.pass(2 * HOUR);
        let events = parse_events(
            &json!({"id": "f1", "lead": "a@buyer.example", "type": "sales.contacted",
                    "at": contacted}),
            d.now(),
        )
        .unwrap();
        d.s.ingest(events).await.unwrap();
        let a = d.lead("a@buyer.example").await;
        assert_eq!(a["desk"]["overdue"], false, "{kind:?}");
        assert!(d
            .notes()
            .await
            .iter()
            .all(|(_, b)| !b["overdue"].is_object()));
    }
}

#[tokio::test]
async fn a_lead_without_a_followup_is_recycled_to_the_pool_and_then_the_next_owner() {
    for kind in KINDS {
        let d = desk(kind, "recycle", RULES, CONFIG).await;
        d.inquiry("a@buyer.example", "US").await;
        assert_eq!(d.owner("a@buyer.example").await, "amy@firm.example");
        d.pass(48 * HOUR);
        d.s.sweep(100).await.unwrap();
        let a = d.lead("a@buyer.example").await;
        assert_eq!(a["desk"]["owner"], "li@firm.example", "{kind:?}");
        let causes: Vec<(Value, Value, Value)> = a["desk"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["from_owner"].clone(),
                    c["to_owner"].clone(),
                    c["cause"].clone(),
                )
            })
            .collect();
        assert_eq!(
            causes,
            [
                (Value::Null, json!("amy@firm.example"), json!("grade")),
                (json!("amy@firm.example"), Value::Null, json!("recycle")),
                (Value::Null, json!("li@firm.example"), json!("recycle")),
            ],
            "{kind:?}"
        );
        assert_eq!(
            a["desk"]["deadline"],
            time::format(d.now() + HOUR),
            "a new deadline for the new owner"
        );
        // A follow-up after the new assignment: never recycled again.
        d.send("a@buyer.example", "sales.contacted", json!({}))
            .await;
        d.pass(72 * HOUR);
        d.s.sweep(100).await.unwrap();
        assert_eq!(
            d.owner("a@buyer.example").await,
            "li@firm.example",
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn owners_at_their_limit_are_skipped_and_closing_erasing_merging_frees_room() {
    let config = format!("{CONFIG}max_active_per_owner = 1\n");
    for kind in KINDS {
        let d = desk(kind, "limit", RULES, &config).await;
        d.inquiry("a1@buyer.example", "US").await;
        d.inquiry("a2@buyer.example", "US").await;
        // Both seniors full: the next `assign` for A is the pool's (`otherwise`).
        d.inquiry("a3@buyer.example", "US").await;
        assert_eq!(d.owner("a1@buyer.example").await, "amy@firm.example");
        assert_eq!(d.owner("a2@buyer.example").await, "li@firm.example");
        let a3 = d.lead("a3@buyer.example").await;
        assert_eq!(a3["desk"]["owner"], Value::Null, "{kind:?}");
        assert_eq!(a3["desk"]["pool"], true);
        let record = d.store.desk().await.unwrap().record;
        assert_eq!(
            record.active,
            BTreeMap::from([
                ("amy@firm.example".into(), 1),
                ("li@firm.example".into(), 1)
            ])
        );
        // a1 is won: amy has room again.
        d.send("a1@buyer.example", "deal.won", json!({})).await;
        d.inquiry("a4@buyer.example", "US").await;
        assert_eq!(
            d.owner("a4@buyer.example").await,
            "amy@firm.example",
            "{kind:?}"
        );
        // a2 erased, a4 merged into a5: both seniors free.
        d.s.erase("a2@buyer.example").await.unwrap();
        d.send("a5@buyer.example", "page.viewed", json!({})).await;
        d.s.merge("a5@buyer.example", "a4@buyer.example")
            .await
            .unwrap();
        // a5 took a4's inquiry: an A lead now, and the only one counted.
        let a5 = d.owner("a5@buyer.example").await;
        let record = d.store.desk().await.unwrap().record;
        assert_eq!(
            record.active,
            BTreeMap::from([(a5.as_str().unwrap().to_string(), 1)]),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn assignment_by_region_picks_the_member_whose_regions_hold_the_value() {
    let rules = RULES.replace(
        "assign grade A and country in eu_markets to team eu_owners within 1h",
        "assign grade A to team regional by country within 1h",
    );
    let config = format!(
        "{}\n[owners.\"hans@firm.example\"]\nregions = [\"de\", \"AT\"]\n[owners.\"mei@firm.example\"]\nregions = [\"cn\"]\n",
        CONFIG.replace(
            "eu_owners = [\"hans@firm.example\"]",
            "eu_owners = [\"hans@firm.example\"]\nregional = [\"hans@firm.example\", \"mei@firm.example\"]"
        )
    );
    for kind in KINDS {
        let d = desk(kind, "region", &rules, &config).await;
        d.inquiry("at@buyer.example", "at").await;
        d.inquiry("cn@buyer.example", "CN").await;
        d.inquiry("us@buyer.example", "US").await;
        assert_eq!(
            d.owner("at@buyer.example").await,
            "hans@firm.example",
            "{kind:?}"
        );
        assert_eq!(d.owner("cn@buyer.example").await, "mei@firm.example");
        // Nobody's region: the next `assign` (the senior team).
        assert_eq!(d.owner("us@buyer.example").await, "amy@firm.example");
    }
}

#[tokio::test]
async fn a_plan_gives_the_owner_tasks_met_by_followups_of_their_kind() {
    for kind in KINDS {
        let d = desk(kind, "plan", RULES, CONFIG).await;
        d.contact("b@buyer.example").await;
        let b = d.lead("b@buyer.example").await;
        assert_eq!(b["desk"]["owner"], "bo@firm.example");
        let dues: Vec<&Value> = b["desk"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["due"])
            .collect();
        assert_eq!(
            dues,
            [
                "2026-11-02T09:00:00Z",
                "2026-11-04T09:00:00Z",
                "2026-11-08T09:00:00Z"
            ],
            "{kind:?}: day 1, day 3, day 7"
        );
        // Day 1's e-mail is due at once: its notification is made with the assignment.
        let due = |notes: &[(String, Value)]| -> Vec<String> {
            notes
                .iter()
                .filter(|(c, b)| c == "reps" && b["task"].is_object())
                .map(|(_, b)| b["task"]["kind"].as_str().unwrap().to_string())
                .collect()
        };
        d.s.sweep(100).await.unwrap();
        assert_eq!(due(&d.notes().await), ["email"], "{kind:?}");
        d.send("b@buyer.example", "email.sent_by_rep", json!({}))
            .await;
        // The call falls due on day 3 and is met by a call.
        d.pass(2 * DAY);
        d.s.sweep(100).await.unwrap();
        assert_eq!(due(&d.notes().await), ["email", "call"], "{kind:?}");
        d.send("b@buyer.example", "call.completed", json!({})).await;
        let tasks = d.lead("b@buyer.example").await["desk"]["tasks"].clone();
        let done: Vec<bool> = tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["done_at"].is_string())
            .collect();
        assert_eq!(done, [true, true, false], "{kind:?}");
        // The queue by deadline: what the owner must do next.
        d.contact("b2@buyer.example").await;
        assert_eq!(
            d.queue("grade=B&sort=deadline", None).await,
            ["b2@buyer.example", "b@buyer.example"],
            "{kind:?}: b2's first step is due now, b's last in four days"
        );
        // Won: the plan stops.
        d.send("b@buyer.example", "deal.won", json!({})).await;
        d.pass(5 * DAY);
        d.s.sweep(100).await.unwrap();
        assert_eq!(
            due(&d.notes().await)
                .iter()
                .filter(|k| *k == "email")
                .count(),
            2,
            "{kind:?}: b2's first e-mail, b's first; never b's last"
        );
    }
}

#[tokio::test]
async fn score_history_is_kept_and_rising_leads_are_found_on_every_store() {
    for kind in KINDS {
        let d = desk(kind, "history", RULES, CONFIG).await;
        // c1: 10 a day over 3 days, then quiet. c2: 10 long ago, nothing since.
        d.send("c2@buyer.example", "page.viewed", json!({})).await;
        d.pass(DAY);
        for _ in 0..3 {
            d.send("c1@buyer.example", "page.viewed", json!({})).await;
            d.pass(DAY);
        }
        d.pass(10 * DAY);
        d.send("c1@buyer.example", "page.viewed", json!({})).await;
        d.send("c1@buyer.example", "page.viewed", json!({})).await;
        let (_, points) =
            d.s.score_history("c1@buyer.example", d.now() - 30 * DAY)
                .await
                .unwrap()
                .unwrap();
        let scores: Vec<i64> = points.iter().map(|p| p.score).collect();
        assert_eq!(
            scores,
            [10, 20, 30, 50],
            "{kind:?}: one point a minute, the last"
        );
        // Rose by 20 in 7 days: c1 (30 → 50), not c2.
        assert_eq!(
            d.queue("grade=B&rising=20:7d", None).await,
            ["c1@buyer.example"],
            "{kind:?}"
        );
        assert!(d.queue("rising=21:7d", None).await.is_empty(), "{kind:?}");
        // 14 days back c1 had nothing: it rose from 0.
        assert_eq!(d.queue("rising=50:14d", None).await, ["c1@buyer.example"]);
        // The point in force at `since` leads the history.
        let (_, since) =
            d.s.score_history("c1@buyer.example", d.now() - 5 * DAY)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(
            since.iter().map(|p| p.score).collect::<Vec<_>>(),
            [30, 50],
            "{kind:?}"
        );
        assert!(d
            .s
            .score_history("nobody@x.example", 0)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn queues_filter_sort_and_page_alike_on_every_store() {
    for kind in KINDS {
        let d = desk(kind, "queues", RULES, CONFIG).await;
        d.inquiry("a@buyer.example", "US").await; // A, amy, 70
        d.pass(HOUR);
        d.contact("b@buyer.example").await; // B, bo, 45
        d.pass(HOUR);
        d.send("c@buyer.example", "page.viewed", json!({})).await; // C, pool, 10
        d.pass(8 * DAY);
        d.send("old@buyer.example", "page.viewed", json!({})).await;
        d.send("c@buyer.example", "page.viewed", json!({})).await; // C, 20, updated now
        let all = d.queue("", None).await;
        assert_eq!(
            all,
            [
                "a@buyer.example",
                "b@buyer.example",
                "c@buyer.example",
                "old@buyer.example"
            ],
            "{kind:?}: by score, ties by key"
        );
        assert_eq!(
            d.queue("sort=updated", None).await,
            [
                "c@buyer.example",
                "old@buyer.example",
                "b@buyer.example",
                "a@buyer.example"
            ],
            "{kind:?}"
        );
        assert_eq!(
            d.queue("created_since=7d", None).await,
            ["old@buyer.example"],
            "{kind:?}"
        );
        assert_eq!(
            d.queue("updated_since=1d&grade=C", None).await,
            ["c@buyer.example", "old@buyer.example"]
        );
        assert_eq!(
            d.queue("owner=me&grade=A", Some("amy@firm.example")).await,
            ["a@buyer.example"]
        );
        // Pages of one, in each order, cover the queue exactly once.
        for sort in ["score", "updated", "deadline"] {
            let pairs = Queue::pairs(&format!("sort={sort}")).unwrap();
            let mut q = Queue::parse(&pairs, None, d.now()).unwrap();
            q.list.limit = 1;
            let mut seen = Vec::new();
            loop {
                let page = d.s.queue(&q).await.unwrap();
                let Some(last) = page.last() else { break };
                seen.push(last.lead.clone());
                q.list.after = Some((q.list.sort.key(&last.summary), last.lead.clone()));
            }
            let whole = d.queue(&format!("sort={sort}"), None).await;
            assert_eq!(seen, whole, "{kind:?} {sort}");
        }
    }
}

#[tokio::test]
async fn rescoring_reassigns_quietly() {
    for kind in KINDS {
        let d = desk(kind, "rescore", RULES, CONFIG).await;
        d.contact("b@buyer.example").await;
        assert_eq!(d.owner("b@buyer.example").await, "bo@firm.example");
        let before = d.notes().await.len();
        // New rules: a contact form is worth 70 (A).
        let program = leadscore_compiler::compile(&RULES.replace("add 45", "add 75"), "desk")
            .unwrap()
            .program;
        d.s.set_program(program);
        d.s.rescore(100, None).await.unwrap();
        let b = d.lead("b@buyer.example").await;
        assert_eq!(b["grade"], "A");
        assert_eq!(b["desk"]["owner"], "amy@firm.example", "{kind:?}");
        assert_eq!(b["desk"]["changes"][1]["cause"], "rescore");
        assert_eq!(d.notes().await.len(), before, "{kind:?}: quietly");
    }
}

#[tokio::test]
async fn rules_naming_a_team_the_configuration_lacks_are_refused() {
    let program = leadscore_compiler::compile(RULES, "desk").unwrap().program;
    let err = Service::new(program, Arc::new(MemoryStore::new()))
        .with_roster(roster("[teams]\nsenior = [\"amy@firm.example\"]\n"))
        .err()
        .unwrap();
    assert!(err.contains("team `eu_owners`"), "{err}");
    assert!(err.contains("line 14"), "{err}");
}

/// 64 writers at once, in two services sharing the store (two processes, two Lambda
/// instances): every lead assigned exactly once and the team's turns shared out evenly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_stays_exact_under_64_concurrent_writers_in_two_services() {
    for kind in KINDS {
        let store = store(kind, "fair").await;
        let clock = Arc::new(AtomicI64::new(time::parse(START).unwrap()));
        let services = [
            Arc::new(service(RULES, CONFIG, store.clone(), clock.clone())),
            Arc::new(service(RULES, CONFIG, store.clone(), clock.clone())),
        ];
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = services[i % 2].clone();
            let at = time::format(clock.load(Ordering::SeqCst));
            tasks.push(tokio::spawn(async move {
                let e = json!({"id": format!("f{i}"), "lead": format!("b{i:02}@buyer.example"),
                               "type": "form.submitted", "at": at,
                               "props": {"form": "contact"}});
                let events = parse_events(&e, s.now()).unwrap();
                // A store that stays contended answers "come back later": come back.
                loop {
                    match s.ingest(events.clone()).await {
                        Ok(_) => break,
                        Err(leadscore_service::ServiceError::Store(
                            leadscore_store::StoreError::Unavailable(_)
                            | leadscore_store::StoreError::Conflict,
                        )) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..64 {
            let lead = services[0]
                .lead(&format!("b{i:02}@buyer.example"))
                .await
                .unwrap()
                .found()
                .unwrap();
            let changes = lead["desk"]["changes"].as_array().unwrap();
            assert_eq!(changes.len(), 1, "{kind:?}: assigned once");
            *counts
                .entry(lead["desk"]["owner"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        assert_eq!(
            counts,
            BTreeMap::from([
                ("bo@firm.example".into(), 22),
                ("cy@firm.example".into(), 21),
                ("di@firm.example".into(), 21),
            ]),
            "{kind:?}: 64 in turn over three"
        );
        let record = store.desk().await.unwrap().record;
        assert_eq!(record.turns.get("sales"), Some(&1), "{kind:?}: after bo");
        assert_eq!(record.active.values().sum::<u64>(), 64, "{kind:?}");
    }
}

/// examples/001-zoho.toml, delivering to receivers on loopback, with reader tokens.
fn seed_config(dir: &std::path::Path, slack: &str, ding: &str, crm: &str) -> std::path::PathBuf {
    let desk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/001-zoho.toml"
    ))
    .unwrap()
    .replace(
        "[readers.amy]\nowner = \"amy@firm.example\"",
        "[readers.amy]\nowner = \"amy@firm.example\"\ntoken = \"amy-token\"",
    );
    let path = dir.join("leadscore.toml");
    std::fs::write(
        &path,
        format!(
            r#"{desk}
[notify]
allow_private = true
poll_millis = 100

[secrets]
SLACK_SALES_URL = "{slack}/services/T0001/B0001/XXXX"
DINGTALK_MANAGERS_URL = "{ding}/robot/send?access_token=t"
DINGTALK_MANAGERS_SECRET = "SECm4n"

[http.zoho]
method = "PUT"
url = "{crm}/crm/v2/Leads/{{{{lead}}}}"
body = '{{"data": [{{"Lead_Score": {{{{score}}}}, "Lead_Grade": {{{{grade}}}}}}]}}'
"#
        ),
    )
    .unwrap();
    path
}

async fn read(c: &reqwest::Client, s: &common::Server, path: &str, token: &str) -> Value {
    let r = c.get(s.at(path)).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn leads_of(page: &Value) -> Vec<String> {
    page["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lead"].as_str().unwrap().to_string())
        .collect()
}

/// Seed 001's follow-up section through `leadscore serve` on a SQLite file: a form makes
/// an A lead, it is assigned round robin and its owner told in Slack; an hour without a
/// follow-up (the sweep, run up to that instant as an operator would) makes it overdue —
/// tagged, in the overdue view, the managers' notification in the outbox; a follow-up
/// posted to `POST /leads/{lead}/followups` clears it; a C lead rising by 20 in 7 days
/// appears in its view; the rep's own token sees "my A leads".
#[tokio::test(flavor = "multi_thread")]
async fn seed_001s_followup_section_end_to_end_through_serve_on_sqlite() {
    use common::{secured, send_signed, Receiver, Server, TOKEN};
    let slack = Receiver::ok().await;
    let ding = Receiver::start(Arc::new(|_| {
        (
            200,
            r#"{"errcode":0,"errmsg":"ok"}"#.into(),
            std::time::Duration::ZERO,
        )
    }))
    .await;
    let crm = Receiver::ok().await;
    let dir = common::tmp("desk-serve");
    let db = dir.join("l.db");
    let config = seed_config(&dir, &slack.url, &ding.url, &crm.url);
    let rules = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/001-zoho.rules"
    ));
    let s = Server::start(&rules, &db, Some(&config), &secured());
    let c = reqwest::Client::new();
    // A form from a US decider: A, the senior team's first turn (amy).
    let form = |email: &'static str, country: &'static str| {
        let c = c.clone();
        let url = s.at("/forms/inquiry");
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("email", email),
                    ("country", country),
                    ("title", "CEO"),
                    ("product", "LED Panel"),
                    ("message", "500 pcs please"),
                ])
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            v
        }
    };
    let v = form("ann@buyer.example", "US").await;
    assert_eq!(v["leads"][0]["grade"], "A", "{v}");
    form("bob@buyer.example", "US").await;
    let ann = read(&c, &s, "/leads/ann@buyer.example", TOKEN).await;
    assert_eq!(ann["desk"]["owner"], "amy@firm.example", "{ann}");
    let bob = read(&c, &s, "/leads/bob@buyer.example", TOKEN).await;
    assert_eq!(bob["desk"]["owner"], "li@firm.example", "round robin");
    let deadline = ann["desk"]["deadline"].as_str().unwrap().to_string();
    // The owner is told in Slack (`notify sales when owner changes`), with the owner named.
    let got = slack
        .wait_accepted(4, std::time::Duration::from_secs(20))
        .await;
    let texts: Vec<String> = got
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("ann@buyer.example (A) is assigned to amy@firm.example")),
        "{texts:?}"
    );
    // Reps see their own queue with their own token.
    let mine = read(&c, &s, "/views/my_new_a", "amy-token").await;
    assert_eq!(leads_of(&mine), ["ann@buyer.example"], "{mine}");
    let r = c
        .get(s.at("/views/my_new_a"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "owner=me needs a reader's own token");
    // An hour passes with no follow-up: the sweep up to then (a second process on the
    // same file, as a cron job would run it).
    let after = time::format(time::parse(&deadline).unwrap() + 60_000_000);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["sweep"])
        .arg(&rules)
        .arg("--db")
        .arg(&db)
        .arg("--config")
        .arg(&config)
        .args(["--now", &after])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ann = read(&c, &s, "/leads/ann@buyer.example", TOKEN).await;
    assert!(
        ann["tags"].as_array().unwrap().contains(&json!("overdue")),
        "{ann}"
    );
    let overdue = read(&c, &s, "/views/overdue", TOKEN).await;
    assert!(leads_of(&overdue).contains(&"ann@buyer.example".to_string()));
    let pending = read(&c, &s, "/notifications?status=pending", TOKEN).await;
    let managers: Vec<&Value> = pending["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["channel"] == "managers" && n["lead"] == "ann@buyer.example")
        .collect();
    assert_eq!(managers.len(), 1, "{pending}");
    // The rep calls and says so: no longer overdue.
    let r = send_signed(
        &c,
        reqwest::Method::POST,
        s.at("/leads/ann@buyer.example/followups"),
        &json!({"id": "call-1", "type": "call.completed", "owner": "amy@firm.example",
                "note": "asked for a quote"}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ann = read(&c, &s, "/leads/ann@buyer.example", TOKEN).await;
    assert!(
        !ann["tags"].as_array().unwrap().contains(&json!("overdue")),
        "{ann}"
    );
    assert_eq!(ann["desk"]["followup_by"], "amy@firm.example");
    let overdue = read(&c, &s, "/views/overdue", TOKEN).await;
    assert!(!leads_of(&overdue).contains(&"ann@buyer.example".to_string()));
    // A follow-up of another type is refused, with the types it takes.
    let r = send_signed(
        &c,
        reqwest::Method::POST,
        s.at("/leads/ann@buyer.example/followups"),
        &json!({"id": "x-1", "type": "page.viewed"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("sales.contacted"));
    // A C lead warming up: a product page (10) and the pricing page (20).
    let now = common::now_secs();
    let ev = |id: &str, at: i64, page: &str| {
        json!({"id": id, "lead": "cara@buyer.example", "type": "page.viewed",
               "at": common::iso(at), "props": {"page": page}})
    };
    let r = common::post_signed(
        &c,
        &s,
        common::SECRET,
        now,
        &json!([ev("c1", now - 60, "product")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = common::post_signed(
        &c,
        &s,
        common::SECRET,
        now,
        &json!([ev("c2", now - 30, "pricing")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cara = read(&c, &s, "/leads/cara@buyer.example", TOKEN).await;
    assert_eq!(cara["grade"], "C", "{cara}");
    assert_eq!(cara["score"], 30);
    let warming = read(&c, &s, "/views/c_warming", TOKEN).await;
    assert_eq!(leads_of(&warming), ["cara@buyer.example"], "{warming}");
    let history = read(&c, &s, "/leads/cara@buyer.example/history?since=7d", TOKEN).await;
    let scores: Vec<i64> = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["score"].as_i64().unwrap())
        .collect();
    assert_eq!(scores.last(), Some(&30), "{history}");
    // The queue's filters over HTTP, and a bad one named.
    let a = read(&c, &s, "/leads?grade=A&owner=li@firm.example", TOKEN).await;
    assert_eq!(leads_of(&a), ["bob@buyer.example"]);
    let company = read(&c, &s, "/companies/buyer.example", TOKEN).await;
    assert_eq!(
        company["owners"],
        json!(["amy@firm.example", "li@firm.example"]),
        "{company}"
    );
    assert_eq!(company["best_grade"], "A");
    assert_eq!(company["leads"].as_array().unwrap().len(), 3);
    let r = c
        .get(s.at("/companies/nobody.example"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let dups = read(&c, &s, "/duplicates", TOKEN).await;
    assert_eq!(dups["duplicates"], json!([]));
    let r = c
        .get(s.at("/leads?rising=lots"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("rising"));
    s.stop();
    // The same views in the terminal.
    let queue = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .arg("queue")
            .arg(&rules)
            .arg("--db")
            .arg(&db)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
    let out = queue(&["--view", "overdue"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let overdue = text(&out);
    assert!(overdue.contains("bob@buyer.example"), "{overdue}");
    assert!(!overdue.contains("ann@buyer.example"), "{overdue}");
    assert!(
        overdue.contains("li@firm.example"),
        "the owner column: {overdue}"
    );
    let out = queue(&[
        "--view",
        "my_new_a",
        "--as",
        "amy@firm.example",
        "--format",
        "json",
    ]);
    let mine = text(&out);
    let rows: Vec<Value> = mine
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{mine}");
    assert_eq!(rows[0]["lead"], "ann@buyer.example");
    let out = queue(&["--view", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no view `nope`"));
}

/// Killed without warning (SIGKILL) while 64 writers make new leads that are assigned
/// round robin: after a restart and everything sent again (the senders retry), every lead
/// was assigned exactly once, the team's turns went round evenly, and the desk's record
/// counts exactly the leads its members hold — no assignment lost, none made twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_assignment_loses_no_assignment_and_makes_none_twice() {
    use common::{Server, TOKEN};
    let dir = common::tmp("desk-kill");
    let rules = dir.join("desk.rules");
    std::fs::write(
        &rules,
        "when form.submitted add 50\ngrade B when score >= 40\ngrade C otherwise\nassign grade B to team sales round robin within 24h\n",
    )
    .unwrap();
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        format!("{CONFIG}\n[security]\nread_tokens = [\"{TOKEN}\"]\n"),
    )
    .unwrap();
    let db = dir.join("l.db");
    let mut s = Server::start(&rules, &db, Some(&config), &[]);
    let c = reqwest::Client::new();
    let at = common::iso(common::now_secs() - 10);
    let acked = Arc::new(std::sync::Mutex::new(0usize));
    let mut tasks = Vec::new();
    const WRITERS: usize = 64;
    const EACH: usize = 12;
    let event = |w: usize, i: usize, at: &str| {
        json!({"id": format!("f{w}-{i}"), "lead": format!("l{w}-{i}@buyer.example"),
               "type": "form.submitted", "at": at})
    };
    for w in 0..WRITERS {
        let (c, url, at, acked) = (c.clone(), s.at("/events"), at.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                match c.post(&url).json(&event(w, i, &at)).send().await {
                    Ok(r) if r.status() == 200 => *acked.lock().unwrap() += 1,
                    _ => break,
                }
            }
        }));
    }
    let started = std::time::Instant::now();
    while *acked.lock().unwrap() < 100 && started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    s.child.kill().unwrap(); // SIGKILL, with writers in flight
    s.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let killed_at = *acked.lock().unwrap();
    assert!(killed_at < WRITERS * EACH, "the kill came before the end");
    // Restarted; every sender sends everything again.
    let s = Server::start(&rules, &db, Some(&config), &[]);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (c, url, at) = (c.clone(), s.at("/events"), at.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let r = c.post(&url).json(&event(w, i, &at)).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for w in 0..WRITERS {
        for i in 0..EACH {
            let lead: Value = c
                .get(s.at(&format!("/leads/l{w}-{i}@buyer.example")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let changes = lead["desk"]["changes"].as_array().unwrap();
            assert_eq!(changes.len(), 1, "l{w}-{i}: assigned once: {lead}");
            *counts
                .entry(lead["desk"]["owner"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let total = WRITERS * EACH;
    assert_eq!(counts.values().sum::<usize>(), total);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("bo@firm.example".into(), total / 3),
            ("cy@firm.example".into(), total / 3),
            ("di@firm.example".into(), total / 3),
        ]),
        "in turn, with nothing lost or repeated across the kill"
    );
    for (owner, n) in &counts {
        let page: Value = c
            .get(s.at(&format!("/leads?owner={owner}&limit=1000")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["leads"].as_array().unwrap().len(), *n, "{owner}");
    }
    s.stop();
    let store = SqliteStore::open(&db).unwrap();
    let record = store.desk().await.unwrap().record;
    let active: BTreeMap<String, usize> = record
        .active
        .iter()
        .map(|(k, v)| (k.clone(), *v as usize))
        .collect();
    assert_eq!(active, counts, "the record counts what the leads say");
}

#[tokio::test]
async fn companies_gather_their_leads_and_duplicates_are_suggested_on_every_store() {
    let rules = format!(
        "{}\nset free_mail = [\"gmail.com\", \"qq.com\"]\n",
        RULES.replace(
            "assign otherwise to pool",
            "assign grade C to company owner\nassign otherwise to pool"
        )
    );
    for kind in KINDS {
        let d = desk(kind, "companies", &rules, CONFIG).await;
        // Two people at acme.example: an A lead (amy) and, later, a C lead — the company's
        // owner takes it.
        d.inquiry("ann@acme.example", "US").await;
        d.send(
            "tom@acme.example",
            "page.viewed",
            json!({"attributes": {"name": "Tom  Lee", "phone": "+1 (555) 010-2030"}}),
        )
        .await;
        assert_eq!(
            d.owner("tom@acme.example").await,
            "amy@firm.example",
            "{kind:?}"
        );
        let c1 = d.lead("tom@acme.example").await;
        assert_eq!(
            c1["desk"]["changes"][0]["rule"],
            "assign grade C to company owner"
        );
        // Free mail is nobody's company: the pool.
        d.send("joe@gmail.com", "page.viewed", json!({})).await;
        assert_eq!(
            d.lead("joe@gmail.com").await["desk"]["pool"],
            true,
            "{kind:?}"
        );
        let acme = d.s.company("ACME.example").await.unwrap();
        assert_eq!(acme.domain, "acme.example");
        assert_eq!(acme.best_grade.as_deref(), Some("A"), "{kind:?}");
        assert_eq!(acme.owners, ["amy@firm.example"]);
        assert_eq!(acme.total_score, 70 + 10);
        let leads: Vec<&str> = acme.leads.iter().map(|l| l.lead.as_str()).collect();
        assert_eq!(leads, ["ann@acme.example", "tom@acme.example"], "{kind:?}");
        assert!(d.s.company("gmail.com").await.unwrap().leads.is_empty());
        assert_eq!(
            d.queue("company=acme.example&grade=C", None).await,
            ["tom@acme.example"]
        );
        // The same man under his private address, with his phone written another way, and
        // a third lead with the same name at acme: suggested pairs, most reasons first.
        d.send(
            "tom.lee@qq.com",
            "page.viewed",
            json!({"attributes": {"phone": "15550102030", "name": "tom lee"}}),
        )
        .await;
        d.send(
            "t.lee@acme.example",
            "page.viewed",
            json!({"attributes": {"name": "TOM LEE", "phone": "+1 555 010 2030"}}),
        )
        .await;
        let dups = d.s.duplicates(10).await.unwrap();
        let pairs: Vec<(Vec<String>, Vec<String>)> = dups
            .iter()
            .map(|x| (x.leads.to_vec(), x.reasons.clone()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    vec!["t.lee@acme.example".into(), "tom@acme.example".into()],
                    vec!["name".into(), "phone".into()]
                ),
                (
                    vec!["t.lee@acme.example".into(), "tom.lee@qq.com".into()],
                    vec!["phone".into()]
                ),
                (
                    vec!["tom.lee@qq.com".into(), "tom@acme.example".into()],
                    vec!["phone".into()]
                ),
            ],
            "{kind:?}"
        );
        // Merged: the pair is gone, the merged key's marks with it.
        d.s.merge("tom@acme.example", "t.lee@acme.example")
            .await
            .unwrap();
        let dups = d.s.duplicates(10).await.unwrap();
        assert_eq!(dups.len(), 1, "{kind:?}: {dups:?}");
        assert_eq!(dups[0].leads, ["tom.lee@qq.com", "tom@acme.example"]);
        // Erased: gone too.
        d.s.erase("tom.lee@qq.com").await.unwrap();
        assert!(d.s.duplicates(10).await.unwrap().is_empty(), "{kind:?}");
    }
}

/// A `rising` page reads at most RISING_BUDGET leads' histories: a page that finds
/// nothing within them says where to go on, and following `next` finds the rising lead.
#[tokio::test]
async fn a_rising_queue_reads_a_bounded_number_of_histories_a_page() {
    let d = desk(Kind::Memory, "budget", RULES, CONFIG).await;
    let n = leadscore_service::RISING_BUDGET + 50;
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("v{i}"), "lead": format!("c{i:05}@x.example"),
                   "type": "page.viewed", "at": time::format(d.now())})
        })
        .collect();
    for chunk in events.chunks(1000) {
        let batch = parse_events(&json!(chunk), d.now()).unwrap();
        d.s.ingest(batch).await.unwrap();
    }
    d.pass(30 * DAY);
    // One lead rises now (30, the others 10: first in score order); the budget still
    // ends the first page before the listing does.
    d.send("c99999@x.example", "page.viewed", json!({})).await;
    d.send("c99999@x.example", "page.viewed", json!({})).await;
    let pairs = Queue::pairs("rising=20:7d").unwrap();
    let mut q = Queue::parse(&pairs, None, d.now()).unwrap();
    q.list.limit = 10;
    let first = d.s.queue_page(&q).await.unwrap();
    assert!(first.rows.iter().all(|r| r.lead == "c99999@x.example"));
    let mut found = first.rows.len();
    let mut next = first.next;
    let mut pages = 1;
    while let Some(after) = next {
        q.list.after = Some(after);
        let page = d.s.queue_page(&q).await.unwrap();
        found += page.rows.len();
        next = page.next;
        pages += 1;
        assert!(pages < 10, "the pages end");
    }
    assert_eq!(found, 1);
    assert!(pages >= 2, "the budget ended the first page early");
}

/// Past the year, a lead's history keeps one point a day: the last of each day, written
/// when a later day's first point is.
#[tokio::test]
async fn history_past_the_year_keeps_the_last_point_of_each_day_on_every_store() {
    for kind in KINDS {
        let d = desk(kind, "days", RULES, CONFIG).await;
        d.send("c@x.example", "page.viewed", json!({})).await;
        d.pass(HOUR);
        d.send("c@x.example", "page.viewed", json!({})).await;
        d.pass(400 * DAY);
        d.send("c@x.example", "page.viewed", json!({})).await;
        let (_, points) = d.s.score_history("c@x.example", 0).await.unwrap().unwrap();
        let scores: Vec<i64> = points.iter().map(|p| p.score).collect();
        assert_eq!(scores, [20, 30], "{kind:?}");
        assert_eq!(
            time::format(points[0].at),
            "2026-11-02T10:00:00Z",
            "{kind:?}: the day's last point, at its instant"
        );
    }
}
