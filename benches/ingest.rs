//! Sustained ingest over loopback (docs/performance.md): `leadscore`'s router on a SQLite
//! file with durable group commits, 64 client connections each posting batches of events
//! back to back. Reports events/s and request latency (p50, p99) per batch size.
//! Target: ≥ 5,000 events/s with p99 ≤ 20 ms at 64 connections.
//!
//! `cargo bench --bench ingest` (`-- SECONDS` to change the 10 s per batch size).

use leadscore_http::{router, App, Config};
use leadscore_service::Service;
use leadscore_store::sqlite::SqliteStore;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;
const LEADS: usize = 10_000;

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "connections={CONNECTIONS} leads={LEADS} seconds={secs} (SQLite, synchronous=FULL)"
        );
        println!(
            "{:>6} {:>10} {:>10} {:>9} {:>9} {:>9}",
            "batch", "events/s", "requests/s", "p50 ms", "p99 ms", "max ms"
        );
        for batch in [1, 10, 100] {
            run(batch, Duration::from_secs(secs)).await;
        }
    });
}

async fn run(batch: usize, duration: Duration) {
    let dir = std::env::temp_dir().join(format!("leadscore-ingest-{}-{batch}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = include_str!("../examples/001-zoho.rules");
    let program = leadscore_compiler::compile(src, "001-zoho")
        .unwrap()
        .program;
    let store = Arc::new(SqliteStore::open(dir.join("bench.db")).unwrap());
    let service = Arc::new(Service::new(program, store.clone()));
    let app = App::new(service, Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<_> = (0..batch)
                    .map(|i| {
                        n += 1;
                        json!({"id": format!("c{c}-{n}"), "lead": format!("lead{}@x.com", (c * 7919 + n * 31 + i) % LEADS),
                               "type": "email.opened", "at": "2026-11-20T10:00:00Z"})
                    })
                    .collect();
                let t = Instant::now();
                let r = client.post(&url).json(&events).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    let requests = all.len() as f64 / elapsed;
    println!(
        "{batch:>6} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
        requests * batch as f64,
        requests,
        pct(0.50),
        pct(0.99),
        all.last().unwrap().as_secs_f64() * 1000.0
    );
    server.abort();
    store.close();
    std::fs::remove_dir_all(&dir).ok();
}
