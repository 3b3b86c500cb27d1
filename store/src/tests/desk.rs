//! The sales desk's part of the contract: the desk record committed with a lead under its
//! version, score history, the work queues' filters and sorts, releasing a lead.

use super::*;

fn point(at: Micros, score: i64) -> HistoryPoint {
    HistoryPoint {
        at,
        score,
        scores: Default::default(),
        grade: Some("C".into()),
    }
}

fn owned(lead: &str, owner: &str, active: bool) -> LeadState {
    let mut s = state(lead);
    s.desk = Some(Box::new(leadscore_runtime::state::Desk {
        owner: Some(owner.into()),
        active,
        ..Default::default()
    }));
    s
}

pub(super) async fn desk(s: Arc<dyn Store>) {
    let fresh = s.desk().await.unwrap();
    assert_eq!(fresh, DeskLoaded::default());
    let record = |n: u64| DeskRecord {
        turns: [("sales".to_string(), n)].into(),
        active: [("bo@x".to_string(), n)].into(),
    };
    // The record is written with the lead, guarded by its version.
    let mut w = write("d-a", None, 10, "B", &[("da1", 10)]);
    w.desk = Some(DeskWrite {
        expect: None,
        record: record(1),
    });
    s.commit(w).await.unwrap();
    let loaded = s.desk().await.unwrap();
    assert_eq!(
        (loaded.record.clone(), loaded.version),
        (record(1), Some(1))
    );
    // A writer that read the record before: refused, and its lead not written.
    let mut stale = write("d-b", None, 10, "B", &[("db1", 10)]);
    stale.desk = Some(DeskWrite {
        expect: None,
        record: record(9),
    });
    assert!(matches!(s.commit(stale).await, Err(StoreError::Conflict)));
    assert!(s.load("d-b", &[]).await.unwrap().lead.is_none());
    assert_eq!(s.desk().await.unwrap().record, record(1));
    let mut ok = write("d-b", None, 10, "B", &[("db1", 10)]);
    ok.desk = Some(DeskWrite {
        expect: Some(1),
        record: record(2),
    });
    s.commit(ok).await.unwrap();
    assert_eq!(s.desk().await.unwrap().version, Some(2));

    // Score history: the last write of each minute; the point in force at `since` first.
    let m = MINUTE;
    let t0 = 1_000 * DAY;
    for (i, (at, score)) in [(t0, 1), (t0 + 10_000_000, 2), (t0 + m, 3), (t0 + 3 * m, 4)]
        .into_iter()
        .enumerate()
    {
        let mut w = write("d-h", (i > 0).then_some(i as u64), score, "C", &[]);
        w.events.clear();
        w.history = Some(point(at, score));
        s.commit(w).await.unwrap();
    }
    let scores = |h: Vec<HistoryPoint>| h.iter().map(|p| p.score).collect::<Vec<_>>();
    assert_eq!(scores(s.score_history("d-h", 0).await.unwrap()), [2, 3, 4]);
    assert_eq!(
        scores(s.score_history("d-h", t0 + 2 * m).await.unwrap()),
        [3, 4],
        "3 was in force at since"
    );
    assert!(s.score_history("nobody", 0).await.unwrap().is_empty());
    // Past the year: day points only (the last of each day) before the minute points.
    let later = t0 + 400 * DAY;
    let mut w = write("d-h", Some(4), 5, "C", &[]);
    w.events.clear();
    w.history = Some(point(later, 5));
    w.day_point = Some(point(t0 + 3 * m, 4));
    s.commit(w).await.unwrap();
    assert_eq!(scores(s.score_history("d-h", 0).await.unwrap()), [4, 5]);

    // Queues: owner, pool, tags, deadlines.
    let mut w = write("q-1", None, 50, "A", &[("q1", 1)]);
    w.summary.owner = Some("amy@x".into());
    w.summary.deadline = Some(300);
    w.summary.tags = vec!["overdue".into(), "HOT".into()];
    w.summary.created_at = Some(100);
    s.commit(w).await.unwrap();
    let mut w = write("q-2", None, 40, "A", &[("q2", 1)]);
    w.summary.owner = Some("amy@x".into());
    w.summary.deadline = Some(200);
    w.summary.updated_at = 7;
    w.summary.created_at = Some(50);
    s.commit(w).await.unwrap();
    let mut w = write("q-3", None, 30, "C", &[("q3", 1)]);
    w.summary.pool = true;
    s.commit(w).await.unwrap();
    let leads = |q: ListQuery| {
        let s = s.clone();
        async move {
            s.list(&ListQuery { limit: 100, ..q })
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.lead)
                .filter(|l| l.starts_with("q-"))
                .collect::<Vec<_>>()
        }
    };
    let owner = || Some("amy@x".to_string());
    assert_eq!(
        leads(ListQuery {
            owner: owner(),
            ..Default::default()
        })
        .await,
        ["q-1", "q-2"]
    );
    assert_eq!(
        leads(ListQuery {
            pool: true,
            ..Default::default()
        })
        .await,
        ["q-3"]
    );
    assert_eq!(
        leads(ListQuery {
            tag: Some("HOT".into()),
            ..Default::default()
        })
        .await,
        ["q-1"]
    );
    assert_eq!(
        leads(ListQuery {
            sort: Sort::Deadline,
            ..Default::default()
        })
        .await,
        ["q-2", "q-1"]
    );
    assert_eq!(
        leads(ListQuery {
            overdue_at: Some(250),
            ..Default::default()
        })
        .await,
        ["q-2"]
    );
    assert_eq!(
        leads(ListQuery {
            created_since: Some(60),
            ..Default::default()
        })
        .await,
        ["q-1"]
    );
    assert_eq!(
        leads(ListQuery {
            sort: Sort::Updated,
            owner: owner(),
            ..Default::default()
        })
        .await,
        ["q-2", "q-1"]
    );
    assert_eq!(
        leads(ListQuery {
            grade: Some("A".into()),
            sort: Sort::Deadline,
            after: Some((200, "q-2".into())),
            ..Default::default()
        })
        .await,
        ["q-1"]
    );

    // Companies and the marks of likely duplicates.
    let mut w = write("m-1", None, 5, "C", &[("m1", 1)]);
    w.summary.company = Some("acme.example".into());
    w.marks = Some(Marks {
        old: vec![],
        new: vec!["phone:5550102030".into(), "name:tom@acme.example".into()],
    });
    s.commit(w).await.unwrap();
    let mut w = write("m-2", None, 6, "C", &[("m2", 1)]);
    w.marks = Some(Marks {
        old: vec![],
        new: vec!["phone:5550102030".into()],
    });
    s.commit(w).await.unwrap();
    assert_eq!(
        leads(ListQuery {
            company: Some("acme.example".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "the q- prefix filter"
    );
    let listed = s
        .list(&ListQuery {
            company: Some("acme.example".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|l| l.lead.as_str()).collect::<Vec<_>>(),
        ["m-1"]
    );
    let shared = s.shared_marks(10).await.unwrap();
    assert_eq!(
        shared,
        [Shared {
            mark: "phone:5550102030".into(),
            leads: vec!["m-1".into(), "m-2".into()]
        }]
    );
    // A write that changes the marks replaces them.
    let mut w = write("m-2", Some(1), 6, "C", &[("m3", 2)]);
    w.marks = Some(Marks {
        old: vec!["phone:5550102030".into()],
        new: vec!["whatsapp:5550102030".into()],
    });
    s.commit(w).await.unwrap();
    assert!(s.shared_marks(10).await.unwrap().is_empty());

    // Releasing: once, with the record, the lead's version moving.
    let mut w = write("r-1", None, 10, "A", &[("r1", 1)]);
    w.state = owned("r-1", "bo@x", true);
    s.commit(w).await.unwrap();
    assert!(s.release("r-1").await.unwrap());
    let loaded = s.load("r-1", &[]).await.unwrap().lead.unwrap();
    assert_eq!(loaded.version, 2);
    assert!(!loaded.state.desk.unwrap().active);
    assert_eq!(s.desk().await.unwrap().record.active.get("bo@x"), Some(&1));
    assert!(!s.release("r-1").await.unwrap(), "released once");
    assert!(!s.release("nobody").await.unwrap());
}
