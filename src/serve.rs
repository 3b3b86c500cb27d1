//! `leadscore serve`: the HTTP API on the embedded SQLite store.

use crate::commands::load_program_as;
use crate::DiagFormat;
use anyhow::{Context, Result};
use leadscore_http::notify::{self, Notifier};
use leadscore_http::App;
use leadscore_service::config::Config;
use leadscore_service::metrics as M;
use leadscore_service::Service;
use leadscore_store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How often the rules file is checked for changes, and time-based rules swept.
/// How long the events of one save are let settle before the rules file is read.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);
/// How often the file is polled where the system has no file events.
const RELOAD_POLL: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Options {
    pub file: PathBuf,
    pub db: PathBuf,
    pub listen: String,
    pub config: Option<PathBuf>,
    /// Rules scored beside the live ones, never causing transitions.
    pub shadow: Option<PathBuf>,
    /// An A/B split: the variant's rules and its share of leads (basis points).
    pub variant: Option<(PathBuf, u32)>,
}

pub fn serve(o: Options) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADSCORE_LOG")
        .unwrap_or_else(|_| "info".into());
    // `LEADSCORE_LOG_FORMAT=json`: one JSON object a line, for a log pipeline.
    if std::env::var("LEADSCORE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let Some(program) = load_program_as(&o.file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let shadow = match &o.shadow {
        None => None,
        Some(path) => match load_program_as(path, DiagFormat::Rich)? {
            Some(p) => Some(p),
            None => return Ok(ExitCode::from(crate::commands::RULE_ERRORS)),
        },
    };
    let variant = match &o.variant {
        None => None,
        Some((path, share)) => match load_program_as(path, DiagFormat::Rich)? {
            Some(p) => Some((p, *share)),
            None => return Ok(ExitCode::from(crate::commands::RULE_ERRORS)),
        },
    };
    let config_path = o
        .config
        .clone()
        .or_else(|| std::env::var_os("LEADSCORE_CONFIG").map(PathBuf::from));
    let config = Config::load(config_path.as_deref()).map_err(anyhow::Error::msg)?;
    if config.security.webhook_secrets.is_empty() {
        tracing::warn!("no webhook secret: POST /events accepts unsigned requests (set LEADSCORE_WEBHOOK_SECRET)");
    }
    if config.security.read_tokens.is_empty() {
        tracing::warn!("no read token: GET /leads is open to anyone who can reach it (set LEADSCORE_READ_TOKEN)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(o, program, shadow, variant, config))?;
    Ok(ExitCode::SUCCESS)
}

async fn run(
    o: Options,
    program: leadscore_runtime::bytecode::Program,
    shadow: Option<leadscore_runtime::bytecode::Program>,
    variant: Option<(leadscore_runtime::bytecode::Program, u32)>,
    config: Config,
) -> Result<()> {
    let store = Arc::new(
        SqliteStore::open(&o.db).with_context(|| format!("cannot open {}", o.db.display()))?,
    );
    tracing::info!(ruleset = program.name, db = %o.db.display(), "rules loaded");
    if let Err(e) = leadscore_service::Roster::from_config(&config).check(&program) {
        tracing::warn!("{e}: such leads go to the pool");
    }
    let service = Arc::new(
        Service::new(program, store.clone())
            .with_keys(config.keys)
            .with_roster(leadscore_service::Roster::from_config(&config))
            .map_err(|e| anyhow::anyhow!("the rules and the configuration disagree: {e}"))?,
    );
    if let Some(shadow) = shadow {
        tracing::info!(ruleset = shadow.name, "shadow rules loaded");
        service.set_shadow(Some(shadow));
    }
    if let Some((variant, share)) = variant {
        tracing::info!(
            ruleset = variant.name,
            share_percent = f64::from(share) / 100.0,
            "A/B split: variant rules loaded"
        );
        service.set_variant(Some((variant, share)));
    }
    for problem in notify::missing(&service.rules().program, &config, &|k| {
        std::env::var(k).ok()
    }) {
        tracing::warn!("{problem}: its notifications will fail");
    }
    let notifier = config.notify.enabled.then(|| {
        let store: Arc<dyn leadscore_store::Store> = store.clone();
        Arc::new(Notifier::new(
            store,
            &config,
            Arc::new(leadscore_runtime::time::now),
        ))
    });
    let poll = Duration::from_millis(config.notify.poll_millis.max(10));
    let rulebook: Arc<dyn leadscore_http::console::Rulebook> =
        Arc::new(crate::console::FileRules {
            path: o.file.clone(),
        });
    let app = App::with_rulebook(service.clone(), config, Some(rulebook));
    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .with_context(|| format!("cannot listen on {}", o.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}");
    let reload = tokio::spawn(watch_rules(o.file.clone(), service.clone()));
    // Leads left on other rules (a rules change while stopped, a rescore cut short).
    let catch_up = tokio::spawn(rescore_stored(service.clone()));
    let sweep = tokio::spawn(sweep_loop(service.clone()));
    let deliver = notifier.map(|n| tokio::spawn(deliver_loop(n, poll)));
    let limits = app.config.limits.clone();
    leadscore_http::listen::serve(listener, leadscore_http::router(app), &limits, shutdown())
        .await
        .context("server failed")?;
    reload.abort();
    catch_up.abort();
    sweep.abort();
    // A delivery cut short here is claimed, not lost: it is due again when its lease ends.
    if let Some(d) = deliver {
        d.abort();
    }
    // In-flight requests have been answered; their commits are durable. Close the writer.
    store.close();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: draining requests in flight");
}

/// Watches the directory of the rules file (editors and deploys replace a file by a rename,
/// which a watch on the file itself would lose) and says when the file may have changed.
/// Where the system's file events are unavailable, the file is polled instead.
fn rules_changes(
    path: &Path,
) -> Option<(Box<dyn ::notify::Watcher + Send>, UnboundedReceiver<()>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let name = path.file_name()?.to_owned();
    let handler = move |res: ::notify::Result<::notify::Event>| {
        if let Ok(event) = res {
            let ours = event.paths.iter().any(|p| p.file_name() == Some(&name));
            if ours && !event.kind.is_access() {
                let _ = tx.send(());
            }
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher: Box<dyn ::notify::Watcher + Send> =
        match ::notify::recommended_watcher(handler.clone()) {
            Ok(w) => Box::new(w),
            Err(e) => {
                tracing::warn!("file events unavailable ({e}); polling the rules file");
                let config = ::notify::Config::default().with_poll_interval(RELOAD_POLL);
                Box::new(::notify::PollWatcher::new(handler, config).ok()?)
            }
        };
    if let Err(e) = watcher.watch(&dir, ::notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), "rules reload on change is off: {e}");
        return None;
    }
    Some((watcher, rx))
}

/// Reloads the rules on SIGHUP or when the file changes. A file that fails to compile
/// never replaces the running program; its diagnostics are logged.
async fn watch_rules(path: PathBuf, service: Arc<Service>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Kept alive for as long as the loop runs.
    let (_watcher, mut changes) = match rules_changes(&path) {
        Some((w, rx)) => (Some(w), rx),
        None => (None, tokio::sync::mpsc::unbounded_channel().1),
    };
    let mut rescoring = None;
    loop {
        let changed = changes.recv();
        #[cfg(unix)]
        match hup.as_mut() {
            Some(h) => tokio::select! {
                Some(()) = changed => {}
                _ = h.recv() => {}
            },
            None => {
                if changed.await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
        #[cfg(not(unix))]
        if changed.await.is_none() {
            std::future::pending::<()>().await;
        }
        // A save is often several events (truncate, write, rename): let them settle, then
        // read the file once.
        tokio::time::sleep(RELOAD_SETTLE).await;
        while changes.try_recv().is_ok() {}
        let p = path.clone();
        let loaded =
            tokio::task::spawn_blocking(move || load_program_as(&p, DiagFormat::Short)).await;
        match loaded {
            Ok(Ok(Some(program))) => match service.roster().check(&program) {
                Err(e) if service.roster().teams.is_empty() => {
                    tracing::warn!("{e}: such leads go to the pool");
                    tracing::info!(ruleset = program.name, file = %path.display(), "rules reloaded");
                    service.set_program(program);
                    reloaded(&service, &mut rescoring);
                }
                Ok(()) => {
                    tracing::info!(ruleset = program.name, file = %path.display(), "rules reloaded");
                    service.set_program(program);
                    reloaded(&service, &mut rescoring);
                }
                Err(e) => {
                    refused();
                    tracing::error!(
                        file = %path.display(),
                        "rules not reloaded: {e}; the running rules stay"
                    )
                }
            },
            Ok(Ok(None)) => {
                refused();
                tracing::error!(
                    file = %path.display(),
                    "rules not reloaded: the file has errors (above); the running rules stay"
                )
            }
            Ok(Err(e)) => {
                refused();
                tracing::error!(file = %path.display(), "rules not reloaded: {e:#}")
            }
            Err(e) => {
                refused();
                tracing::error!("rules not reloaded: {e}")
            }
        }
    }
}

fn refused() {
    metrics::counter!(M::RELOADS, "result" => "refused").increment(1);
}

/// New rules are running: the stored leads are brought up to them in the background (a
/// rescore already under way for older rules gives way to this one).
fn reloaded(service: &Arc<Service>, rescoring: &mut Option<tokio::task::JoinHandle<()>>) {
    metrics::counter!(M::RELOADS, "result" => "applied").increment(1);
    if let Some(previous) = rescoring.take() {
        previous.abort();
    }
    *rescoring = Some(tokio::spawn(rescore_stored(service.clone())));
}

/// Rescores every stored lead made by other rules, a page at a time, so listings and
/// `GET /leads/{lead}` agree after a reload. Resumable: leads already on the running
/// rules are skipped, so a pass cut short (a restart, a newer reload) is finished by the
/// next; `serve` runs one at start for that reason.
pub(crate) async fn rescore_stored(service: Arc<Service>) {
    const PAGE: usize = 200;
    let hash = service.rules().hash.clone();
    metrics::gauge!(M::RELOAD_RUNNING).set(1.0);
    let (mut after, mut rescored, mut regraded, mut current) = (None, 0usize, 0usize, 0usize);
    loop {
        match service.rescore(PAGE, after.take()).await {
            Ok(done) => {
                metrics::counter!(M::RELOAD_RESCORED).increment(done.rescored as u64);
                rescored += done.rescored;
                regraded += done.changed_grade;
                current += done.current;
                if done.rescored > 0 {
                    tracing::info!(
                        program = hash,
                        rescored,
                        changed_grade = regraded,
                        "rescoring stored leads"
                    );
                }
                match done.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            Err(e) => {
                // Nothing half-done: each lead is rescored in its own transaction, and the
                // next reload or start goes on from where this stopped.
                tracing::error!(error = e.logged(), "rescoring stored leads stopped");
                metrics::gauge!(M::RELOAD_RUNNING).set(0.0);
                return;
            }
        }
    }
    metrics::gauge!(M::RELOAD_RUNNING).set(0.0);
    if rescored > 0 {
        tracing::info!(
            program = hash,
            rescored,
            changed_grade = regraded,
            current,
            "stored leads rescored"
        );
    }
}

/// Delivers the outbox: every notification as it falls due.
async fn deliver_loop(notifier: Arc<Notifier>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = notifier.deliver_due(100).await {
            tracing::error!("delivering notifications failed: {e}");
        }
    }
}

/// Records transitions caused by time alone (inactivity, expiry) as they fall due.
async fn sweep_loop(service: Arc<Service>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        match service.sweep(10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(leads = n, "swept time-based rules"),
            Err(e) => tracing::error!("sweep failed: {e}"),
        }
    }
}
