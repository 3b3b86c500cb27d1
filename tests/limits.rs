//! Sizes: every store holds the same event and lead sizes (runtime/src/limits.rs), and
//! what is larger is refused with its reason before anything is written.
//!
//! Run through the real HTTP router on memory, a SQLite file and DynamoDB (moto): a 450 KB
//! event answers `413` and stores nothing; a lead whose attributes would grow past the
//! state limit answers `422`, keeps what it had, and takes small events afterwards.

mod common;

use axum::body::Body;
use axum::http::Request;
use leadscore_http::{router, App, Config};
use leadscore_runtime::limits::{MAX_EVENT_BYTES, MAX_STATE_BYTES};
use leadscore_service::Service;
use leadscore_store::{memory::MemoryStore, sqlite::SqliteStore, Store};
use serde_json::{json, Value};
use std::sync::Arc;

const RULES: &str = r#"
when country = "DE" add 30
when email.opened add 5 each
grade A when score >= 30
grade C otherwise
"#;

fn app(store: Arc<dyn Store>) -> axum::Router {
    let program = leadscore_compiler::compile(RULES, "limits.rules")
        .expect("compiles")
        .program;
    router(App::new(
        Arc::new(Service::new(program, store)),
        Config::default(),
    ))
}

async fn call(router: &axum::Router, req: Request<Body>) -> (u16, Value) {
    common::oneshot(router, req).await
}

async fn post(router: &axum::Router, body: Value) -> (u16, Value) {
    let req = Request::post("/events")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    call(router, req).await
}

async fn lead(router: &axum::Router, key: &str) -> (u16, Value) {
    let req = Request::get(format!("/leads/{key}"))
        .body(Body::empty())
        .unwrap();
    call(router, req).await
}

fn event(id: &str, lead: &str, attributes: Value) -> Value {
    json!({"id": id, "lead": lead, "type": "email.opened",
           "at": common::iso(common::now_secs() - 60), "attributes": attributes})
}

async fn sizes_are_bounded_alike(store: Arc<dyn Store>) {
    let r = app(store);

    // An event larger than any store holds: 413 with the reason, nothing stored.
    let huge = event("big", "big@x.de", json!({"note": "x".repeat(450_000)}));
    let (status, body) = post(&r, huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "event too large", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&MAX_EVENT_BYTES.to_string()),
        "{body}"
    );
    assert_eq!(lead(&r, "big@x.de").await.0, 404);
    // In an array, the whole request is refused (all or nothing, as any invalid event).
    let small = event("ok", "big@x.de", json!({"country": "DE"}));
    let huge = event("big", "big@x.de", json!({"note": "x".repeat(450_000)}));
    let (status, body) = post(&r, json!([small, huge])).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("event 1:"),
        "{body}"
    );
    assert_eq!(lead(&r, "big@x.de").await.0, 404);

    // A lead that would grow past the state limit: the third ~90 KB attribute does not fit.
    let chunk = 90_000;
    assert!(2 * chunk < MAX_STATE_BYTES && 3 * chunk > MAX_STATE_BYTES);
    let grow = |i: usize| {
        event(
            &format!("g{i}"),
            "grow@x.de",
            json!({ format!("note{i}"): "y".repeat(chunk), "country": "DE" }),
        )
    };
    for i in 0..2 {
        let (status, body) = post(&r, grow(i)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(&r, grow(2)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "lead too large", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("grow@x.de"),
        "{body}"
    );
    // What the lead had is kept, and readable; the refused event was not stored.
    let (status, view) = lead(&r, "grow@x.de").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["events"], 2, "{view}");
    assert_eq!(view["score"], 40, "{view}");
    // The refused event sent again is refused again (it was not stored as a duplicate).
    assert_eq!(post(&r, grow(2)).await.0, 422);
    // Small events still score, and removing an attribute (null) makes room again.
    let (status, body) = post(&r, event("s1", "grow@x.de", json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&r, event("s2", "grow@x.de", json!({"note0": null}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&r, grow(2)).await;
    assert_eq!(status, 200, "{body}");
    let (_, view) = lead(&r, "grow@x.de").await;
    assert_eq!(view["events"], 5, "{view}");
    assert_eq!(view["score"], 55, "{view}");
}

#[tokio::test]
async fn sizes_are_bounded_on_memory() {
    sizes_are_bounded_alike(Arc::new(MemoryStore::default())).await;
}

#[tokio::test]
async fn sizes_are_bounded_on_sqlite() {
    let path = common::tmp("limits").join("leads.db");
    sizes_are_bounded_alike(Arc::new(SqliteStore::open(&path).unwrap())).await;
    // Reopened, the lead is as it was left.
    let r = app(Arc::new(SqliteStore::open(&path).unwrap()));
    assert_eq!(lead(&r, "grow@x.de").await.1["events"], 5);
}

#[tokio::test]
async fn sizes_are_bounded_on_dynamodb() {
    let client = common::dynamo_client(&common::moto()).await;
    let table = common::table_name("limits");
    let store = leadscore_store::dynamo::DynamoStore::new(client.clone(), table.clone());
    store.create_table().await.expect("table created");
    sizes_are_bounded_alike(Arc::new(store)).await;
}
