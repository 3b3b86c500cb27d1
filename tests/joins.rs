//! Keys joining a lead, through the service, on every store (memory, a SQLite file, and
//! the DynamoDB-compatible server scripts/test.sh starts): an anonymous visitor's history
//! stitched to the lead it becomes, leads merged, key normalisation, and erasure of all of
//! it. Each scenario runs on each store.

mod common;

use common::{dynamo_client, moto, new_table};
use leadscore_runtime::keys::KeyPolicy;
use leadscore_runtime::time::{self, Micros};
use leadscore_service::{parse_events, LeadView, MergeError, Service, Tracked};
use leadscore_store::{memory::MemoryStore, sqlite::SqliteStore, Store};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Seed 001's website behaviour, and a form.
const RULES: &str = r#"
when site.visited add 5                                   # first visit
when site.visited count >= 3 within 7d add 15
when page.viewed where path contains "/products" add 10
when page.viewed where path contains "/pricing" add 20
when form.submitted where form = "contact" add 10
when email.opened add 5 each
when country = "DE" add 30
grade A when score >= 50
grade B when score >= 20
grade C otherwise
tag HOT when grade = A
"#;

const DAY: Micros = 86_400 * 1_000_000;

fn at(day: i64, hour: i64) -> String {
    time::format(time::parse("2026-11-01T00:00:00Z").unwrap() + day * DAY + hour * 3_600_000_000)
}

struct Fixture {
    s: Service,
    store: Arc<dyn Store>,
    clock: Arc<AtomicI64>,
}

fn fixture(store: Arc<dyn Store>, keys: KeyPolicy) -> Fixture {
    let clock = Arc::new(AtomicI64::new(time::parse(&at(30, 0)).unwrap()));
    let c = clock.clone();
    let program = leadscore_compiler::compile(RULES, "t")
        .expect("compiles")
        .program;
    let s = Service::with_clock(
        program,
        store.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    )
    .with_keys(keys);
    Fixture { s, store, clock }
}

fn incoming(body: Value, now: Micros) -> Vec<leadscore_service::Incoming> {
    parse_events(&body, now).expect("valid")
}

/// A browser's event as the beacon makes it.
fn web(id: &str, visitor: &str, ty: &str, path: &str, when: &str) -> Value {
    json!({"id": id, "lead": format!("visitor:{visitor}"), "type": ty, "at": when,
           "props": {"path": path}})
}

async fn track(f: &Fixture, visitor: &str, events: Vec<Value>) -> Tracked {
    f.s.track(visitor, incoming(Value::Array(events), f.s.now()))
        .await
        .expect("tracked")
}

fn form(id: &str, lead: &str, when: &str) -> Value {
    json!({"id": id, "lead": lead, "type": "form.submitted", "at": when,
           "attributes": {"email": lead}, "props": {"form": "contact"}})
}

async fn lead(f: &Fixture, key: &str) -> Value {
    match f.s.lead(&f.s.key(key)).await.expect("read") {
        LeadView::Found(v) => leadscore_runtime::view::to_json(&v),
        other => panic!("{key}: {other:?}"),
    }
}

async fn post(f: &Fixture, body: Value) -> Value {
    f.s.ingest(incoming(body, f.s.now()))
        .await
        .expect("stored")
        .to_json()
}

/// A visitor's pages are stored, unscored, until a form names the lead; then they join it
/// in time order, with one transition, once; later pages go straight to the lead.
async fn stitching(store: Arc<dyn Store>) {
    let f = fixture(store, KeyPolicy::default());
    // Ten days before the rest: the first visit counts, but not towards 3 in 7 days.
    let t = track(
        &f,
        "visitor-one",
        vec![web("w1", "visitor-one", "site.visited", "/", &at(0, 9))],
    )
    .await;
    assert_eq!(
        t,
        Tracked::Anonymous {
            accepted: 1,
            duplicates: 0
        }
    );
    track(
        &f,
        "visitor-one",
        vec![
            web("w2", "visitor-one", "site.visited", "/", &at(10, 9)),
            web("w3", "visitor-one", "page.viewed", "/pricing", &at(10, 9)),
        ],
    )
    .await;
    track(
        &f,
        "visitor-one",
        vec![web("w4", "visitor-one", "site.visited", "/", &at(12, 9))],
    )
    .await;
    // A repeated beacon is not stored twice.
    let t = track(
        &f,
        "visitor-one",
        vec![web("w4", "visitor-one", "site.visited", "/", &at(12, 9))],
    )
    .await;
    assert_eq!(
        t,
        Tracked::Anonymous {
            accepted: 0,
            duplicates: 1
        }
    );
    assert_eq!(f.s.lead("ann@x.com").await.unwrap(), LeadView::Missing);
    assert_eq!(f.store.visitor("visitor-one").await.unwrap().1.len(), 4);

    // Visits on days 0, 10 and 12: not 3 within 7 days. First visit 5, pricing 20 and the
    // contact form 10 = 35 → B.
    let out =
        f.s.stitch(
            "visitor-one",
            incoming(form("f1", "Ann@X.com", &at(14, 9)), f.s.now()),
        )
        .await
        .unwrap()
        .to_json();
    let l = &out["leads"][0];
    assert_eq!(
        (l["lead"].clone(), l["score"].clone()),
        (json!("ann@x.com"), json!(35)),
        "{out}"
    );
    let t = l["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 1, "one transition, caused by the form: {t:?}");
    assert_eq!(
        (
            &t[0]["from"],
            &t[0]["to"],
            &t[0]["at"],
            &t[0]["cause"],
            &t[0]["event"]
        ),
        (
            &json!(null),
            &json!("B"),
            &json!(at(14, 9)),
            &json!("event"),
            &json!("f1")
        )
    );
    let view = lead(&f, "ann@x.com").await;
    assert_eq!(view["events"], 5);
    assert_eq!(view["transitions"].as_array().unwrap().len(), 1);
    let (link, anonymous) = f.store.visitor("visitor-one").await.unwrap();
    assert_eq!(
        link.map(|l| (l.lead, l.pending)),
        Some(("ann@x.com".into(), false))
    );
    assert!(
        anonymous.is_empty(),
        "the visitor's events moved to the lead"
    );

    // The same form again (a retried post): nothing counted twice, no new transition.
    let again =
        f.s.stitch(
            "visitor-one",
            incoming(form("f1", "ann@x.com", &at(14, 9)), f.s.now()),
        )
        .await
        .unwrap()
        .to_json();
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(["f1"]))
    );
    assert_eq!(
        lead(&f, "ann@x.com").await["transitions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Linked: a new visit goes to the lead, in order — the third within 7 days (10, 12, 15).
    let t = track(
        &f,
        "visitor-one",
        vec![web("w5", "visitor-one", "site.visited", "/", &at(15, 9))],
    )
    .await;
    assert_eq!(
        t,
        Tracked::Lead {
            lead: "ann@x.com".into(),
            accepted: 1
        }
    );
    let view = lead(&f, "ann@x.com").await;
    assert_eq!(
        (view["score"].clone(), view["grade"].clone()),
        (json!(50), json!("A"))
    );

    // A second device: its own history joins the same lead when it is identified.
    track(
        &f,
        "visitor-two",
        vec![web(
            "m1",
            "visitor-two",
            "page.viewed",
            "/products/led",
            &at(11, 8),
        )],
    )
    .await;
    let out =
        f.s.stitch(
            "visitor-two",
            incoming(
                json!({"id": "i1", "lead": "ann@x.com", "type": "web.identified", "at": at(16, 9)}),
                f.s.now(),
            ),
        )
        .await
        .unwrap()
        .to_json();
    assert_eq!(out["leads"][0]["score"], 60, "{out}");
    assert_eq!(
        out["leads"][0]["transitions"],
        json!([]),
        "still A: no transition"
    );
    let mut joined = f.store.joined("ann@x.com").await.unwrap();
    joined.sort();
    assert_eq!(joined.len(), 2);

    // A visitor already someone's does not carry its pages to another lead.
    let out =
        f.s.stitch(
            "visitor-one",
            incoming(form("f2", "bob@x.com", &at(17, 9)), f.s.now()),
        )
        .await
        .unwrap()
        .to_json();
    assert_eq!(out["leads"][0]["score"], 10, "bob has his form only: {out}");
    assert_eq!(
        f.store
            .visitor("visitor-one")
            .await
            .unwrap()
            .0
            .unwrap()
            .lead,
        "ann@x.com"
    );
}

/// A join cut short (linked, events not moved) is finished by the visitor's next beacon.
async fn stitching_resumes(store: Arc<dyn Store>) {
    let f = fixture(store, KeyPolicy::default());
    track(
        &f,
        "visitor-cut",
        vec![web(
            "c1",
            "visitor-cut",
            "page.viewed",
            "/pricing",
            &at(1, 9),
        )],
    )
    .await;
    // As a crash right after the link would leave it.
    let link = f.store.link("visitor-cut", "cut@x.com", 0).await.unwrap();
    assert!(link.pending);
    let t = track(
        &f,
        "visitor-cut",
        vec![web(
            "c2",
            "visitor-cut",
            "page.viewed",
            "/products/a",
            &at(2, 9),
        )],
    )
    .await;
    assert_eq!(
        t,
        Tracked::Lead {
            lead: "cut@x.com".into(),
            accepted: 1
        }
    );
    let view = lead(&f, "cut@x.com").await;
    assert_eq!(
        (view["score"].clone(), view["events"].clone()),
        (json!(30), json!(2))
    );
    let (link, anonymous) = f.store.visitor("visitor-cut").await.unwrap();
    assert!(!link.unwrap().pending && anonymous.is_empty());
}

/// Two leads, the same person: merged either way round, the result is the same.
async fn merging(store_ab: Arc<dyn Store>, store_ba: Arc<dyn Store>) {
    let history = json!([
        {"id": "a1", "lead": "a@x.com", "type": "email.opened", "at": at(1, 9)},
        {"id": "a2", "lead": "a@x.com", "type": "form.submitted", "at": at(3, 9),
         "attributes": {"country": "FR"}, "props": {"form": "contact"}},
        {"id": "b1", "lead": "b@x.com", "type": "email.opened", "at": at(2, 9),
         "attributes": {"country": "DE"}},
        {"id": "b2", "lead": "b@x.com", "type": "email.opened", "at": at(4, 9)},
    ]);
    let ab = fixture(store_ab, KeyPolicy::default());
    let ba = fixture(store_ba, KeyPolicy::default());
    for f in [&ab, &ba] {
        post(f, history.clone()).await;
        assert_eq!(lead(f, "a@x.com").await["grade"], "C");
        assert_eq!(lead(f, "b@x.com").await["grade"], "B");
    }
    let m1 = ab.s.merge("a@x.com", "B@x.com").await.unwrap();
    let m2 = ba.s.merge("b@x.com", "a@x.com").await.unwrap();
    assert_eq!(
        (m1.lead.as_str(), m1.merged.as_str()),
        ("a@x.com", "b@x.com")
    );
    assert_eq!((m1.events, m1.transitions), (2, 1));
    assert_eq!(
        (m2.lead.as_str(), m2.merged.as_str(), m2.events),
        ("b@x.com", "a@x.com", 2)
    );
    let (x, y) = (lead(&ab, "a@x.com").await, lead(&ba, "b@x.com").await);
    for k in [
        "score",
        "scores",
        "grade",
        "tags",
        "attributes",
        "events",
        "contributions",
    ] {
        assert_eq!(x[k], y[k], "{k}: merged either way round");
    }
    // FR at day 3 is newer than DE at day 2: the lead is in France; 3 opens, a form.
    assert_eq!(x["attributes"]["country"], "FR");
    assert_eq!(x["score"], 25);
    // The merge is recorded: a's log has its own transition, b's (marked), and the merge's
    // (C to B); merged the other way round the lead was B already.
    let t = x["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(
        t.iter().filter(|t| t["merged_from"] == "b@x.com").count(),
        1
    );
    let merge = t
        .iter()
        .find(|t| t["cause"] == "merge")
        .expect("a merge transition");
    assert_eq!(
        (&merge["from"], &merge["to"], &merge["merged"]),
        (&json!("C"), &json!("B"), &json!("b@x.com"))
    );
    assert_eq!(y["transitions"].as_array().unwrap().len(), 2);

    // The old key points to the lead; its events come to the lead; ids stay unique.
    assert_eq!(
        ab.s.lead("b@x.com").await.unwrap(),
        LeadView::Merged("a@x.com".into())
    );
    let out = post(
        &ab,
        json!([
            {"id": "b2", "lead": "b@x.com", "type": "email.opened", "at": at(4, 9)},
            {"id": "b3", "lead": "b@x.com", "type": "email.opened", "at": at(5, 9)},
        ]),
    )
    .await;
    assert_eq!(
        (out["accepted"].clone(), out["duplicates"].clone()),
        (json!(1), json!(["b2"]))
    );
    assert_eq!(out["leads"][0]["lead"], "a@x.com");
    assert_eq!(lead(&ab, "a@x.com").await["score"], 30);

    // Again: nothing moves. Into itself, an unknown key, a key merged elsewhere: refused.
    assert_eq!(ab.s.merge("a@x.com", "b@x.com").await.unwrap().events, 0);
    assert!(matches!(
        ab.s.merge("a@x.com", "a@x.com").await,
        Err(MergeError::Same(_))
    ));
    assert!(matches!(
        ab.s.merge("a@x.com", "nobody@x.com").await,
        Err(MergeError::NotFound(_))
    ));
    post(
        &ab,
        json!({"id": "c1", "lead": "c@x.com", "type": "email.opened", "at": at(6, 9),
                     "attributes": {"country": "DE"}}),
    )
    .await;
    assert!(matches!(
        ab.s.merge("c@x.com", "b@x.com").await,
        Err(MergeError::MergedElsewhere(..))
    ));
    // Merging into a merged key merges into its lead: the grade change is one transition.
    let m = ab.s.merge("b@x.com", "c@x.com").await.unwrap();
    assert_eq!(m.lead, "a@x.com");
    let view = leadscore_runtime::view::to_json(&m.view);
    let t = view["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (
            t[0]["cause"].clone(),
            t[0]["merged"].clone(),
            t[0]["to"].clone()
        ),
        (json!("merge"), json!("c@x.com"), json!("A"))
    );
}

/// A merge cut short (redirected, events not moved) is finished by the next event for
/// the old key.
async fn merging_resumes(store: Arc<dyn Store>) {
    let f = fixture(store, KeyPolicy::default());
    post(
        &f,
        json!([
            {"id": "p1", "lead": "p@x.com", "type": "email.opened", "at": at(1, 9)},
            {"id": "q1", "lead": "q@x.com", "type": "email.opened", "at": at(2, 9)},
        ]),
    )
    .await;
    let version = f
        .store
        .load("q@x.com", &[])
        .await
        .unwrap()
        .lead
        .unwrap()
        .version;
    f.store
        .redirect("q@x.com", "p@x.com", version, 0)
        .await
        .unwrap();
    let out = post(
        &f,
        json!({"id": "q2", "lead": "q@x.com", "type": "email.opened", "at": at(3, 9)}),
    )
    .await;
    assert_eq!(out["leads"][0]["lead"], "p@x.com");
    let view = lead(&f, "p@x.com").await;
    assert_eq!(
        (view["events"].clone(), view["score"].clone()),
        (json!(3), json!(15))
    );
    let p = f
        .store
        .load("q@x.com", &[])
        .await
        .unwrap()
        .merged_into
        .unwrap();
    assert!(!p.pending);
    assert!(f.store.history("q@x.com").await.unwrap().is_empty());
}

/// Keys normalised by the configured policy: one mailbox, one lead.
async fn normalised_keys(store: Arc<dyn Store>) {
    let f = fixture(
        store,
        KeyPolicy {
            strip_plus_tags: true,
            gmail_dots: true,
        },
    );
    post(
        &f,
        json!([
            {"id": "n1", "lead": "Ann.Lee+fair@gmail.com", "type": "email.opened", "at": at(1, 9)},
            {"id": "n2", "lead": "annlee@googlemail.com", "type": "email.opened", "at": at(2, 9)},
            {"id": "n3", "lead": "ann.lee@acme.de", "type": "email.opened", "at": at(2, 9)},
        ]),
    )
    .await;
    assert_eq!(lead(&f, "ANN.LEE@gmail.com").await["events"], 2);
    assert_eq!(lead(&f, "ann.lee+x@acme.de").await["events"], 1);
    assert_eq!(f.s.key("Ann.Lee+fair@gmail.com"), "annlee@gmail.com");
}

/// Erasure after stitching and merging leaves nothing of the person under any key.
async fn erasure(store: Arc<dyn Store>) {
    let f = fixture(store, KeyPolicy::default());
    track(
        &f,
        "visitor-erase",
        vec![web(
            "e1",
            "visitor-erase",
            "page.viewed",
            "/pricing",
            &at(1, 9),
        )],
    )
    .await;
    f.s.stitch(
        "visitor-erase",
        incoming(form("e2", "eve@x.com", &at(2, 9)), f.s.now()),
    )
    .await
    .unwrap();
    post(
        &f,
        json!({"id": "e3", "lead": "old-eve@x.com", "type": "email.opened", "at": at(3, 9)}),
    )
    .await;
    f.s.merge("eve@x.com", "old-eve@x.com").await.unwrap();
    f.clock.fetch_add(DAY, Ordering::SeqCst);
    let (erased_key, e) = f.s.erase("old-eve@x.com").await.unwrap();
    assert_eq!(erased_key, "eve@x.com", "a merged key erases its lead");
    assert_eq!((e.state, e.events, e.links), (true, 3, 2));
    for key in ["eve@x.com", "old-eve@x.com"] {
        assert_eq!(f.s.lead(key).await.unwrap(), LeadView::Missing, "{key}");
        assert!(f.store.history(key).await.unwrap().is_empty());
        assert!(f.store.transitions(key).await.unwrap().is_empty());
    }
    assert_eq!(
        f.store.visitor("visitor-erase").await.unwrap(),
        (None, vec![])
    );
    // The visitor id is free again: a new page view is anonymous.
    let t = track(
        &f,
        "visitor-erase",
        vec![web("e4", "visitor-erase", "page.viewed", "/", &at(30, 9))],
    )
    .await;
    assert_eq!(
        t,
        Tracked::Anonymous {
            accepted: 1,
            duplicates: 0
        }
    );
}

async fn every_scenario(new_store: impl Fn() -> Arc<dyn Store>) {
    stitching(new_store()).await;
    stitching_resumes(new_store()).await;
    merging(new_store(), new_store()).await;
    merging_resumes(new_store()).await;
    normalised_keys(new_store()).await;
    erasure(new_store()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_on_the_memory_store() {
    every_scenario(|| Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_on_the_sqlite_store() {
    let dir = std::env::temp_dir().join(format!(
        "leadscore-joins-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    every_scenario(|| {
        let path = dir.join(format!("{}.db", n.fetch_add(1, Ordering::SeqCst)));
        Arc::new(SqliteStore::open(path).expect("opens")) as Arc<dyn Store>
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_on_the_dynamodb_store() {
    let client = dynamo_client(&moto()).await;
    let mut stores = Vec::new();
    for i in 0..7 {
        let store = new_table(client.clone(), &format!("joins-{i}")).await;
        stores.push(Arc::new(store) as Arc<dyn Store>);
    }
    let next = std::sync::Mutex::new(stores);
    every_scenario(|| next.lock().unwrap().pop().expect("a table per scenario")).await;
}
