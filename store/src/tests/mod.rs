//! The same contract checked on every store.

mod desk;
mod joins;
mod outbox;

use desk::desk;
use joins::joins;
use outbox::outbox;

use super::memory::MemoryStore;
use super::*;
use serde_json::json;
use std::sync::Arc;

fn state(key: &str) -> LeadState {
    serde_json::from_value(json!({
        "version": 1, "key": key, "program": "p", "attributes": {}, "rules": [],
        "first_at": null, "last_at": null, "events": 0, "grade": null, "grade_name": null,
        "evaluated_at": null
    }))
    .expect("a minimal state")
}

fn write(
    lead: &str,
    expect: Option<u64>,
    score: i64,
    grade: &str,
    events: &[(&str, Micros)],
) -> Write {
    Write {
        lead: lead.into(),
        expect,
        state: state(lead),
        summary: Summary {
            grade: Some(grade.into()),
            score,
            scores: Default::default(),
            next_change: Some(score * 10),
            updated_at: 1,
            program: "p".into(),
            ruleset: "r".into(),
            ..Summary::default()
        },
        events: events
            .iter()
            .enumerate()
            .map(|(i, (id, at))| StoredEvent {
                id: id.to_string(),
                at: *at,
                seq: i as u64,
                json: json!({"id": id}),
            })
            .collect(),
        transitions: vec![StoredTransition {
            at: 5,
            view: leadscore_runtime::view::TransitionView {
                at: leadscore_runtime::time::format(5),
                cause: "event".into(),
                event: None,
                from: None,
                merged: None,
                merged_from: None,
                program: None,
                ruleset: None,
                to: grade.to_string(),
            },
        }],
        notifications: Vec::new(),
        history: None,
        day_point: None,
        desk: None,
        marks: None,
    }
}

/// `rounds`: events each of the 32 concurrent writers adds to one lead.
async fn contract(s: Arc<dyn Store>, rounds: usize) {
    let Found {
        lead: none, seen, ..
    } = s.load("a", &["x".into()]).await.unwrap();
    assert!(none.is_none() && seen.is_empty());

    s.commit(write("a", None, 10, "B", &[("e2", 20), ("e1", 10)]))
        .await
        .unwrap();
    // A second "new lead" write, or a stale version, conflicts and changes nothing.
    assert!(matches!(
        s.commit(write("a", None, 99, "A", &[("e3", 1)])).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.commit(write("a", Some(7), 99, "A", &[("e3", 1)])).await,
        Err(StoreError::Conflict)
    ));
    // An event already stored conflicts, even at the right version.
    assert!(matches!(
        s.commit(write("a", Some(1), 99, "A", &[("e3", 1), ("e1", 1)]))
            .await,
        Err(StoreError::Conflict)
    ));
    let Found {
        lead: loaded, seen, ..
    } = s
        .load("a", &["e1".into(), "e3".into(), "e9".into()])
        .await
        .unwrap();
    assert_eq!(loaded.unwrap().version, 1);
    assert_eq!(seen, vec!["e1".to_string()]);
    assert_eq!(s.transitions("a").await.unwrap().len(), 1);
    let ids: Vec<String> = s
        .history("a")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["e1", "e2"], "by at");

    s.commit(write("a", Some(1), 30, "A", &[("e3", 15)]))
        .await
        .unwrap();
    let ids: Vec<String> = s
        .history("a")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["e1", "e3", "e2"]);
    assert_eq!(s.load("a", &[]).await.unwrap().lead.unwrap().version, 2);
    assert_eq!(s.transitions("a").await.unwrap().len(), 2);

    // Many leads at once (one group commit for the SQLite store), one of them stale.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let expect = if i == 100 { Some(3) } else { None };
            s.commit(write(
                &format!("l{i:03}"),
                expect,
                i,
                if i % 2 == 0 { "A" } else { "B" },
                &[("x", 1)],
            ))
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.is_ok(), i != 100, "lead {i}: {r:?}");
    }
    assert!(s.load("l100", &[]).await.unwrap().lead.is_none());

    // Listing: by score descending, grade filter, cursor.
    let q = |grade: Option<&str>, limit, after: Option<(i64, &str)>| ListQuery {
        grade: grade.map(str::to_string),
        limit,
        after: after.map(|(s, k)| (s, k.to_string())),
        ..ListQuery::default()
    };
    let top: Vec<i64> = s
        .list(&q(None, 3, None))
        .await
        .unwrap()
        .iter()
        .map(|l| l.summary.score)
        .collect();
    assert_eq!(top, [199, 198, 197]);
    let page = s.list(&q(Some("B"), 2, Some((197, "l197")))).await.unwrap();
    let keys: Vec<&str> = page.iter().map(|l| l.lead.as_str()).collect();
    assert_eq!(keys, ["l195", "l193"]);
    assert!(page.iter().all(|l| l.summary.grade.as_deref() == Some("B")));
    // Ties on score are ordered by key, and the cursor continues inside a tie.
    s.commit(write("tie-b", None, 150, "A", &[])).await.unwrap();
    s.commit(write("tie-a", None, 150, "A", &[])).await.unwrap();
    let keys: Vec<String> = s
        .list(&q(Some("A"), 3, Some((150, "l150"))))
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.lead)
        .collect();
    assert_eq!(keys, ["tie-a", "tie-b", "l148"]);

    // Due for the sweep: next_change = score * 10 here.
    let due = s.due(25, 10).await.unwrap();
    assert_eq!(due, ["l000", "l001", "l002"]);

    // 32 writers on one lead, each reading and writing optimistically: every write lands
    // exactly once, and the version counts them.
    let mut tasks = Vec::new();
    for t in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..rounds {
                let id = format!("w{t}-{i}");
                for attempt in 0.. {
                    let Found {
                        lead: loaded, seen, ..
                    } = s.load("hot", std::slice::from_ref(&id)).await.unwrap();
                    assert!(seen.is_empty(), "{id} stored before it was written");
                    let expect = loaded.map(|l| l.version);
                    match s.commit(write("hot", expect, 0, "A", &[(&id, t)])).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict) => {
                            let jitter = (t as u64 * 7 + attempt * 13) % 10 + 1;
                            tokio::time::sleep(std::time::Duration::from_millis(jitter)).await
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = 32 * rounds;
    assert_eq!(s.history("hot").await.unwrap().len(), n);
    assert_eq!(
        s.load("hot", &[]).await.unwrap().lead.unwrap().version as usize,
        n
    );
    assert_eq!(s.transitions("hot").await.unwrap().len(), n);

    // Erasure: everything about the lead goes; erasing again removes nothing.
    let erased = s.erase("hot", 99).await.unwrap();
    assert_eq!(
        erased,
        Erased {
            state: true,
            events: n,
            transitions: n,
            links: 0,
        }
    );
    let Found {
        lead: gone, seen, ..
    } = s.load("hot", &["w0-0".into()]).await.unwrap();
    assert!(gone.is_none() && seen.is_empty());
    assert!(s.history("hot").await.unwrap().is_empty());
    assert!(s.transitions("hot").await.unwrap().is_empty());
    let all = s.list(&q(None, 1000, None)).await.unwrap();
    assert!(all.iter().all(|l| l.lead != "hot"));
    assert_eq!(s.erase("hot", 100).await.unwrap(), Erased::default());
    // A new event for the key starts a new lead.
    s.commit(write("hot", None, 1, "B", &[("w0-0", 1)]))
        .await
        .unwrap();
    assert_eq!(s.history("hot").await.unwrap().len(), 1);
}

fn event(id: &str, at: Micros, seq: u64) -> StoredEvent {
    StoredEvent {
        id: id.into(),
        at,
        seq,
        json: json!({"id": id}),
    }
}

fn ids(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_keeps_the_contract() {
    let s = Arc::new(MemoryStore::new());
    contract(s.clone(), 5).await;
    joins(s.clone()).await;
    desk(s.clone()).await;
    outbox(s).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_store_keeps_the_contract_and_its_data() {
    let dir = std::env::temp_dir().join(format!("leadscore-store-{}", std::process::id()));
    // Process ids repeat across runs: start from nothing (the log files included).
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.db");
    let _ = std::fs::remove_file(&path);
    let s = Arc::new(super::sqlite::SqliteStore::open(&path).unwrap());
    contract(s.clone(), 5).await;
    joins(s.clone()).await;
    desk(s.clone()).await;
    outbox(s.clone()).await;
    s.close();
    drop(s);
    let again = super::sqlite::SqliteStore::open(&path).unwrap();
    assert_eq!(again.load("a", &[]).await.unwrap().lead.unwrap().version, 2);
    assert_eq!(again.history("a").await.unwrap().len(), 3);
    // A file of another schema version is refused, not misread.
    again.close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = super::sqlite::SqliteStore::open(&path)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A database written by the first release (schema version 1) is migrated in place: its
/// leads, events and transitions stay; summaries written before it name no rules.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_schema_version_1_is_migrated() {
    let dir = std::env::temp_dir().join(format!("leadscore-migrate-{}", std::process::id()));
    // Process ids repeat across runs: start from nothing (the log files included).
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v1.db");
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old = serde_json::to_string(&state("a")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE leads (key TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL,
             grade TEXT, score INTEGER NOT NULL, scores TEXT NOT NULL, next_change INTEGER,
             updated_at INTEGER NOT NULL);
         CREATE TABLE events (lead TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL,
             seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (lead, id)) WITHOUT ROWID;
         CREATE TABLE transitions (n INTEGER PRIMARY KEY, lead TEXT NOT NULL, at INTEGER NOT NULL,
             body TEXT NOT NULL);
         INSERT INTO leads VALUES ('a', 1, '{old}', 'B', 10, '{{}}', NULL, 1);
         INSERT INTO events VALUES ('a', 'e1', 10, 0, '{{\"id\":\"e1\"}}');
         PRAGMA user_version = 1;"
    ))
    .unwrap();
    drop(conn);
    let store = super::sqlite::SqliteStore::open(&path).expect("migrated");
    let Found {
        lead: loaded, seen, ..
    } = store.load("a", &["e1".into()]).await.unwrap();
    assert_eq!(loaded.unwrap().version, 1);
    assert_eq!(seen, ["e1"]);
    let listed = store
        .list(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (listed[0].summary.score, listed[0].summary.program.as_str()),
        (10, "")
    );
    // Written again: the summary names its rules.
    store
        .commit(write("a", Some(1), 20, "A", &[("e2", 20)]))
        .await
        .unwrap();
    let listed = store
        .list(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (listed[0].summary.score, listed[0].summary.program.as_str()),
        (20, "p")
    );
    store.close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 5);
    std::fs::remove_dir_all(&dir).ok();
}

/// Against a real DynamoDB-compatible server (moto, started by scripts/test.sh; its
/// address in `LEADSCORE_DYNAMODB_ENDPOINT`), each run in a table of its own.
#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_store_keeps_the_contract() {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let endpoint = std::env::var("LEADSCORE_DYNAMODB_ENDPOINT").expect(
        "LEADSCORE_DYNAMODB_ENDPOINT must name a DynamoDB-compatible server (scripts/test.sh starts moto)",
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let table = format!(
        "contract-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let store = super::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    store.create_table().await.unwrap();
    // moto serves one request at a time: one event per writer keeps the run short.
    let s = Arc::new(store);
    contract(s.clone(), 1).await;
    joins(s.clone()).await;
    desk(s.clone()).await;
    outbox(s).await;
}
