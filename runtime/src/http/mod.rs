//! The HTTP API of DESIGN.md: one axum router, served by `leadscore serve` and by the
//! Lambda entry. Reference: docs/http-api.md.

pub mod auth;
mod forms;
pub mod hooks;
pub mod listen;
mod track;

/// The deployment configuration lives at the crate root (offline commands read it too).
pub use crate::config::{self, Config};
use crate::service::{parse_events, LeadView, MergeError, Retried, Service, ServiceError};
use crate::store::{ListQuery, StoreError};
use crate::time;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

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
    limiter: forms::Limiter,
    /// The tracking beacon's own rate per client (page views come more often than forms).
    track_limiter: forms::Limiter,
    /// Public inputs naming one lead (form posts, identified beacons), whatever their
    /// addresses: fresh addresses and visitor ids cannot pump a lead.
    lead_limiter: forms::LeadLimiter,
}

impl App {
    pub fn new(service: Arc<Service>, config: Config) -> Arc<App> {
        let limiter = forms::limiter(config.forms.rate_per_minute);
        let track_limiter = forms::limiter(config.track.rate_per_minute);
        let lead_limiter = forms::lead_limiter(config.forms.rate_per_lead_per_hour);
        Arc::new(App {
            service,
            config,
            limiter,
            track_limiter,
            lead_limiter,
        })
    }
}

/// An error answer: `{"error": …, "detail": …}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": self.error, "detail": self.detail})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<crate::service::Invalid> for ApiError {
    fn from(e: crate::service::Invalid) -> ApiError {
        if e.too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "event too large",
                e.to_string(),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid event", e.to_string())
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::Corrupt { .. } => {
                tracing::error!(error = %e, "stored data unreadable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data unreadable",
                    e.to_string(),
                )
            }
            ServiceError::Engine { .. }
            | ServiceError::Hops { .. }
            | ServiceError::Invariant(_) => {
                tracing::error!(error = %e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                    e.to_string(),
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict | StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "answered 503");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable",
                    format!("{e}; nothing was lost, retry the request"),
                )
            }
            StoreError::TooLarge(reason) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "lead too large", reason)
            }
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "stored data unreadable");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored data unreadable",
                    e.to_string(),
                )
            }
            StoreError::Backend(_) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store failure",
                    e.to_string(),
                )
            }
        }
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
        .route("/leads", get(list_leads))
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
        .merge(public)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not found",
                "no such endpoint; see docs/http-api.md",
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), deadline))
        .layer(middleware::from_fn(log_request))
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

/// One log line per request.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = r.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
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

async fn post_events(
    State(app): State<Arc<App>>,
    signed: Signed,
    body: Body,
) -> Result<Response, ApiError> {
    let body = signed_body(&app, &signed, body, MAX_EVENTS_BODY).await?;
    let now = app.service.now();
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid JSON", e.to_string()))?;
    let events = parse_events(&value, now)?;
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

/// `GET /leads/{lead}/export`: everything stored about the lead (read token).
async fn export_lead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(lead): Path<String>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let key = app.service.key(&lead);
    match app.service.export(&key).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(no_such_lead(&key)),
    }
}

fn no_such_lead(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such lead",
        format!("nothing is stored for lead `{key}`"),
    )
}

/// A lead's JSON; for a key merged into another lead, `308` to that lead with the pointer
/// as the body; else `404 no such lead`.
fn found(key: &str, view: LeadView) -> Result<Response, ApiError> {
    match view {
        LeadView::Found(v) => Ok(Json(v).into_response()),
        LeadView::Merged(into) => {
            let location = format!("/leads/{}", path_segment(&into));
            let mut r = (
                StatusCode::PERMANENT_REDIRECT,
                Json(json!({"lead": key, "merged_into": into, "location": location})),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
        LeadView::Missing => Err(no_such_lead(key)),
    }
}

/// A key as one path segment (percent-encoded where a URL needs it).
fn path_segment(key: &str) -> String {
    /// RFC 3986's unreserved characters and the `@` and `+` of e-mail keys stay as they are.
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'@')
        .remove(b'+');
    percent_encoding::utf8_percent_encode(key, SEGMENT).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeParams {
    /// The key merged into the lead in the path.
    lead: String,
}

/// `POST /leads/{lead}/merge`: merges the lead named in the body into the one in the path
/// (signed like `POST /events`, as it writes).
async fn merge_lead(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(lead): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = signed_body(&app, &signed, body, 4096).await?;
    let p: MergeParams = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid JSON",
            format!("expected {{\"lead\": \"<key to merge in>\"}}: {e}"),
        )
    })?;
    if p.lead.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid request",
            "lead: is empty",
        ));
    }
    let m = app
        .service
        .merge(&lead, &p.lead)
        .await
        .map_err(|e| match e {
            MergeError::Same(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid request", e.to_string())
            }
            MergeError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "no such lead", e.to_string())
            }
            MergeError::MergedElsewhere(..) => {
                ApiError::new(StatusCode::CONFLICT, "merged elsewhere", e.to_string())
            }
            MergeError::Store(e) => e.into(),
        })?;
    let (grade, score, scores, tags, transitions) = match m.view {
        Some(v) => (
            Some(v.grade),
            Some(v.score),
            Some(v.scores),
            Some(v.tags),
            Some(v.transitions),
        ),
        None => (None, None, None, None, None),
    };
    Ok(Json(MergeAnswer {
        grade,
        lead: m.lead,
        merged: m.merged,
        moved: Moved {
            events: m.events,
            transitions: m.transitions,
        },
        score,
        scores,
        tags,
        transitions,
    })
    .into_response())
}

/// `POST /leads/{lead}/merge`'s answer (keys sorted, as every answer's).
#[derive(serde::Serialize)]
struct MergeAnswer {
    grade: Option<String>,
    lead: String,
    merged: String,
    moved: Moved,
    score: Option<i64>,
    scores: Option<crate::view::Scores>,
    tags: Option<Vec<String>>,
    transitions: Option<Vec<crate::view::TransitionView>>,
}

#[derive(serde::Serialize)]
struct Moved {
    events: usize,
    transitions: usize,
}

/// `DELETE /leads/{lead}`: erases the lead (signed like `POST /events`, as it writes).
/// Idempotent: erasing a lead that is not stored answers the same shape with nothing
/// removed.
async fn delete_lead(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(lead): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    signed_body(&app, &signed, body, 4096).await?;
    let key = app.service.key(&lead);
    let (lead, e) = app.service.erase(&key).await?;
    Ok(Json(serde_json::json!({
        "lead": lead,
        "erased": {"state": e.state, "events": e.events, "transitions": e.transitions,
                   "links": e.links},
    }))
    .into_response())
}

fn require_reader(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    auth::bearer(&app.config.security.read_tokens, headers)
        .map_err(|r| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", r))
}

async fn get_lead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(lead): Path<String>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let key = app.service.key(&lead);
    found(&key, app.service.lead(&key).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    grade: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// A page cursor: `<score>:<lead>`.
fn parse_cursor(s: &str) -> Option<(i64, String)> {
    let (score, lead) = s.split_once(':')?;
    Some((score.parse().ok()?, lead.to_string()))
}

/// A page's size (1..=MAX_PAGE, `default` when absent) and where it starts; a bad one is
/// a 400 with `error`.
fn page(
    limit: Option<usize>,
    default: usize,
    after: Option<&str>,
    error: &'static str,
) -> Result<(usize, Option<(i64, String)>), ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            error,
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let after = match after {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                error,
                "after must be a cursor from a previous page's `next`",
            )
        })?),
    };
    Ok((limit, after))
}

async fn list_leads(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let Query(p) = params
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid query", e.body_text()))?;
    let (limit, after) = page(p.limit, 50, p.after.as_deref(), "invalid query")?;
    let query = ListQuery {
        grade: p.grade,
        limit,
        after,
    };
    let rows = app.service.list(&query).await?;
    let next = (rows.len() == limit)
        .then(|| {
            rows.last()
                .map(|r| format!("{}:{}", r.summary.score, r.lead))
        })
        .flatten();
    let leads: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "lead": r.lead,
                "score": r.summary.score,
                "scores": r.summary.scores,
                "grade": r.summary.grade,
                "updated_at": time::format(r.summary.updated_at),
                "program": r.summary.program,
                "ruleset": r.summary.ruleset,
            })
        })
        .collect();
    Ok(Json(json!({"leads": leads, "next": next})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteParams {
    status: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// A notification as listings show it.
fn note_json(o: &crate::store::Outboxed) -> Value {
    let b = &o.note.body;
    json!({
        "lead": o.note.lead,
        "id": o.note.id,
        "channel": o.note.channel,
        "status": o.status.name(),
        "attempts": o.attempts,
        // pending: when it is due; delivered, failed: when that happened.
        "at": time::format(o.next_at),
        "created_at": time::format(o.note.created_at),
        "last_error": o.last_error,
        "rule": b["rule"],
        "transition": b["transition"],
        "crossing": b["crossing"],
    })
}

/// `GET /notifications?status=failed`: the outbox by status (read token); `failed` are the
/// dead letters.
async fn list_notifications(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Result<Query<NoteParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::store::NoteStatus;
    require_reader(&app, &headers)?;
    let Query(p) = params
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid query", e.body_text()))?;
    let status = match p.status.as_deref() {
        None => NoteStatus::Failed,
        Some(s) => NoteStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid query",
                "status must be pending, delivered or failed",
            )
        })?,
    };
    let (limit, after) = page(p.limit, 50, p.after.as_deref(), "invalid query")?;
    let rows = app.service.notifications(status, limit, after).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|o| format!("{}:{}", o.next_at, o.note.id)))
        .flatten();
    let list: Vec<Value> = rows.iter().map(note_json).collect();
    Ok(Json(json!({"notifications": list, "next": next})).into_response())
}

/// `POST /leads/{lead}/notifications/{id}/retry`: a dead letter back to the outbox (signed).
async fn retry_notification(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path((lead, id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    signed_body(&app, &signed, body, 4096).await?;
    let key = app.service.key(&lead);
    match app.service.retry_notification(&key, &id).await? {
        Retried::Missing => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such notification",
            format!("lead `{key}` has no notification `{id}`"),
        )),
        Retried::Requeued => {
            Ok(Json(json!({"lead": key, "id": id, "status": "pending"})).into_response())
        }
        Retried::NotFailed(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not failed",
            format!(
                "the notification is {}; only failed ones are retried",
                status.name()
            ),
        )),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let rules = app.service.rules();
    Json(json!({"status": "ok", "ruleset": rules.program.name, "program": rules.hash}))
        .into_response()
}
