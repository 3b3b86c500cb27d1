//! Delivering the outbox. Notifications are written with the change they tell of
//! (leadscore_service); this worker sends them: `leadscore serve` runs it as a task, the
//! Lambda deployment on the table's stream and, for retries, on the sweep's schedule.
//!
//! Each attempt first *claims* the notification (its attempts count up and it is not due
//! again before a lease runs out), then sends it, then records the outcome: delivered,
//! due again after an exponential backoff, or — after `max_attempts` — failed, kept as a
//! dead letter (`GET /notifications?status=failed`). A worker that dies mid-attempt
//! leaves the claim to expire and the next worker sends it again: delivery is at least
//! once, and every request carries the notification's id (`X-Leadscore-Notification`,
//! and `Idempotency-Key` on webhooks) so a receiver can take it exactly once.

pub mod format;

use format::{Outgoing, Secrets, Unsendable};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use leadscore_runtime::time::Micros;
use leadscore_service::config::{Config, HttpTemplate, Notify};
use leadscore_service::metrics as M;
use leadscore_store::{Delivery, NoteStatus, Outboxed, Store, StoreError};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;
type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// What one pass over the outbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    /// Failed this time; due again later.
    pub retried: usize,
    /// Given up: dead letters.
    pub failed: usize,
    /// Taken by another worker meanwhile.
    pub skipped: usize,
}

impl Pass {
    fn add(&mut self, o: &Delivery) {
        match o {
            Delivery::Delivered => self.delivered += 1,
            Delivery::Retry { .. } => self.retried += 1,
            Delivery::Failed { .. } => self.failed += 1,
        }
    }
}

pub struct Notifier {
    store: Arc<dyn Store>,
    settings: Notify,
    secrets: BTreeMap<String, String>,
    templates: BTreeMap<String, HttpTemplate>,
    env: Box<Env>,
    client: Client<Https, Full<Bytes>>,
    clock: leadscore_service::Clock,
}

/// An address a rule may not make the server call unless `allow_private` says so.
fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| private(IpAddr::V4(v4)))
        }
    }
}

impl Notifier {
    /// The worker for `store`, with the configuration's `[notify]`, `[secrets]` and
    /// `[http]`; other secrets come from the environment (`LEADSCORE_SECRET_<NAME>`).
    pub fn new(
        store: Arc<dyn Store>,
        config: &Config,
        clock: leadscore_service::Clock,
    ) -> Notifier {
        Notifier::with_env(store, config, clock, Box::new(|k| std::env::var(k).ok()))
    }

    /// As [`Notifier::new`], reading the environment through `env`.
    pub fn with_env(
        store: Arc<dyn Store>,
        config: &Config,
        clock: leadscore_service::Clock,
        env: Box<Env>,
    ) -> Notifier {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("no CA certificates ({e}): https receivers will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let https = builder.https_or_http().enable_http1().build();
        Notifier {
            store,
            settings: config.notify.clone(),
            secrets: config.secrets.clone(),
            templates: config.http.clone(),
            env,
            client: Client::builder(TokioExecutor::new()).build(https),
            clock,
        }
    }

    fn now(&self) -> Micros {
        (self.clock)()
    }

    /// One pass: every notification due now (up to `limit`), a few at a time.
    pub async fn deliver_due(&self, limit: usize) -> Result<Pass, StoreError> {
        let due = self.store.due_notes(self.now(), limit).await?;
        metrics::gauge!(M::OUTBOX_DEPTH).set(due.len() as f64);
        let mut pass = Pass::default();
        for batch in due.chunks(8) {
            let results =
                futures_util::future::join_all(batch.iter().cloned().map(|o| self.attempt(o)))
                    .await;
            for r in results {
                match r? {
                    Some(outcome) => pass.add(&outcome),
                    None => pass.skipped += 1,
                }
            }
        }
        Ok(pass)
    }

    /// One notification, if it is due (the table's stream hands them over one by one).
    pub async fn deliver(&self, lead: &str, id: &str) -> Result<Option<Delivery>, StoreError> {
        match self.store.note(lead, id).await? {
            Some(o) if o.status == NoteStatus::Pending && o.next_at <= self.now() => {
                self.attempt(o).await
            }
            _ => Ok(None),
        }
    }

    /// Claims, sends, records. `None` when another worker had claimed it.
    async fn attempt(&self, o: Outboxed) -> Result<Option<Delivery>, StoreError> {
        let now = self.now();
        // Longer than an attempt can take (resolving and the exchange are each bounded
        // by the timeout), so a live worker's claim never runs out under it.
        let lease = Duration::from_secs(self.settings.timeout_secs.max(1) * 2 + 5);
        let until = now.saturating_add(lease.as_micros() as Micros);
        let (lead, id) = (&o.note.lead, &o.note.id);
        if !self
            .store
            .claim_note(lead, id, o.attempts, now, until)
            .await?
        {
            return Ok(None);
        }
        let attempts = o.attempts + 1;
        let outcome = match self.send(&o).await {
            Ok(()) => Delivery::Delivered,
            Err(Failure::Unsendable(e)) => Delivery::Failed { error: e.0 },
            Err(Failure::Temporary(error)) if attempts >= self.settings.max_attempts => {
                Delivery::Failed { error }
            }
            Err(Failure::Temporary(error)) => Delivery::Retry {
                next_at: self.now().saturating_add(self.backoff(attempts, id)),
                error,
            },
        };
        let lead_logged = M::logged(lead);
        match &outcome {
            Delivery::Delivered => metrics::counter!(M::DELIVERED).increment(1),
            Delivery::Failed { .. } => metrics::counter!(M::DEAD_LETTERS).increment(1),
            Delivery::Retry { .. } => {}
        }
        match &outcome {
            Delivery::Delivered => tracing::info!(
                lead = lead_logged,
                id,
                channel = o.note.channel,
                attempts,
                "notification delivered"
            ),
            Delivery::Retry { error, .. } => tracing::warn!(
                lead = lead_logged,
                id,
                channel = o.note.channel,
                attempts,
                error,
                "notification failed; will retry"
            ),
            Delivery::Failed { error } => tracing::error!(
                lead = lead_logged,
                id,
                channel = o.note.channel,
                attempts,
                error,
                "notification given up (dead letter)"
            ),
        }
        self.store
            .finish_note(lead, id, outcome.clone(), self.now())
            .await?;
        Ok(Some(outcome))
    }

    /// The wait after `attempts` failed attempts: doubling from `backoff_secs`, capped,
    /// spread by ±20% (fixed per notification, so retries of many do not fall together).
    fn backoff(&self, attempts: u32, id: &str) -> Micros {
        let base = self.settings.backoff_secs.max(1);
        let secs = base
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
            .min(self.settings.max_backoff_secs.max(base));
        let spread = id.bytes().fold(u64::from(attempts), |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b))
        }) % 41;
        let micros = secs.saturating_mul(1_000_000) / 100 * (80 + spread);
        micros.min(i64::MAX as u64) as Micros
    }

    async fn send(&self, o: &Outboxed) -> Result<(), Failure> {
        let out = {
            let secrets = Secrets {
                table: &self.secrets,
                env: &*self.env,
            };
            format::render(
                &o.note.body,
                &secrets,
                &self.templates,
                self.now().div_euclid(1000),
            )
            .map_err(Failure::Unsendable)?
        };
        self.post(out).await
    }

    async fn post(&self, out: Outgoing) -> Result<(), Failure> {
        let uri: hyper::Uri = out
            .url
            .parse()
            .map_err(|e| Failure::Unsendable(Unsendable(format!("not a URL ({e})"))))?;
        let host = uri
            .host()
            .ok_or_else(|| Failure::Unsendable(Unsendable("the URL names no host".into())))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(Failure::Unsendable(Unsendable(
                "only http and https URLs are called".into(),
            )));
        }
        let timeout = Duration::from_secs(self.settings.timeout_secs.max(1));
        if !self.settings.allow_private {
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
                    .await
                    .map_err(|_| Failure::Temporary(format!("resolving {host} timed out")))?
                    .map_err(|e| Failure::Temporary(format!("cannot resolve {host}: {e}")))?
                    .map(|a| a.ip())
                    .collect(),
            };
            if let Some(ip) = addrs.into_iter().find(|ip| private(*ip)) {
                return Err(Failure::Unsendable(Unsendable(format!(
                    "{host} is a private address ({ip}); set [notify] allow_private = true to call it"
                ))));
            }
        }
        let mut req = hyper::Request::builder()
            .method(out.method.as_str())
            .uri(uri);
        for (k, v) in &out.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(out.body)))
            .map_err(|e| Failure::Unsendable(Unsendable(format!("a bad request: {e}"))))?;
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| Failure::Temporary(format!("cannot reach the receiver: {e}")))?;
            let status = res.status();
            let body = http_body_util::Limited::new(res.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, Failure>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                Failure::Temporary(format!("no answer within {} s", timeout.as_secs()))
            })??;
        let said = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        if !status.is_success() {
            return Err(Failure::Temporary(format!("HTTP {status}: {said}")));
        }
        if out.vendor_code {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                let code = ["errcode", "code", "StatusCode"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(serde_json::Value::as_i64));
                if let Some(code) = code.filter(|c| *c != 0) {
                    return Err(Failure::Temporary(format!(
                        "the receiver refused it: code {code}: {said}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What the program's channels need that the configuration lacks: a secret not set, a
/// template not defined (said at start and on a rules reload, rather than at the first
/// notification).
pub fn missing(
    program: &leadscore_runtime::bytecode::Program,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    use leadscore_runtime::bytecode::ChannelTarget;
    let secrets = Secrets {
        table: &config.secrets,
        env,
    };
    let mut out = Vec::new();
    for c in &program.channels {
        let mut needs: Vec<String> = c.signed.iter().cloned().collect();
        match &c.target {
            ChannelTarget::Secret(n) => needs.push(n.clone()),
            ChannelTarget::Template(t) => match config.http.get(t) {
                None => out.push(format!(
                    "channel `{}`: the configuration has no [http.{t}]",
                    c.name
                )),
                Some(tpl) => {
                    let text = format!(
                        "{} {} {}",
                        tpl.url,
                        tpl.headers.values().cloned().collect::<Vec<_>>().join(" "),
                        tpl.body.clone().unwrap_or_default()
                    );
                    needs.extend(
                        text.split("{{secret.")
                            .skip(1)
                            .filter_map(|r| r.split_once("}}").map(|(n, _)| n.trim().to_string())),
                    );
                }
            },
            ChannelTarget::Url(_) => {}
        }
        for n in needs {
            if let Err(e) = secrets.get(&n) {
                out.push(format!("channel `{}`: {e}", c.name));
            }
        }
    }
    out
}

/// Why an attempt failed.
enum Failure {
    /// Worth trying again (the receiver was down, slow, or said no for now).
    Temporary(String),
    /// No retry helps (a missing secret or template, a forbidden address).
    Unsendable(Unsendable),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!private(ip.parse().unwrap()), "{ip}");
        }
    }
}
