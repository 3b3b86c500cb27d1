//! The tracking beacon: page views and custom events from browsers, under an anonymous
//! visitor id until the visitor becomes a lead.
//!
//! - `POST /track` (what the snippet's `navigator.sendBeacon` sends, as `text/plain` or
//!   `application/json`): `{"v": VISITOR, "events": [{"type", "id"?, "props"?}], "email"?}`.
//!   With `email` the visitor is identified: it becomes that lead (stitching).
//! - `GET /track?v=VISITOR&t=TYPE&url=…` answers a 1×1 GIF: the same for pages without
//!   JavaScript (`<img src>`). `url`, `path`, `title`, `ref` (the referrer), `page` and the
//!   `utm_*` parameters become props, as does any `p.NAME`.
//! - `GET /t.js`: the snippet (docs/website.md).
//!
//! Public, so bounded like forms: origins, size, a rate per client address, and the event
//! types a browser may send. Bots (by user agent) and browsers asking not to be tracked
//! (`DNT: 1`, `Sec-GPC: 1`) are answered as if accepted and nothing is stored. The answer
//! never says which lead a visitor is: anyone can make up a visitor id.

use super::forms::{check_origin, rate_limit};
use super::{read_body, ApiError, App};
use crate::openapi::ErrorBody;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use leadscore_service::Incoming;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The form field carrying the snippet's visitor id (fields starting with `_` are never
/// attributes).
pub(crate) const VISITOR_FIELD: &str = "_visitor";
/// Events one beacon may carry.
const MAX_EVENTS: usize = 10;
/// Props one event may carry, and the longest text value (a URL).
const MAX_PROPS: usize = 32;
const MAX_TEXT: usize = 2048;
/// The page's props taken from `GET /track` parameters (`ref` is the referrer).
const PIXEL_PROPS: [&str; 10] = [
    "url",
    "path",
    "title",
    "page",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
];

/// The snippet, served at `/t.js`.
const SNIPPET: &str = include_str!("t.js");
/// A transparent 1×1 GIF.
const GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// A visitor id (and a client's event id): 8 to 64 letters, digits, `-` or `_`.
pub(crate) fn valid_visitor(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid beacon", detail)
}

fn off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not configured",
        "the tracking beacon is off ([track] enabled = false)",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Beacon {
    v: String,
    events: Vec<BeaconEvent>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeaconEvent {
    #[serde(rename = "type")]
    event_type: String,
    id: Option<String>,
    #[serde(default)]
    props: Map<String, Value>,
}

/// Whether to drop a request unstored (and answer as if accepted): a bot, or a browser
/// asking not to be tracked.
fn dropped(app: &App, headers: &HeaderMap) -> bool {
    let says = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1")
    };
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    says("dnt") || says("sec-gpc") || app.config.track.is_bot(agent)
}

/// The first checks every beacon passes: on, origin, rate.
fn admit(app: &App, req: &Request) -> Result<(), ApiError> {
    if !app.config.track.enabled {
        return Err(off());
    }
    check_origin(app, req.headers())?;
    rate_limit(
        &app.track_limiter,
        req,
        app.config.track.rate_per_minute,
        "beacons",
    )
}

#[utoipa::path(post, path = "/track", tag = "capture", responses((status = 204, description = "taken"), (status = 400, description = "invalid request", body = ErrorBody), (status = 429, description = "too many beacons", body = ErrorBody)))]
pub(crate) async fn post_track(
    State(app): State<Arc<App>>,
    req: Request,
) -> Result<Response, ApiError> {
    admit(&app, &req)?;
    let ctype = super::content_type(req.headers());
    if !(ctype.is_empty()
        || ctype.starts_with("text/plain")
        || ctype.starts_with("application/json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported beacon encoding",
            "send the beacon's JSON as text/plain (what sendBeacon sends) or application/json",
        ));
    }
    let skip = dropped(&app, req.headers());
    let body = read_body(req.into_body(), app.config.track.max_bytes).await?;
    let beacon: Beacon =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let events = beacon
        .events
        .into_iter()
        .map(|e| (e.event_type, e.id, e.props))
        .collect();
    accept(&app, skip, &beacon.v, events, beacon.email.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /track`: one event from query parameters; answers the GIF.
#[utoipa::path(get, path = "/track", tag = "capture", responses((status = 200, description = "a 1x1 GIF", content_type = "image/gif")))]
pub(crate) async fn pixel(
    State(app): State<Arc<App>>,
    Query(q): Query<BTreeMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    admit(&app, &req)?;
    let skip = dropped(&app, req.headers());
    let visitor = q.get("v").cloned().unwrap_or_default();
    let event_type = q.get("t").cloned().unwrap_or_else(|| "page.viewed".into());
    let mut props = Map::new();
    for (k, v) in &q {
        let name = match k.as_str() {
            "ref" => "referrer",
            k if PIXEL_PROPS.contains(&k) => k,
            k => match k.strip_prefix("p.") {
                Some(n) => n,
                None => continue,
            },
        };
        props.insert(name.to_string(), Value::String(v.clone()));
    }
    let id = q.get("id").cloned();
    accept(&app, skip, &visitor, vec![(event_type, id, props)], None).await?;
    let mut r = (StatusCode::OK, GIF.to_vec()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Validates a beacon's events whole (any bad one: `400`, nothing stored) and stores them
/// for the visitor — or, with `email`, stitches the visitor to that lead.
async fn accept(
    app: &App,
    skip: bool,
    visitor: &str,
    events: Vec<(String, Option<String>, Map<String, Value>)>,
    email: Option<&str>,
) -> Result<(), ApiError> {
    if !valid_visitor(visitor) {
        return Err(bad(
            "v: a visitor id is 8 to 64 letters, digits, `-` or `_`",
        ));
    }
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(bad(format!("events: 1 to {MAX_EVENTS} per beacon")));
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(email) = email {
        if !app.config.track.identify {
            return Err(bad(
                "email: beacons do not name leads here ([track] identify = false); post a form with the visitor id",
            ));
        }
        super::forms::lead_rate(app, &app.service.key(email))?;
    }
    let now = app.service.now();
    let mut incoming = Vec::with_capacity(events.len());
    for (i, (event_type, id, props)) in events.into_iter().enumerate() {
        let at = |field: &str| format!("events[{i}].{field}");
        let folded = leadscore_runtime::text::fold(event_type.trim());
        if !app.config.track.accepts(&folded) {
            return Err(bad(format!(
                "{}: `{event_type}` is not taken from browsers (allowed: {}; see [track] events)",
                at("type"),
                app.config.track.events.join(", ")
            )));
        }
        let id = match id {
            Some(id) if valid_visitor(&id) => format!("web:{visitor}:{id}"),
            Some(_) => {
                return Err(bad(format!(
                    "{}: 8 to 64 letters, digits, `-` or `_`",
                    at("id")
                )))
            }
            None => format!("web:{}", uuid::Uuid::new_v4()),
        };
        if props.len() > MAX_PROPS {
            return Err(bad(format!("{}: more than {MAX_PROPS}", at("props"))));
        }
        for (k, v) in &props {
            let ok = k.len() <= 64
                && match v {
                    Value::String(s) => s.len() <= MAX_TEXT,
                    Value::Number(_) | Value::Bool(_) => true,
                    _ => false,
                };
            if !ok {
                return Err(bad(format!(
                    "{}.{k}: a prop is text (at most {MAX_TEXT} bytes), a number or a boolean",
                    at("props")
                )));
            }
        }
        let mut v = json!({
            "id": id,
            "lead": email.map_or_else(|| format!("visitor:{visitor}"), str::to_string),
            "type": folded,
            "at": time::format(now),
            "props": props,
            "source": "public",
        });
        if let Some(email) = email {
            v["attributes"] = json!({"email": email});
        }
        let event = Event::from_json(&v).map_err(|e| bad(format!("events[{i}]: {e}")))?;
        incoming.push(Incoming { event, json: v });
    }
    if skip {
        return Ok(());
    }
    if email.is_some() {
        app.service.stitch(visitor, incoming).await?;
    } else {
        app.service.track(visitor, incoming).await?;
    }
    Ok(())
}

/// `GET /t.js`: the snippet.
#[utoipa::path(get, path = "/t.js", tag = "capture", responses((status = 200, description = "the tracking snippet", content_type = "application/javascript")))]
pub(crate) async fn snippet(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    if !app.config.track.enabled {
        return Err(off());
    }
    let mut r = SNIPPET.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(r)
}
