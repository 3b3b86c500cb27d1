//! Signatures bind what a request does: a valid `v2` signature taken from one request is
//! refused on every other method, path, query and lead key; `v1` (the body only) is
//! accepted by `POST /events` alone. Through the real router, with a secret configured.

use axum::body::Body;
use axum::http::Request;
use leadscore_http::auth::{sign, sign_v2, Target};
use leadscore_http::{router, App, Config};
use leadscore_service::Service;
use leadscore_store::memory::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const SECRET: &str = "s3cret";

/// Where a captured signature is replayed: (method, path and query).
type Replays = Vec<(&'static str, &'static str)>;

fn app() -> (axum::Router, Arc<Service>) {
    let program = leadscore_compiler::compile(
        "when ping add 10 each\ngrade A when score >= 20\ngrade B otherwise\n",
        "t",
    )
    .unwrap()
    .program;
    let service = Arc::new(Service::new(program, Arc::new(MemoryStore::new())));
    let mut config = Config::default();
    config.security.webhook_secrets = vec![SECRET.into()];
    (router(App::new(service.clone(), config)), service)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request to `method path` carrying `signature` over `body`.
async fn send(
    r: &axum::Router,
    method: &str,
    path: &str,
    body: &str,
    signature: &str,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-leadscore-timestamp", now().to_string())
        .header("x-leadscore-signature", signature)
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = r.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn v2(method: &str, path: &str, body: &str) -> String {
    sign_v2(
        SECRET,
        now(),
        Target {
            method,
            path_and_query: path,
        },
        body.as_bytes(),
    )
}

fn ping(id: &str, lead: &str) -> String {
    json!({"id": id, "lead": lead, "type": "ping", "at": "2026-11-01T10:00:00Z"}).to_string()
}

#[tokio::test]
async fn a_signature_is_valid_only_for_the_request_it_was_made_for() {
    let (r, service) = app();
    for lead in ["a@x.com", "b@x.com", "c@x.com"] {
        let body = ping(&format!("{lead}-1"), lead);
        assert_eq!(
            send(&r, "POST", "/events", &body, &v2("POST", "/events", &body))
                .await
                .0,
            200
        );
    }
    // Each signed endpoint, and the requests an attacker would replay its signature to.
    let merge = json!({"lead": "b@x.com"}).to_string();
    let cases: Vec<(&str, &str, String, Replays)> = vec![
        (
            "DELETE",
            "/leads/a@x.com",
            String::new(),
            vec![
                ("DELETE", "/leads/c@x.com"),
                ("DELETE", "/leads/a@x.com?x=1"),
                ("POST", "/admin/rescore"),
            ],
        ),
        (
            "POST",
            "/leads/a@x.com/merge",
            merge.clone(),
            vec![
                ("POST", "/leads/c@x.com/merge"),
                ("POST", "/leads/a@x.com/merge?y"),
            ],
        ),
        (
            "POST",
            "/admin/rescore",
            String::new(),
            vec![
                ("POST", "/admin/rescore?limit=1"),
                ("DELETE", "/leads/a@x.com"),
            ],
        ),
        (
            "POST",
            "/leads/a@x.com/notifications/n1/retry",
            String::new(),
            vec![("POST", "/leads/c@x.com/notifications/n1/retry")],
        ),
    ];
    for (method, path, body, replays) in &cases {
        let signature = v2(method, path, body);
        for (m, p) in replays {
            let (status, answer) = send(&r, m, p, body, &signature).await;
            assert_eq!(
                status, 401,
                "{method} {path}'s signature on {m} {p}: {answer}"
            );
        }
        // The body-only scheme binds nothing else: refused here.
        let (status, answer) = send(
            &r,
            method,
            path,
            body,
            &sign(SECRET, now(), body.as_bytes()),
        )
        .await;
        assert_eq!(status, 401, "v1 on {method} {path}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("does not take v1"),
            "{answer}"
        );
    }
    // Nothing was erased or merged by the replays.
    for lead in ["a@x.com", "b@x.com", "c@x.com"] {
        let v = service.lead(lead).await.unwrap().found();
        assert!(v.is_some_and(|v| v["events"] == 1), "{lead}");
    }
    // The signatures themselves work where they were made.
    let (status, _) = send(
        &r,
        "POST",
        "/leads/a@x.com/merge",
        &merge,
        &v2("POST", "/leads/a@x.com/merge", &merge),
    )
    .await;
    assert_eq!(status, 200);
    let (status, erased) = send(
        &r,
        "DELETE",
        "/leads/c@x.com",
        "",
        &v2("DELETE", "/leads/c@x.com", ""),
    )
    .await;
    assert_eq!(
        (status, erased["erased"]["events"].clone()),
        (200, json!(1)),
        "{erased}"
    );
    let (status, _) = send(
        &r,
        "POST",
        "/admin/rescore",
        "",
        &v2("POST", "/admin/rescore", ""),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn events_take_v1_and_v2_and_v2_binds_the_path() {
    let (r, _) = app();
    let body = ping("e1", "a@x.com");
    assert_eq!(
        send(
            &r,
            "POST",
            "/events",
            &body,
            &sign(SECRET, now(), body.as_bytes())
        )
        .await
        .0,
        200
    );
    let body = ping("e2", "a@x.com");
    assert_eq!(
        send(&r, "POST", "/events", &body, &v2("POST", "/events", &body))
            .await
            .0,
        200
    );
    // A v2 signature made for another endpoint does not post events.
    let body = ping("e3", "a@x.com");
    let (status, answer) = send(
        &r,
        "POST",
        "/events",
        &body,
        &v2("POST", "/admin/rescore", &body),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = send(&r, "POST", "/events", &body, &v2("POST", "/events", "[]")).await;
    assert_eq!(status, 401);
}
