//! The AWS Lambda entry: the same router as `leadscore serve`, behind `lambda_http`.
//!
//! Init reads everything once: the compiled program (`LEADSCORE_PROGRAM`, default
//! `$LAMBDA_TASK_ROOT/program.lsb`), optional shadow rules (`LEADSCORE_SHADOW_PROGRAM`)
//! and A/B variant (`LEADSCORE_VARIANT_PROGRAM`, `LEADSCORE_VARIANT_SHARE` in percent),
//! the configuration (`LEADSCORE_CONFIG`, optional) and
//! secrets (`LEADSCORE_WEBHOOK_SECRET`, `LEADSCORE_READ_TOKEN` and their `_PREVIOUS`
//! twins), and the store (`LEADSCORE_STORE`: `dynamodb:TABLE` or `memory`, and
//! `sqlite:PATH` in builds with the `sqlite` feature, which the Lambda artifact leaves out;
//! `LEADSCORE_DYNAMODB_ENDPOINT` for a local DynamoDB-compatible server). A program that
//! does not load, or a function without a webhook secret and read token (unless
//! `LEADSCORE_ALLOW_OPEN=1`), fails init with one clear log line.
//!
//! **May depend on**: `leadscore-http`, `leadscore-service`, `leadscore-store` (with
//! `dynamodb`), `leadscore-runtime`; never on the parser, the compiler or SQLite (outside
//! the `sqlite` test feature) — CI checks the artifact's tree.

use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use leadscore_http::notify::Notifier;
use leadscore_http::{App, ClientIp, Config};
use leadscore_runtime::bytecode::Program;
use leadscore_service::Service;
use leadscore_store::{dynamo::DynamoStore, memory::MemoryStore, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// Builds the app from the environment (read through `get`).
pub async fn init(get: impl Fn(&str) -> Option<String>) -> Result<Arc<App>, String> {
    init_with_clock(get, Arc::new(leadscore_runtime::time::now)).await
}

/// [`init`] with a clock of the caller's (what time it is for the scores, deadlines and
/// the outbox).
pub async fn init_with_clock(
    get: impl Fn(&str) -> Option<String>,
    clock: leadscore_service::Clock,
) -> Result<Arc<App>, String> {
    let program_path = get("LEADSCORE_PROGRAM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(get("LAMBDA_TASK_ROOT").unwrap_or_else(|| ".".into())).join("program.lsb")
        });
    let bytes = std::fs::read(&program_path)
        .map_err(|e| format!("cannot read the program {}: {e}", program_path.display()))?;
    let program = Program::from_bytes(&bytes)
        .map_err(|e| format!("{} is not a valid program: {e}", program_path.display()))?;
    let mut config = match get("LEADSCORE_CONFIG").filter(|p| !p.trim().is_empty()) {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {p}: {e}"))?;
            Config::parse(&text).map_err(|e| format!("{p}: {e}"))?
        }
        None => Config::default(),
    };
    config.add_env(&get);
    let open = get("LEADSCORE_ALLOW_OPEN").is_some_and(|v| v == "1");
    if !open
        && (config.security.webhook_secrets.is_empty() || config.security.read_tokens.is_empty())
    {
        return Err("set LEADSCORE_WEBHOOK_SECRET and LEADSCORE_READ_TOKEN (or LEADSCORE_ALLOW_OPEN=1 for an open test deployment)".into());
    }
    let store: Arc<dyn Store> = match get("LEADSCORE_STORE").as_deref().unwrap_or("memory") {
        "memory" => Arc::new(MemoryStore::new()),
        #[cfg(feature = "sqlite")]
        s if s.starts_with("sqlite:") => Arc::new(
            leadscore_store::sqlite::SqliteStore::open(&s["sqlite:".len()..])
                .map_err(|e| e.to_string())?,
        ),
        s if s.starts_with("dynamodb:") => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(url) = get("LEADSCORE_DYNAMODB_ENDPOINT") {
                loader = loader.endpoint_url(url);
            }
            let config = loader.load().await;
            Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                &s["dynamodb:".len()..],
            ))
        }
        other => {
            return Err(format!(
                "LEADSCORE_STORE={other}: expected dynamodb:TABLE or memory"
            ))
        }
    };
    let shadow = match get("LEADSCORE_SHADOW_PROGRAM").filter(|p| !p.is_empty()) {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the shadow program {path}: {e}"))?;
            Some(
                Program::from_bytes(&bytes)
                    .map_err(|e| format!("{path} is not a valid program: {e}"))?,
            )
        }
    };
    let variant = match get("LEADSCORE_VARIANT_PROGRAM").filter(|p| !p.is_empty()) {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the variant program {path}: {e}"))?;
            let p = Program::from_bytes(&bytes)
                .map_err(|e| format!("{path} is not a valid program: {e}"))?;
            let share = get("LEADSCORE_VARIANT_SHARE").unwrap_or_default();
            let share = leadscore_runtime::split::parse_percent(&share)
                .map_err(|e| format!("LEADSCORE_VARIANT_SHARE: {e}"))?;
            Some((p, share))
        }
    };
    for problem in leadscore_http::notify::missing(&program, &config, &get) {
        tracing::warn!("{problem}: its notifications will fail");
    }
    tracing::info!(ruleset = program.name, program = %program_path.display(), "initialised");
    if let Err(e) = leadscore_service::Roster::from_config(&config).check(&program) {
        tracing::warn!("{e}: such leads go to the pool");
    }
    let service = Arc::new(
        Service::with_clock(program, store, clock)
            .with_keys(config.keys)
            .with_roster(leadscore_service::Roster::from_config(&config))
            .map_err(|e| format!("the rules and the configuration disagree: {e}"))?,
    );
    if let Some(shadow) = shadow {
        tracing::info!(ruleset = shadow.name, "shadow rules loaded");
        service.set_shadow(Some(shadow));
    }
    if let Some(variant) = variant {
        tracing::info!(ruleset = variant.0.name, "A/B split: variant rules loaded");
        service.set_variant(Some(variant));
    }
    Ok(App::new(service, config))
}

/// The client address from the request context (API Gateway HTTP API or Function URL).
pub fn client_ip(req: &lambda_http::Request) -> Option<std::net::IpAddr> {
    let ip = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
    }?;
    ip.parse().ok()
}

/// Answers one Lambda HTTP request with the router, tagged with its client address.
pub async fn handle(router: Router, mut req: lambda_http::Request) -> axum::response::Response {
    use tower::ServiceExt;
    if let Some(ip) = client_ip(&req) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Serves `router` through `lambda_http` until the runtime stops.
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    let service = tower::service_fn(move |req: lambda_http::Request| {
        let router = router.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(router, req).await) }
    });
    lambda_http::run(service).await
}

/// The outbox's deliverer, on the service's clock.
pub fn notifier(app: &App) -> Notifier {
    let service = app.service.clone();
    Notifier::new(
        app.service.store().clone(),
        &app.config,
        Arc::new(move || service.now()),
    )
}

/// The sweep mode (`LEADSCORE_MODE=sweep`, invoked by the EventBridge schedule): each
/// invocation records the transitions that time alone caused for the leads that are due,
/// then delivers the notifications due (retries; first attempts come from the stream).
pub async fn run_sweep(app: Arc<App>) -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let notifier = Arc::new(notifier(&app));
    let handler = lambda_runtime::service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let (app, notifier) = (app.clone(), notifier.clone());
        async move { sweep_once(&app, &notifier).await }
    });
    lambda_runtime::run(handler).await
}

/// One invocation of the sweep mode: what time alone changed (deadlines, recycling and
/// plan steps included), then the notifications due.
pub async fn sweep_once(
    app: &App,
    notifier: &Notifier,
) -> Result<serde_json::Value, lambda_http::Error> {
    let mut swept = 0;
    loop {
        let n = app.service.sweep(1_000).await?;
        swept += n;
        if n < 1_000 {
            break;
        }
    }
    let pass = if app.config.notify.enabled {
        notifier.deliver_due(1_000).await?
    } else {
        leadscore_http::notify::Pass::default()
    };
    tracing::info!(leads = swept, delivered = pass.delivered, "swept");
    Ok(serde_json::json!({
        "swept": swept,
        "notifications": {"delivered": pass.delivered, "retried": pass.retried,
                          "failed": pass.failed},
    }))
}

/// The notifications in a DynamoDB stream event: (lead, id) of each new outbox item.
pub fn stream_notes(event: &serde_json::Value) -> Vec<(String, String)> {
    let key =
        |r: &serde_json::Value, k: &str| r["dynamodb"]["Keys"][k]["S"].as_str().map(str::to_string);
    event["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|r| r["eventName"] == "INSERT")
                .filter_map(|r| {
                    let lead = key(r, "PK")?.strip_prefix("LEAD#")?.to_string();
                    let id = key(r, "SK")?.strip_prefix("NOTE#")?.to_string();
                    Some((lead, id))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The notify mode (`LEADSCORE_MODE=notify`, on the table's stream): delivers each new
/// notification at once. A failed delivery is not the batch's failure: the outbox keeps
/// it due again, and the sweep's schedule retries it.
pub async fn run_notify(app: Arc<App>) -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let notifier = Arc::new(notifier(&app));
    let handler = lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let notifier = notifier.clone();
        async move {
            let mut delivered = 0;
            for (lead, id) in stream_notes(&event.payload) {
                if let Some(leadscore_store::Delivery::Delivered) =
                    notifier.deliver(&lead, &id).await?
                {
                    delivered += 1;
                }
            }
            Ok::<_, lambda_http::Error>(serde_json::json!({
                "batchItemFailures": [], "delivered": delivered,
            }))
        }
    });
    lambda_runtime::run(handler).await
}
