//! Faults: a store that is busy, throttled, failing or losing answers makes a request
//! fail cleanly (503, `Retry-After`) and a retry succeed, with nothing counted twice; and
//! 64 writers in separate processes' worth of services, each on its own locks, end with
//! exact counts on SQLite and on DynamoDB. (A kill -9 mid-load is `tests/http.rs`'s
//! `a_crash_loses_nothing_that_was_acknowledged`; a Lambda's retried request,
//! `tests/lambda.rs`'s resend.)

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use leadscore_http::{App, Config};
use leadscore_service::{parse_events, Service, ServiceError};
use leadscore_store::{sqlite::SqliteStore, Store, StoreError};
use reqwest::Client;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const RULES: &str = "when ping add 1 each\ngrade A when score >= 100\ngrade B otherwise\n";

fn program() -> leadscore_runtime::bytecode::Program {
    leadscore_compiler::compile(RULES, "t").unwrap().program
}

fn ping(id: &str, lead: &str) -> Value {
    json!({"id": id, "lead": lead, "type": "ping", "at": iso(now_secs() - 60)})
}

/// SQLite locked by another process longer than its busy timeout: 503, then a retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_sqlite_file_answers_503_and_the_retry_counts_once() {
    let dir = tmp("busy");
    let db = dir.join("l.db");
    let rules = dir.join("ping.rules");
    std::fs::write(&rules, RULES).unwrap();
    let s = Server::start(&rules, &db, None, &secured());
    let c = Client::new();
    assert_eq!(
        post_signed(&c, &s, SECRET, now_secs(), &ping("p0", "busy@x.com"))
            .await
            .status(),
        200
    );
    // Another process takes the write lock and keeps it past the 5 s busy timeout.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = post_signed(&c, &s, SECRET, now_secs(), &ping("p1", "busy@x.com")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "store unavailable");
    assert!(
        e["detail"].as_str().unwrap().contains("retry the request"),
        "{e}"
    );
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    let r = post_signed(&c, &s, SECRET, now_secs(), &ping("p1", "busy@x.com")).await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["accepted"], 1, "{out}");
    let out: Value = post_signed(&c, &s, SECRET, now_secs(), &ping("p1", "busy@x.com"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["duplicates"], json!(["p1"]));
    let (_, lead) = get_lead(&c, &s, "busy@x.com").await;
    assert_eq!(
        (lead["events"].clone(), lead["score"].clone()),
        (json!(2), json!(2))
    );
    s.stop();
}

/// How the fault proxy treats the next requests of one DynamoDB operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// `400 ThrottlingException`, without forwarding.
    Throttle,
    /// `500 InternalServerError`, without forwarding.
    Fail,
    /// Forwarded — the write happens — and answered `500`: the answer is lost.
    LoseAnswer,
}

/// A proxy between the SDK and the DynamoDB-compatible server that injects faults into
/// the next `count` requests of operation `op`.
struct FaultProxy {
    url: String,
    plan: Arc<std::sync::Mutex<(String, Fault, usize)>>,
    faulted: Arc<AtomicUsize>,
}

impl FaultProxy {
    async fn start(upstream: String) -> FaultProxy {
        let plan = Arc::new(std::sync::Mutex::new((String::new(), Fault::None, 0)));
        let faulted = Arc::new(AtomicUsize::new(0));
        let (p, f) = (plan.clone(), faulted.clone());
        let client = Client::new();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (plan, faulted, client, upstream) =
                (p.clone(), f.clone(), client.clone(), upstream.clone());
            async move {
                let target = req
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let op = target.rsplit('.').next().unwrap_or("").to_string();
                let fault = {
                    let mut p = plan.lock().unwrap();
                    if p.0 == op && p.2 > 0 {
                        p.2 -= 1;
                        p.1
                    } else {
                        Fault::None
                    }
                };
                let reply = |status: u16, kind: &str| {
                    faulted.fetch_add(1, Ordering::SeqCst);
                    axum::response::Response::builder()
                        .status(status)
                        .header("content-type", "application/x-amz-json-1.0")
                        .header("x-amzn-errortype", kind)
                        .body(Body::from(
                            json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
                                   "message": "injected by the test"})
                            .to_string(),
                        ))
                        .unwrap()
                };
                match fault {
                    Fault::Throttle => return reply(400, "ThrottlingException"),
                    Fault::Fail => return reply(500, "InternalServerError"),
                    _ => {}
                }
                let headers = req.headers().clone();
                let body = axum::body::to_bytes(req.into_body(), 64 << 20)
                    .await
                    .unwrap();
                let mut fwd = client.post(&upstream).body(body.to_vec());
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        fwd = fwd.header(k.as_str(), v.as_bytes());
                    }
                }
                let res = fwd.send().await.unwrap();
                if fault == Fault::LoseAnswer {
                    return reply(500, "InternalServerError");
                }
                let status = res.status().as_u16();
                let ctype = res.headers().get("content-type").cloned();
                let bytes = res.bytes().await.unwrap();
                let mut out = axum::response::Response::builder().status(status);
                if let Some(ct) = ctype {
                    out = out.header("content-type", ct);
                }
                out.body(Body::from(bytes)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultProxy { url, plan, faulted }
    }

    fn inject(&self, op: &str, fault: Fault, count: usize) {
        *self.plan.lock().unwrap() = (op.to_string(), fault, count);
    }
}

/// `POST /events` through the router (as `serve` and the Lambda entry run it).
async fn post(router: &axum::Router, body: &Value) -> (u16, Option<String>, Value) {
    let req = Request::post("/events")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        retry,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// DynamoDB throttling, 5xx and lost answers, injected between the SDK and the server:
/// each request fails cleanly or succeeds; retries count nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_faults_answer_503_and_retries_count_once() {
    let proxy = FaultProxy::start(moto()).await;
    let store = new_table(dynamo_client(&proxy.url).await, "faults").await;
    let service = Arc::new(Service::new(program(), Arc::new(store)));
    let router = leadscore_http::router(App::new(service.clone(), Config::default()));
    let lead = "fault@x.com";
    assert_eq!(post(&router, &ping("f0", lead)).await.0, 200);

    // Throttled past the SDK's own retries: 503 with Retry-After; then the retry.
    for (op, fault) in [
        ("TransactWriteItems", Fault::Throttle),
        ("TransactWriteItems", Fault::Fail),
        ("BatchGetItem", Fault::Throttle),
        ("BatchGetItem", Fault::Fail),
    ] {
        let id = format!("{op}-{fault:?}");
        proxy.inject(op, fault, 100);
        let (status, retry, body) = post(&router, &ping(&id, lead)).await;
        assert_eq!(
            (status, retry.as_deref()),
            (503, Some("1")),
            "{op} {fault:?}: {body}"
        );
        assert_eq!(body["error"], "store unavailable");
        proxy.inject(op, Fault::None, 0);
        let (status, _, body) = post(&router, &ping(&id, lead)).await;
        assert_eq!(
            (status, body["accepted"].clone()),
            (200, json!(1)),
            "{op} {fault:?}: {body}"
        );
    }
    // A fault the SDK's retries absorb is not seen at all.
    proxy.inject("TransactWriteItems", Fault::Throttle, 1);
    let (status, _, body) = post(&router, &ping("absorbed", lead)).await;
    assert_eq!((status, body["accepted"].clone()), (200, json!(1)));

    // The write happens but every answer is lost: 503; the retry finds it stored.
    proxy.inject("TransactWriteItems", Fault::LoseAnswer, 100);
    let (status, _, _) = post(&router, &ping("lost", lead)).await;
    assert_eq!(status, 503);
    proxy.inject("TransactWriteItems", Fault::None, 0);
    let (status, _, body) = post(&router, &ping("lost", lead)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["accepted"].as_u64().unwrap() + body["duplicates"].as_array().unwrap().len() as u64,
        1,
        "{body}"
    );
    assert!(proxy.faulted.load(Ordering::SeqCst) > 10);

    // Every event once: f0, the four faults, absorbed, lost.
    let stored = service.store().history(lead).await.unwrap();
    assert_eq!(stored.len(), 7);
    let view = service.lead(lead).await.unwrap().found().unwrap();
    assert_eq!(
        (view["events"].clone(), view["score"].clone()),
        (json!(7), json!(7))
    );
}

/// Writers with a service each (each with its own locks, as separate processes or Lambda
/// instances have): every write is optimistic, conflicts are retried, and the lead ends
/// with every event exactly once.
async fn many_writers(store: Arc<dyn Store>, writers: usize, each: usize) {
    let lead = "hot@x.com";
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let service = Service::new(program(), store);
            let mut retries = 0;
            for i in 0..each {
                let body = ping(&format!("w{w}-{i}"), lead);
                loop {
                    let events = parse_events(&body, service.now()).unwrap();
                    match service.ingest(events).await {
                        Ok(_) => break,
                        // What a client does on a 503.
                        Err(ServiceError::Store(
                            StoreError::Conflict | StoreError::Unavailable(_),
                        )) => {
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(5 + (w as u64 % 7))).await;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            retries
        }));
    }
    let mut retries = 0;
    for t in tasks {
        retries += t.await.unwrap();
    }
    let stored = store.history(lead).await.unwrap();
    let n = writers * each;
    assert_eq!(stored.len(), n);
    let mut ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "each event once");
    let found = store.load(lead, &[]).await.unwrap().lead.unwrap();
    assert_eq!(found.state.events as usize, n);
    let service = Service::new(program(), store);
    let view = service.lead(lead).await.unwrap().found().unwrap();
    assert_eq!(view["score"], json!(n), "the score counts every event once");
    eprintln!("{writers} writers x {each}: {retries} client retries");
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_writers_on_one_lead_end_exact_on_sqlite() {
    let dir = tmp("writers64");
    let store = Arc::new(SqliteStore::open(dir.join("l.db")).unwrap());
    many_writers(store.clone(), 64, 10).await;
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_writers_on_one_lead_end_exact_on_dynamodb() {
    // moto serves one request at a time: one event a writer keeps the run short.
    let store = new_table(dynamo_client(&moto()).await, "writers64").await;
    many_writers(Arc::new(store), 64, 1).await;
}

/// Commits that never stop, with readers always in flight, must not grow SQLite's log
/// without end (a passive checkpoint alone never lets it start over): it starts over
/// whenever it passes its limit, the file stays bounded, and the database keeps
/// everything.
#[tokio::test(flavor = "multi_thread")]
async fn sustained_writes_and_reads_keep_the_sqlite_log_bounded() {
    let dir = tmp("wal");
    let path = dir.join("l.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let service = Arc::new(Service::new(program(), store.clone()));
    let wal = dir.join("l.db-wal");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (service, stop, written) = (service.clone(), stop.clone(), written.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // Leads spread over many pages, so each commit writes several frames.
                let body = json!((0..20)
                    .map(|k| ping(
                        &format!("w{w}-{i}-{k}"),
                        &format!("lead{:05}@x.com", (i * 20 + k) % 5_000)
                    ))
                    .collect::<Vec<_>>());
                service
                    .ingest(parse_events(&body, service.now()).unwrap())
                    .await
                    .unwrap();
                written.fetch_add(20, Ordering::Relaxed);
                i += 1;
                if w < 4 {
                    // Readers on the same file, always some in flight.
                    service
                        .lead(&format!("lead{:05}@x.com", i % 5_000))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    // The log's header counts its restarts (the checkpoint sequence number, bytes 12..16).
    let restarts = || -> Option<u32> {
        let bytes = std::fs::read(&wal).ok()?;
        Some(u32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?))
    };
    let (mut largest, mut seen, mut first) = (0u64, 0u32, None);
    let limit = 16u64 << 20; // WAL_LIMIT_BYTES
    let begin = std::time::Instant::now();
    // Until the log has passed its limit and started over three times (so three times the
    // limit was written), or a minute.
    while begin.elapsed() < Duration::from_secs(60) && seen < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        if let Some(n) = restarts() {
            let first = *first.get_or_insert(n);
            seen = n.wrapping_sub(first);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let n = written.load(Ordering::Relaxed);
    eprintln!("{n} events; log at most {largest} bytes, started over {seen} times");
    assert!(
        seen >= 3,
        "the log did not start over (largest {largest} bytes)"
    );
    // The limit, plus what commits add while a checkpoint waits for its turn.
    assert!(largest < 4 * limit, "the log reached {largest} bytes");
    store.close();
    let db = rusqlite::Connection::open(&path).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, n, "every acknowledged event is stored");
}
