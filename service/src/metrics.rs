//! The operator's instruments: one Prometheus recorder per process (the `metrics` facade,
//! rendered by `metrics-exporter-prometheus`), installed by the first [`install`] and
//! served as `GET /metrics`. Every crate records through the facade's macros; the names
//! and what each counts are listed in docs/operations.md.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Requests by route template, method and status.
pub const HTTP_REQUESTS: &str = "leadscore_http_requests_total";
/// Request latency by route template.
pub const HTTP_DURATION: &str = "leadscore_http_request_duration_seconds";
/// One call of [`crate::Service::ingest`], from validated events to the answer.
pub const INGEST_DURATION: &str = "leadscore_ingest_duration_seconds";
/// Events by outcome: `accepted`, `duplicate`, `refused` (sent but never stored: an
/// invalid batch, a bad signature, a rate limit, a failed write).
pub const EVENTS: &str = "leadscore_events_total";
/// Store commits (a group commit is one) and how many lead writes each carried.
pub use leadscore_store::metric::{COMMITS, COMMIT_GROUP};
/// Writes that lost a race with another writer, and the attempts made again after one.
pub const CONFLICTS: &str = "leadscore_store_conflicts_total";
pub const RETRIES: &str = "leadscore_write_retries_total";
/// Store calls that failed (unavailable, backend failure, corrupt data), by kind.
pub const STORE_ERRORS: &str = "leadscore_store_errors_total";
/// Notifications due at the notifier's last pass, delivered, and given up (dead letters).
pub const OUTBOX_DEPTH: &str = "leadscore_outbox_due";
pub const DELIVERED: &str = "leadscore_notifications_delivered_total";
pub const DEAD_LETTERS: &str = "leadscore_notifications_dead_total";
/// Leads the sweep re-evaluated, and seconds since a sweep pass last finished.
pub const SWEPT: &str = "leadscore_sweep_leads_total";
pub const SWEEP_LAG: &str = "leadscore_sweep_lag_seconds";
/// The UNIX time a sweep pass last finished (the lag is measured from it at each scrape).
pub const SWEEP_LAST: &str = "leadscore_sweep_last_finished_seconds";
/// Rules reloads by result (`applied`, `refused`), and leads rescored after one.
pub const RELOADS: &str = "leadscore_rules_reloads_total";
pub const RELOAD_RESCORED: &str = "leadscore_reload_rescored_total";
/// 1 while stored leads are being rescored after a reload (or at start), 0 when caught up.
pub const RELOAD_RUNNING: &str = "leadscore_reload_rescore_running";

const SECONDS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const GROUP: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` when another recorder was
/// installed first (an embedding program's): `/metrics` then says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_GROUP.into()), GROUP))
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histograms are drained into their buckets every few seconds, scraped or not.
            let drained = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    drained.run_upkeep();
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The exposition text (Prometheus text format 0.0.4), gauges measured at the scrape
/// brought up to date first.
pub fn render() -> Option<String> {
    let handle = install()?;
    let last = LAST_SWEEP.load(std::sync::atomic::Ordering::Relaxed);
    if last > 0 {
        let now = leadscore_runtime::time::now().div_euclid(1_000_000);
        metrics::gauge!(SWEEP_LAG).set((now - last).max(0) as f64);
    }
    Some(handle.render())
}

static LAST_SWEEP: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A sweep pass finished at `now` (µs), having swept `leads`.
pub fn swept(leads: usize, now: leadscore_runtime::time::Micros) {
    metrics::counter!(SWEPT).increment(leads as u64);
    let secs = now.div_euclid(1_000_000);
    LAST_SWEEP.store(secs, std::sync::atomic::Ordering::Relaxed);
    metrics::gauge!(SWEEP_LAST).set(secs as f64);
    metrics::gauge!(SWEEP_LAG).set(0.0);
}

/// Counts `n` events with `outcome`.
pub fn events(outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(EVENTS, "outcome" => outcome).increment(n as u64);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status.");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route."
    );
    describe_histogram!(
        INGEST_DURATION,
        Unit::Seconds,
        "Time to store and score one batch of validated events."
    );
    describe_counter!(EVENTS, "Events by outcome: accepted, duplicate, refused.");
    describe_counter!(COMMITS, "Store commits (a group commit counts once).");
    describe_histogram!(COMMIT_GROUP, "Lead writes carried by one store commit.");
    describe_counter!(CONFLICTS, "Writes that lost a race with another writer.");
    describe_counter!(RETRIES, "Write attempts made again after a conflict.");
    describe_counter!(STORE_ERRORS, "Failed store calls by kind.");
    describe_gauge!(
        OUTBOX_DEPTH,
        "Notifications due at the notifier's last pass."
    );
    describe_counter!(DELIVERED, "Notifications delivered.");
    describe_counter!(DEAD_LETTERS, "Notifications given up (dead letters).");
    describe_counter!(SWEPT, "Leads the sweep re-evaluated.");
    describe_gauge!(
        SWEEP_LAG,
        Unit::Seconds,
        "Seconds since a sweep pass last finished."
    );
    describe_gauge!(SWEEP_LAST, "UNIX time a sweep pass last finished.");
    describe_counter!(RELOADS, "Rules reloads by result: applied, refused.");
    describe_counter!(RELOAD_RESCORED, "Leads rescored after a rules reload.");
    describe_gauge!(
        RELOAD_RUNNING,
        "1 while stored leads are rescored to new rules."
    );
}

/// A lead key as logs show it: the first 12 hex digits of its SHA-256, enough to follow
/// one lead through the log without writing an e-mail address into it.
pub fn logged(lead: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(lead.as_bytes());
    hex::encode(&d[..6])
}
