//! `leadscore-load`: drives `leadscore serve` on loopback with a realistic mix of traffic
//! and reports throughput, latency percentiles, errors and the server's memory over time;
//! then checks that nothing acknowledged was lost or counted twice. Bounded in time and
//! in requests; it refuses any address but loopback. docs/performance.md, "Load and soak".
//!
//! ```sh
//! cargo build --release
//! target/release/leadscore-load --seconds 60                  # starts its own server
//! target/release/leadscore-load --seconds 600 --sample-every 10   # the soak
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
#[command(about = "Drives leadscore serve on loopback and reports what it did")]
struct Opts {
    /// A running server (loopback only); without it, one is started on a new database.
    #[arg(long)]
    url: Option<String>,
    /// The leadscore binary to start (default: beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// The rules the started server runs.
    #[arg(long, default_value = "examples/001-zoho.rules")]
    rules: PathBuf,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// At most this many requests (0: no limit).
    #[arg(long, default_value_t = 0)]
    requests: u64,
    /// Clients sending at once.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Distinct leads the traffic is spread over.
    #[arg(long, default_value_t = 5_000)]
    leads: u64,
    /// Sample the started server's memory every this many seconds.
    #[arg(long, default_value_t = 5)]
    sample_every: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What a request is, for the mix and the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Form,
    Open,
    Click,
    Duplicate,
    Beacon,
    Read,
    List,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Form => "form",
            Kind::Open => "email.opened",
            Kind::Click => "email.clicked",
            Kind::Duplicate => "duplicate",
            Kind::Beacon => "beacon",
            Kind::Read => "read",
            Kind::List => "listing",
        }
    }

    /// The mix, out of 100: what a B2B site with mail campaigns sees.
    fn pick(n: u64) -> Kind {
        match n % 100 {
            0..=9 => Kind::Form,
            10..=39 => Kind::Open,
            40..=49 => Kind::Click,
            50..=59 => Kind::Duplicate,
            60..=79 => Kind::Beacon,
            80..=94 => Kind::Read,
            _ => Kind::List,
        }
    }
}

/// Per kind: latencies (µs) and outcomes.
#[derive(Default)]
struct Tally {
    latency: BTreeMap<Kind, Histogram<u64>>,
    statuses: BTreeMap<(Kind, u16), u64>,
    transport_errors: u64,
}

/// What the verification needs: for each lead that only `/events` touched, the ids the
/// server acknowledged.
#[derive(Default)]
struct Acked {
    by_lead: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// A small, fast, deterministic generator (no dependency needed for a load mix).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("");
    rest.starts_with("127.") || rest.starts_with("[::1]") || rest.starts_with("localhost")
}

/// The server this run starts: a new database, limits for one client address lifted.
struct Started {
    child: Child,
    url: String,
    /// The started server's database and configuration, removed with it.
    dir: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(o: &Opts) -> Result<Started> {
    let bin = match &o.server {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("leadscore"),
    };
    let dir = std::env::temp_dir().join(format!(
        "leadscore-load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("leadscore.toml");
    // All traffic comes from one address: the per-address limits would throttle it.
    std::fs::write(
        &config,
        "[forms]\nrate_per_minute = 0\n[track]\nrate_per_minute = 0\n[notify]\nenabled = false\n",
    )?;
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg(&o.rules)
        .arg("--db")
        .arg(dir.join("load.db"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("LEADSCORE_LOG", "warn,leadscore::serve=info")
        .env_remove("LEADSCORE_WEBHOOK_SECRET")
        .env_remove("LEADSCORE_READ_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
            } else if line.contains("WARN") || line.contains("ERROR") {
                // What the server says went wrong is part of the report.
                eprintln!("server: {line}");
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the server did not start")?;
    Ok(Started { child, url, dir })
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    c: reqwest::Client,
    url: String,
    o: Opts,
    worker: u64,
    deadline: Instant,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    acked: Arc<Mutex<Acked>>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (worker + 1).wrapping_mul(0x1000_0000_01B3));
    let mut recent: Vec<Value> = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let count = sent.fetch_add(1, Ordering::Relaxed);
        if o.requests > 0 && count >= o.requests {
            break;
        }
        n += 1;
        let kind = Kind::pick(rng.next());
        let lead_n = rng.next() % o.leads.max(1);
        // Leads below half only ever get /events (verified at the end); the rest get
        // forms, beacons and reads.
        let mailed = format!("lead{:06}@load.test", lead_n / 2 * 2);
        let web = format!("lead{:06}@load.test", lead_n / 2 * 2 + 1);
        let visitor = format!("visitor-{:010}", lead_n);
        let mut new_id = None;
        let req = match kind {
            Kind::Form => c
                .post(format!("{url}/forms/contact"))
                .header("user-agent", "leadscore-load")
                .form(&[
                    ("email", web.as_str()),
                    ("country", if n % 3 == 0 { "DE" } else { "PL" }),
                    ("title", "Purchasing Manager"),
                    ("message", "We need 500 pcs"),
                    ("_visitor", visitor.as_str()),
                ]),
            Kind::Open | Kind::Click => {
                let e = json!({"id": format!("w{worker}-{n}"), "lead": mailed,
                    "type": if kind == Kind::Open { "email.opened" } else { "email.clicked" },
                    "at": now_iso()});
                recent.push(e.clone());
                if recent.len() > 64 {
                    recent.remove(0);
                }
                new_id = Some(format!("w{worker}-{n}"));
                c.post(format!("{url}/events")).json(&e)
            }
            Kind::Duplicate => match recent.get(rng.next() as usize % recent.len().max(1)) {
                Some(e) => c.post(format!("{url}/events")).json(e),
                None => continue,
            },
            Kind::Beacon => c
                .post(format!("{url}/track"))
                .header("content-type", "text/plain")
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 (leadscore-load)",
                )
                .body(
                    json!({"v": visitor, "events": [{"type": "page.viewed",
                        "props": {"path": "/pricing", "page": "pricing"}}]})
                    .to_string(),
                ),
            Kind::Read => c.get(format!(
                "{url}/leads/{}",
                if n % 2 == 0 { &mailed } else { &web }
            )),
            Kind::List => c.get(format!("{url}/leads?grade=A&limit=50")),
        };
        let started = Instant::now();
        let res = req.send().await;
        let micros = started.elapsed().as_micros() as u64;
        let mut t = tally.lock().unwrap();
        t.latency
            .entry(kind)
            .or_insert_with(histogram)
            .saturating_record(micros.max(1));
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                *t.statuses.entry((kind, status)).or_default() += 1;
                drop(t);
                if let (200, Some(id)) = (status, new_id) {
                    acked
                        .lock()
                        .unwrap()
                        .by_lead
                        .entry(mailed)
                        .or_default()
                        .insert(id);
                }
            }
            Err(_) => t.transport_errors += 1,
        }
    }
}

/// Latencies in microseconds, 1 µs to 10 minutes at three significant digits (a
/// slower answer is counted as 10 minutes, never dropped).
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 100.0).round() / 100.0;
    json!({"count": h.len(), "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
           "max_ms": (h.max() as f64 / 1000.0 * 100.0).round() / 100.0})
}

async fn run(o: Opts) -> Result<Value> {
    let started = match &o.url {
        Some(u) if !loopback(u) => bail!("{u}: leadscore-load only drives servers on loopback"),
        Some(_) => None,
        None => Some(start(&o)?),
    };
    let url = match (&o.url, &started) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => unreachable!("a server was started"),
    };
    let pid = started.as_ref().map(|s| s.child.id());
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(o.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs(o.seconds);
    let (sent, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (tally, acked) = (
        Arc::new(Mutex::new(Tally::default())),
        Arc::new(Mutex::new(Acked::default())),
    );
    let memory = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let sampler = pid.map(|pid| {
        let (memory, stop) = (memory.clone(), stop.clone());
        let every = Duration::from_secs(o.sample_every.max(1));
        tokio::spawn(async move {
            loop {
                if let Some(kib) = rss_kib(pid) {
                    memory
                        .lock()
                        .unwrap()
                        .push((begin.elapsed().as_secs_f64(), kib));
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        })
    });
    let workers: Vec<_> = (0..o.connections as u64)
        .map(|w| {
            tokio::spawn(client_loop(
                c.clone(),
                url.clone(),
                o.clone(),
                w,
                deadline,
                sent.clone(),
                stop.clone(),
                tally.clone(),
                acked.clone(),
            ))
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let elapsed = begin.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        s.await?;
    }

    // Nothing acknowledged lost, nothing counted twice: each verified lead holds exactly
    // the events the server acknowledged for it.
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let mut verified = 0;
    let mut mismatches = Vec::new();
    for (lead, ids) in acked.by_lead.iter().take(200) {
        let v: Value = c
            .get(format!("{url}/leads/{lead}/export"))
            .send()
            .await?
            .json()
            .await?;
        let stored: std::collections::BTreeSet<String> = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        if !ids.is_subset(&stored)
            || stored.len() != v["lead"]["events"].as_u64().unwrap_or(0) as usize
        {
            mismatches.push(lead.clone());
        }
        verified += 1;
    }
    let t = tally.lock().unwrap();
    let total: u64 = t.statuses.values().sum();
    let mut by_kind = serde_json::Map::new();
    for (kind, h) in &t.latency {
        let mut v = percentiles(h);
        let statuses: BTreeMap<String, u64> = t
            .statuses
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, s), n)| (s.to_string(), *n))
            .collect();
        v["statuses"] = json!(statuses);
        by_kind.insert(kind.name().into(), v);
    }
    let mut all = histogram();
    for h in t.latency.values() {
        all.add(h)?;
    }
    let errors: u64 = t
        .statuses
        .iter()
        .filter(|((_, s), _)| *s >= 500 || *s == 429 || *s == 400)
        .map(|(_, n)| n)
        .sum::<u64>()
        + t.transport_errors;
    let mem = memory.lock().unwrap().clone();
    let memory_report = if mem.is_empty() {
        Value::Null
    } else {
        // The trend over the second half: a leak keeps climbing after warm-up.
        let half: Vec<&(f64, u64)> = mem.iter().filter(|(t, _)| *t >= elapsed / 2.0).collect();
        let first = half.first().map_or(0, |s| s.1);
        let last = half.last().map_or(0, |s| s.1);
        json!({"samples_kib": mem.iter().map(|(t, k)| json!([(t * 10.0).round() / 10.0, k])).collect::<Vec<_>>(),
               "max_kib": mem.iter().map(|s| s.1).max(),
               "second_half_change_kib": last as i64 - first as i64})
    };
    Ok(json!({
        "seconds": (elapsed * 10.0).round() / 10.0,
        "connections": o.connections,
        "requests": total,
        "requests_per_second": (total as f64 / elapsed).round(),
        "all": percentiles(&all),
        "by_kind": by_kind,
        "errors": errors,
        "transport_errors": t.transport_errors,
        "verified_leads": verified,
        "mismatched_leads": mismatches,
        "memory": memory_report,
    }))
}

fn main() -> ExitCode {
    let o = Opts::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match rt.block_on(run(o.clone())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if o.json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    let clean = report["errors"] == 0
        && report["mismatched_leads"]
            .as_array()
            .is_some_and(Vec::is_empty);
    if clean {
        ExitCode::SUCCESS
    } else {
        eprintln!("errors or mismatched leads: see the report");
        ExitCode::from(1)
    }
}
