//! The contract of `Joins`: visitors tracked, linked and settled; leads redirected and
//! retired; erasure of everything that joined a lead.

use super::*;

fn pending(lead: &str) -> Pointer {
    Pointer {
        lead: lead.into(),
        pending: true,
    }
}

fn settled(lead: &str) -> Pointer {
    Pointer {
        lead: lead.into(),
        pending: false,
    }
}

/// Visitors and merges: keys that join a lead, on every store.
pub(crate) async fn joins(s: Arc<dyn Store>) {
    // An anonymous visitor's events are stored once each, in time order.
    let t = s
        .track("v1", vec![event("p2", 20, 0), event("p1", 10, 1)])
        .await
        .unwrap();
    assert_eq!(t, Tracked::Stored { duplicates: vec![] });
    let t = s
        .track("v1", vec![event("p2", 20, 0), event("p3", 30, 0)])
        .await
        .unwrap();
    assert_eq!(
        t,
        Tracked::Stored {
            duplicates: vec!["p2".into()]
        }
    );
    let (link, events) = s.visitor("v1").await.unwrap();
    assert_eq!((link, ids(&events)), (None, vec!["p1", "p2", "p3"]));

    // The first link wins; once linked, nothing more is stored under the visitor.
    assert_eq!(s.link("v1", "ann", 40).await.unwrap(), pending("ann"));
    assert_eq!(s.link("v1", "bob", 41).await.unwrap(), pending("ann"));
    assert_eq!(
        s.track("v1", vec![event("p4", 50, 0)]).await.unwrap(),
        Tracked::Linked(pending("ann"))
    );
    assert_eq!(s.visitor("v1").await.unwrap().1.len(), 3);
    s.settle("v1").await.unwrap();
    s.settle("v1").await.unwrap();
    assert_eq!(
        s.visitor("v1").await.unwrap(),
        (Some(settled("ann")), vec![])
    );
    assert_eq!(
        s.track("v1", vec![event("p5", 60, 0)]).await.unwrap(),
        Tracked::Linked(settled("ann"))
    );
    assert_eq!(
        s.joined("ann").await.unwrap(),
        [Joined::Visitor("v1".into())]
    );

    // A merge: the old key's version moves (a writer that read it cannot commit), it
    // points to the lead, and only once.
    s.commit(write("m-a", None, 10, "B", &[("a1", 10)]))
        .await
        .unwrap();
    s.commit(write("m-b", None, 20, "B", &[("b1", 5), ("b2", 15)]))
        .await
        .unwrap();
    assert!(matches!(
        s.redirect("m-b", "m-a", 7, 100).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.redirect("m-nobody", "m-a", 1, 100).await,
        Err(StoreError::Conflict)
    ));
    s.redirect("m-b", "m-a", 1, 100).await.unwrap();
    assert!(matches!(
        s.redirect("m-b", "m-a", 2, 100).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.commit(write("m-b", Some(1), 1, "C", &[("b3", 20)])).await,
        Err(StoreError::Conflict)
    ));
    let found = s.load("m-b", &[]).await.unwrap();
    assert_eq!(found.merged_into, Some(pending("m-a")));
    assert!(s
        .list(&ListQuery {
            limit: 1000,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .all(|l| l.lead != "m-b"));

    // A visitor linked to the old key follows it to the lead when it retires.
    assert_eq!(s.link("v2", "m-c", 1).await.unwrap(), pending("m-c"));
    s.commit(write("m-c", None, 1, "C", &[("c1", 1)]))
        .await
        .unwrap();
    s.redirect("m-c", "m-a", 1, 101).await.unwrap();

    // Retiring moves the transitions (marked) and removes the rest; again: nothing.
    let r = s.retire("m-b").await.unwrap();
    assert_eq!(
        r,
        Retired {
            events: 2,
            transitions: 1
        }
    );
    assert_eq!(s.retire("m-b").await.unwrap(), Retired::default());
    s.retire("m-c").await.unwrap();
    let found = s.load("m-b", &["b1".into()]).await.unwrap();
    assert!(found.lead.is_none() && found.seen.is_empty());
    assert_eq!(found.merged_into, Some(settled("m-a")));
    assert!(s.history("m-b").await.unwrap().is_empty());
    assert!(s.transitions("m-b").await.unwrap().is_empty());
    let moved: Vec<Json> = s
        .transitions("m-a")
        .await
        .unwrap()
        .into_iter()
        .map(|t| leadscore_runtime::view::to_json(&t.view))
        .collect();
    assert_eq!(moved.len(), 3, "{moved:?}");
    assert_eq!(
        moved
            .iter()
            .filter(|t| t["merged_from"] == json!("m-b"))
            .count(),
        1
    );
    assert_eq!(s.visitor("v2").await.unwrap().0, Some(pending("m-a")));
    assert_eq!(
        s.joined("m-a").await.unwrap(),
        [
            Joined::Visitor("v2".into()),
            Joined::Lead("m-b".into()),
            Joined::Lead("m-c".into())
        ]
    );

    // Erasure takes the keys that joined the lead with it.
    let e = s.erase("m-a", 200).await.unwrap();
    assert_eq!((e.state, e.events, e.links), (true, 1, 3));
    assert_eq!(s.visitor("v2").await.unwrap(), (None, vec![]));
    assert_eq!(s.load("m-b", &[]).await.unwrap().merged_into, None);
    assert!(s.joined("m-a").await.unwrap().is_empty());
    // A lead that is only a visitor's link is erased too (and its anonymous events).
    s.track("v3", vec![event("q1", 1, 0)]).await.unwrap();
    s.link("v3", "carl", 2).await.unwrap();
    let e = s.erase("carl", 3).await.unwrap();
    assert_eq!((e.state, e.links), (false, 1));
    assert_eq!(s.visitor("v3").await.unwrap(), (None, vec![]));
    // A merge cut short (redirected, not retired) is erased with its lead.
    s.commit(write("m-d", None, 1, "C", &[("d1", 1)]))
        .await
        .unwrap();
    s.commit(write("m-e", None, 1, "C", &[("e1", 1)]))
        .await
        .unwrap();
    s.redirect("m-e", "m-d", 1, 5).await.unwrap();
    let e = s.erase("m-d", 6).await.unwrap();
    assert_eq!((e.events, e.links), (2, 1));
    assert!(s.history("m-e").await.unwrap().is_empty());
    assert!(s.load("m-e", &[]).await.unwrap().lead.is_none());
}
