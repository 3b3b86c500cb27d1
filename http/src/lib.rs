//! The HTTP API of DESIGN.md: one axum router, served by `leadscore serve` and by the
//! Lambda entry. Reference: docs/http-api.md.
//!
//!
//! **Owns**: the router and its errors (`ApiError`: status, code, reason), verification of
//! signatures and tokens (`auth`), forms, tracking (`t.js`), the mail platforms' webhooks
//! (`hooks`), `serve`'s listener (`listen`), and the notifier that delivers the outbox
//! (`notify`: outbound HTTP, each receiver's shape and signature).
//!
//! **May depend on**: `leadscore-service` (every handler calls it; none touches the
//! store), `leadscore-store`'s types, `leadscore-runtime`; never on the language or a
//! database crate.
//!
//! **Invariants**: every request body is bounded before it is read; a writing endpoint
//! verifies its signature before it parses; no handler panics on input.

pub mod auth;
pub mod console;
mod desk;
mod error;
mod forms;
pub mod hooks;
mod leads;
pub mod listen;
mod notes;
pub mod notify;
pub mod openapi;
mod track;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leadscore_runtime::time;
/// The deployment configuration lives at the crate root (offline commands read it too).
pub use leadscore_service::config::{self, Config};
use leadscore_service::{parse_events, LeadView, MergeError, Retried, Service};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
use leads::{delete_lead, export_lead, get_lead, merge_lead, page, require_reader};
use notes::{list_notifications, retry_notification};
use openapi::ErrorBody;

/// The largest `POST /events` body.
pub const MAX_EVENTS_BODY: usize = 1024 * 1024;
/// The most leads one `GET /leads` page holds.
pub const MAX_PAGE: usize = 1000;

/// The client's address, for per-client limits. `serve` takes it from the connection;
/// the Lambda entry from the request context.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

pub struct App {
    pub service: Arc<Service>,
    pub config: Config,
    /// The rules' text and the draft checker, where the compiler runs (`serve`).
    pub rulebook: Option<Arc<dyn console::Rulebook>>,
    limiter: forms::Limiter,
    /// The tracking beacon's own rate per client (page views come more often than forms).
    track_limiter: forms::Limiter,
    /// Public inputs naming one lead (form posts, identified beacons), whatever their
    /// addresses: fresh addresses and visitor ids cannot pump a lead.
    lead_limiter: forms::LeadLimiter,
    /// Console sign-in attempts per client address.
    signin_limiter: forms::Limiter,
}

impl App {
    pub fn new(service: Arc<Service>, config: Config) -> Arc<App> {
        App::with_rulebook(service, config, None)
    }

    /// With the rules' text and a draft checker for the console's rules page.
    pub fn with_rulebook(
        service: Arc<Service>,
        config: Config,
        rulebook: Option<Arc<dyn console::Rulebook>>,
    ) -> Arc<App> {
        let limiter = forms::limiter(config.forms.rate_per_minute);
        let track_limiter = forms::limiter(config.track.rate_per_minute);
        let lead_limiter = forms::lead_limiter(config.forms.rate_per_lead_per_hour);
        leadscore_service::metrics::install();
        Arc::new(App {
            service,
            config,
            rulebook,
            signin_limiter: forms::limiter(console::SIGNIN_PER_MINUTE),
            limiter,
            track_limiter,
            lead_limiter,
        })
    }
}

pub fn router(app: Arc<App>) -> Router {
    let origins = &app.config.forms.allowed_origins;
    let allow = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse::<HeaderValue>().ok()))
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    let public = Router::new()
        .route("/forms/{form}", post(forms::post_form))
        .route("/track", post(track::post_track).get(track::pixel))
        .layer(cors);
    Router::new()
        .route("/events", post(post_events))
        .route("/admin/rescore", post(post_rescore))
        .route("/hooks/sendgrid", post(hooks::sendgrid))
        .route(
            "/hooks/sendgrid/inbound",
            post(hooks::sendgrid_inbound).layer(axum::extract::DefaultBodyLimit::max(
                hooks::MAX_INBOUND_BODY,
            )),
        )
        .route(
            "/hooks/mailchimp",
            post(hooks::mailchimp).get(hooks::mailchimp_ping),
        )
        .route("/leads", get(desk::list_leads))
        .route("/views", get(desk::list_views))
        .route("/companies/{domain}", get(desk::get_company))
        .route("/duplicates", get(desk::get_duplicates))
        .route("/views/{name}", get(desk::get_view))
        .route("/leads/{lead}/history", get(desk::get_history))
        .route("/leads/{lead}/followups", post(desk::post_followup))
        .route("/leads/{lead}", get(get_lead).delete(delete_lead))
        .route("/leads/{lead}/export", get(export_lead))
        .route("/leads/{lead}/merge", post(merge_lead))
        .route("/notifications", get(list_notifications))
        .route(
            "/leads/{lead}/notifications/{id}/retry",
            post(retry_notification),
        )
        .route("/t.js", get(track::snippet))
        .route("/healthz", get(healthz))
        .route("/metrics", get(get_metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        // Before the public routes are merged: their CORS layer answers preflights (OPTIONS),
        // which this fallback would otherwise take.
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                format!("this endpoint does not answer {method}; see docs/http-api.md"),
            )
        })
        .merge(public)
        .merge(console::routes())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not found",
                "no such endpoint; see docs/http-api.md",
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), deadline))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Answers `408` for a request that outlasts `[limits] request_timeout_secs`, body read
/// included. A write in flight is dropped between its atomic commits, so a retry of the
/// same events counts each exactly once.
async fn deadline(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let secs = app.config.limits.request_timeout_secs;
    match tokio::time::timeout(std::time::Duration::from_secs(secs), next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request timeout",
            format!("the request took longer than {secs} s"),
        )
        .into_response(),
    }
}

/// The id of a request: the caller's `X-Request-Id` when it is a short token, a fresh
/// one otherwise; echoed in the answer and on the request's log line.
const REQUEST_ID: &str = "x-request-id";

/// One log line and the metrics of every request: its route template (never the path as
/// sent, which may carry a lead's e-mail), the lead's short hash when the path names one,
/// status, latency in microseconds, request id. Error answers that are not JSON yet (the
/// framework's own rejections) become `{error, detail}`.
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    // The segment holding the lead: `/leads/{lead}…` (2) or the console's `/app/leads/{lead}…` (3).
    let at = if route.starts_with("/leads/{lead}") {
        Some(2)
    } else if route.starts_with("/app/leads/{lead}") {
        Some(3)
    } else {
        None
    };
    let lead = at
        .and_then(|n| req.uri().path().split('/').nth(n))
        .map(|raw| {
            // The key as stored (trimmed, folded): one lead, one hash, however it is sent.
            let raw = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            leadscore_service::metrics::logged(&app.service.key(&raw))
        });
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
    let started = std::time::Instant::now();
    let mut r = error::as_json(next.run(req).await).await;
    let elapsed = started.elapsed();
    let status = r.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert(REQUEST_ID, v);
    }
    metrics::counter!(
        leadscore_service::metrics::HTTP_REQUESTS,
        "route" => route.clone(),
        "method" => method.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(leadscore_service::metrics::HTTP_DURATION, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(
        request_id = id,
        %method,
        route,
        lead,
        status,
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    r
}

/// The client address of a request, if known.
pub(crate) fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ClientIp>().map(|c| c.0).or_else(|| {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// The body of a request that writes, once its signature (`X-Leadscore-Signature` over
/// timestamp and body, with any configured webhook secret) verifies; `401` otherwise.
async fn signed_body(
    app: &App,
    request: &Signed,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let body = read_body(body, limit).await?;
    let path_and_query = request
        .uri
        .path_and_query()
        .map_or(request.uri.path(), |p| p.as_str());
    // Only `POST /events` takes a body-only (v1) signature: replaying one repeats ids.
    let v1 = request.method == axum::http::Method::POST && request.uri.path() == "/events";
    auth::verify(
        &app.config.security.webhook_secrets,
        &request.headers,
        auth::Target {
            method: request.method.as_str(),
            path_and_query,
        },
        &body,
        v1,
        app.service.now().div_euclid(1_000_000),
    )
    .map_err(|r| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", r))?;
    Ok(body)
}

/// What a signature is checked against: the method, the URI as sent and the headers.
struct Signed {
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Signed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Signed, Self::Rejection> {
        Ok(Signed {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

/// The request's media type, lower-cased (empty when not given).
pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
            format!("the body is larger than {limit} bytes"),
        )
    })
}

#[utoipa::path(post, path = "/events", tag = "events", responses((status = 200, description = "what was stored: accepted, duplicates, each lead's scores"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 413, description = "body or event too large", body = ErrorBody), (status = 503, description = "store unavailable: retry", body = ErrorBody)), security(("signature" = [])))]
async fn post_events(
    State(app): State<Arc<App>>,
    signed: Signed,
    body: Body,
) -> Result<Response, ApiError> {
    use leadscore_service::metrics::events as counted;
    // A batch refused before it is scored counts its events (one when they cannot be told).
    let body = signed_body(&app, &signed, body, MAX_EVENTS_BODY)
        .await
        .inspect_err(|_| counted("refused", 1))?;
    let now = app.service.now();
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid JSON", e.to_string()))
        .inspect_err(|_| counted("refused", 1))?;
    let events = parse_events(&value, now).inspect_err(|_| {
        let sent = match &value {
            Value::Array(a) => a.len(),
            Value::Object(o) => o
                .get("events")
                .and_then(Value::as_array)
                .map_or(1, Vec::len),
            _ => 1,
        };
        counted("refused", sent)
    })?;
    let outcome = app.service.ingest(events).await?;
    Ok(Json(outcome).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RescoreParams {
    limit: Option<usize>,
    after: Option<String>,
}

/// `POST /admin/rescore`: one page of rescoring after a rules change (signed like
/// `POST /events`, as it writes). The answer's `next` is the `after` of the next call.
#[utoipa::path(post, path = "/admin/rescore", tag = "admin", responses((status = 200, description = "one page of rescoring: rescored, changed_grade, current, next"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("signature" = [])))]
async fn post_rescore(
    State(app): State<Arc<App>>,
    signed: Signed,
    body: Body,
) -> Result<Response, ApiError> {
    let body = signed_body(&app, &signed, body, 4096).await?;
    let p: RescoreParams = if body.iter().all(u8::is_ascii_whitespace) {
        RescoreParams::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid JSON", e.to_string()))?
    };
    let (limit, after) = page(p.limit, 200, p.after.as_deref(), "invalid request")?;
    let done = app.service.rescore(limit, after).await?;
    Ok(Json(serde_json::json!({
        "rescored": done.rescored,
        "changed_grade": done.changed_grade,
        "current": done.current,
        "next": done.next.map(|(score, lead)| format!("{score}:{lead}")),
    }))
    .into_response())
}

/// `GET /metrics`: the process's instruments in Prometheus text format, for a metrics
/// token or any read token (open only when neither is configured).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("metrics_token" = []), ("read_token" = [])))]
async fn get_metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scraper = &app.config.security.metrics_tokens;
    let as_scraper = !scraper.is_empty() && auth::bearer(scraper, &headers).is_ok();
    if !as_scraper {
        let readers = !app.config.security.read_tokens.is_empty()
            || app.config.readers.values().any(|r| r.token.is_some());
        if readers {
            require_reader(&app, &headers)?;
        } else if let Err(r) = auth::bearer(scraper, &headers) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", r));
        }
    }
    let text = leadscore_service::metrics::render().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics unavailable",
            "another metrics recorder was installed in this process",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "status, ruleset and program hash")))]
async fn healthz(State(app): State<Arc<App>>) -> Response {
    let rules = app.service.rules();
    Json(json!({"status": "ok", "ruleset": rules.program.name, "program": rules.hash}))
        .into_response()
}
