//! The contract of `Outbox`: due notes, claims as leases, outcomes, dead letters, requeues.

use super::*;

fn note(lead: &str, id: &str, at: Micros) -> Notification {
    Notification {
        id: id.into(),
        lead: lead.into(),
        channel: "sales".into(),
        created_at: at,
        body: json!({"id": id, "lead": lead}),
    }
}

/// The outbox: written with the lead, claimed, retried, delivered or given up.
pub(crate) async fn outbox(s: Arc<dyn Store>) {
    let mut w = write("o", None, 80, "A", &[("oe1", 10)]);
    w.notifications = vec![note("o", "n1", 100), note("o", "n2", 100)];
    s.commit(w).await.unwrap();
    // A write that conflicts stores none of its notifications.
    let mut w = write("o", None, 80, "A", &[("oe2", 10)]);
    w.notifications = vec![note("o", "n3", 100)];
    assert!(matches!(s.commit(w).await, Err(StoreError::Conflict)));
    assert!(s.note("o", "n3").await.unwrap().is_none());

    let due = s.due_notes(100, 10).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|o| o.note.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2"]);
    assert_eq!((due[0].status, due[0].attempts), (NoteStatus::Pending, 0));
    assert_eq!(due[0].note.body["lead"], "o");
    assert!(s.due_notes(99, 10).await.unwrap().is_empty(), "not due yet");

    // One claim wins; the claimed one is not due until its lease ends.
    assert!(!s.claim_note("o", "n1", 7, 100, 200).await.unwrap());
    assert!(s.claim_note("o", "n1", 0, 100, 200).await.unwrap());
    assert!(!s.claim_note("o", "n1", 0, 100, 200).await.unwrap());
    assert_eq!(s.due_notes(150, 10).await.unwrap().len(), 1);
    let again = s.due_notes(200, 10).await.unwrap();
    let ids: Vec<(&str, u32)> = again
        .iter()
        .map(|o| (o.note.id.as_str(), o.attempts))
        .collect();
    assert_eq!(ids, [("n2", 0), ("n1", 1)], "by when they are due");

    s.finish_note(
        "o",
        "n1",
        Delivery::Retry {
            next_at: 300,
            error: "HTTP 500".into(),
        },
        210,
    )
    .await
    .unwrap();
    let n1 = s.note("o", "n1").await.unwrap().unwrap();
    assert_eq!(
        (n1.status, n1.next_at, n1.last_error.as_deref()),
        (NoteStatus::Pending, 300, Some("HTTP 500"))
    );
    assert!(s.claim_note("o", "n1", 1, 300, 400).await.unwrap());
    s.finish_note("o", "n1", Delivery::Delivered, 310)
        .await
        .unwrap();
    assert!(s.claim_note("o", "n2", 0, 320, 400).await.unwrap());
    s.finish_note(
        "o",
        "n2",
        Delivery::Failed {
            error: "gave up".into(),
        },
        330,
    )
    .await
    .unwrap();
    assert!(s.due_notes(10_000, 10).await.unwrap().is_empty());
    let delivered = s.notes(NoteStatus::Delivered, 10, None).await.unwrap();
    assert_eq!(
        (
            delivered.len(),
            delivered[0].note.id.as_str(),
            delivered[0].next_at
        ),
        (1, "n1", 310)
    );
    let failed = s.notes(NoteStatus::Failed, 10, None).await.unwrap();
    assert_eq!(failed[0].note.id, "n2");
    assert_eq!(failed[0].last_error.as_deref(), Some("gave up"));
    assert!(s
        .notes(NoteStatus::Failed, 10, Some((330, "n2".into())))
        .await
        .unwrap()
        .is_empty());
    // A dead letter back into the outbox, once.
    assert!(!s.requeue_note("o", "n1", 400).await.unwrap());
    assert!(s.requeue_note("o", "n2", 400).await.unwrap());
    assert!(!s.requeue_note("o", "n2", 400).await.unwrap());
    let n2 = s.note("o", "n2").await.unwrap().unwrap();
    assert_eq!(
        (n2.status, n2.attempts, n2.next_at),
        (NoteStatus::Pending, 0, 400)
    );
    // Dead letters page by (instant, id), ties included, without reading them all.
    let mut w = write("p", None, 80, "A", &[("pe1", 10)]);
    let given_up = [600, 600, 600, 610, 610, 620, 630];
    w.notifications = (0..given_up.len())
        .map(|i| note("p", &format!("p{i}"), 100))
        .collect();
    s.commit(w).await.unwrap();
    for (i, at) in given_up.iter().enumerate() {
        let id = format!("p{i}");
        assert!(s.claim_note("p", &id, 0, *at - 1, *at + 50).await.unwrap());
        let error = "gave up".to_string();
        s.finish_note("p", &id, Delivery::Failed { error }, *at)
            .await
            .unwrap();
    }
    for limit in [1, 2, 3, 10] {
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = s
                .notes(NoteStatus::Failed, limit, after.clone())
                .await
                .unwrap();
            assert!(page.len() <= limit);
            seen.extend(page.iter().map(|o| (o.next_at, o.note.id.clone())));
            if page.len() < limit {
                break;
            }
            let last = page.last().unwrap();
            after = Some((last.next_at, last.note.id.clone()));
        }
        let want: Vec<(Micros, String)> = given_up
            .iter()
            .enumerate()
            .map(|(i, at)| (*at, format!("p{i}")))
            .collect();
        assert_eq!(seen, want, "pages of {limit}");
    }
    s.erase("p", 700).await.unwrap();
    // Erasure takes the outbox with the lead.
    s.erase("o", 500).await.unwrap();
    assert!(s.note("o", "n2").await.unwrap().is_none());
    assert!(s.due_notes(10_000, 10).await.unwrap().is_empty());
}
