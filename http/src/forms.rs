//! `POST /forms/{form}`: what a website's `<form>` posts, as urlencoded, multipart or JSON.
//! Public, so bounded: origin allow-list, size and field limits, a rate per client
//! address and a honeypot field.

use super::{client_ip, read_body, ApiError, App};
use crate::openapi::ErrorBody;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use leadscore_service::Incoming;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

pub(crate) type Limiter = Option<DefaultKeyedRateLimiter<IpAddr>>;

pub(crate) fn limiter(per_minute: u32) -> Limiter {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

pub(crate) type LeadLimiter = Option<DefaultKeyedRateLimiter<String>>;

pub(crate) fn lead_limiter(per_hour: u32) -> LeadLimiter {
    NonZeroU32::new(per_hour).map(|n| RateLimiter::keyed(Quota::per_hour(n)))
}

/// `429` once public inputs have named this (normalised) lead `[forms]
/// rate_per_lead_per_hour` times in the hour, from whatever addresses.
pub(crate) fn lead_rate(app: &App, lead: &str) -> Result<(), ApiError> {
    if let Some(l) = &app.lead_limiter {
        if l.check_key(&lead.to_string()).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
                format!(
                    "at most {} public posts an hour for one lead",
                    app.config.forms.rate_per_lead_per_hour
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a browser request from an origin not on `[forms] allowed_origins` (forms and
/// the tracking beacon come from the same website). The `Origin` header is checked, or
/// for requests without one (an image) the origin of the `Referer`. Where an allow-list
/// is configured, a request naming neither is refused: browsers name the page a form or
/// beacon comes from, so such a request is a script's, and a script can send anything.
pub(crate) fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let allowed = &app.config.forms.allowed_origins;
    if allowed.is_empty() {
        return Ok(());
    }
    let text = |h| headers.get(h).and_then(|o: &HeaderValue| o.to_str().ok());
    let origin = match text(header::ORIGIN) {
        Some(o) => o.to_string(),
        None => match text(header::REFERER).and_then(origin_of) {
            Some(o) => o,
            None => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "origin not allowed",
                    "the request names no page (no Origin or Referer header) and [forms] allowed_origins is set",
                ))
            }
        },
    };
    if allowed.contains(&origin) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin not allowed",
            format!("{origin} may not post here"),
        ))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// `429` once a client address has used its requests for the minute.
pub(crate) fn rate_limit(
    limiter: &Limiter,
    req: &Request,
    per_minute: u32,
    what: &str,
) -> Result<(), ApiError> {
    if let (Some(l), Some(ip)) = (limiter, client_ip(req)) {
        if l.check_key(&ip).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
                format!("at most {per_minute} {what} a minute from one address"),
            ));
        }
    }
    Ok(())
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid form", detail)
}

/// The posted fields, in order, text only (file inputs are ignored).
async fn fields(app: &App, req: Request) -> Result<Vec<(String, String)>, ApiError> {
    let limits = &app.config.forms;
    let ctype = super::content_type(req.headers());
    let too_many = || bad(format!("more than {} fields", limits.max_fields));
    let out: Vec<(String, String)> = if ctype.starts_with("application/x-www-form-urlencoded") {
        let body = read_body(req.into_body(), limits.max_bytes).await?;
        serde_urlencoded::from_bytes(&body).map_err(|e| bad(e.to_string()))?
    } else if ctype.starts_with("multipart/form-data") {
        let (parts, body) = req.into_parts();
        let body = read_body(body, limits.max_bytes).await?;
        let req = Request::from_parts(parts, axum::body::Body::from(body));
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        let mut out = Vec::new();
        while let Some(field) = mp.next_field().await.map_err(|e| bad(e.body_text()))? {
            if out.len() >= limits.max_fields {
                return Err(too_many());
            }
            let name = field.name().unwrap_or("").to_string();
            if field.file_name().is_some() {
                continue;
            }
            let value = field.text().await.map_err(|e| bad(e.body_text()))?;
            out.push((name, value));
        }
        out
    } else if ctype.starts_with("application/json") {
        let body = read_body(req.into_body(), limits.max_bytes).await?;
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(bad("a JSON form must be an object of fields"));
        };
        obj.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                Value::Null => Ok((k, String::new())),
                _ => Err(bad(format!(
                    "field `{k}` must be text, a number or a boolean"
                ))),
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported form encoding",
            "send application/x-www-form-urlencoded, multipart/form-data or application/json",
        ));
    };
    if out.len() > limits.max_fields {
        return Err(too_many());
    }
    Ok(out)
}

#[utoipa::path(post, path = "/forms/{form}", tag = "capture", params(("form" = String, Path)), responses((status = 200, description = "the form was taken (or dropped as spam)"), (status = 303, description = "redirect to the form's thank-you page"), (status = 400, description = "invalid request", body = ErrorBody), (status = 429, description = "too many posts", body = ErrorBody)))]
pub(crate) async fn post_form(
    State(app): State<Arc<App>>,
    Path(form): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let limits = &app.config.forms;
    check_origin(app.as_ref(), req.headers())?;
    rate_limit(&app.limiter, &req, limits.rate_per_minute, "form posts")?;
    let settings = app.config.form.get(&form).cloned().unwrap_or_default();
    let posted = fields(&app, req).await?;
    let done = |accepted: Value| -> Response {
        match &settings.redirect {
            Some(url) => Redirect::to(url).into_response(),
            None => Json(accepted).into_response(),
        }
    };
    if posted
        .iter()
        .any(|(k, v)| *k == limits.honeypot && !v.trim().is_empty())
    {
        tracing::info!(form, "honeypot filled: post dropped");
        return Ok(done(json!({"accepted": 0, "duplicates": [], "leads": []})));
    }
    // The tracking snippet's visitor id: the visitor's page views join the lead.
    let visitor = posted
        .iter()
        .find(|(k, _)| k == super::track::VISITOR_FIELD)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| super::track::valid_visitor(v));
    let mut attributes = Map::new();
    for (k, v) in &posted {
        if k.starts_with('_') || *k == limits.honeypot || v.trim().is_empty() {
            continue;
        }
        attributes.insert(settings.attribute(k).to_string(), Value::String(v.clone()));
    }
    let lead = attributes
        .get(&limits.lead_field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            bad(format!(
                "field `{}` is required: it names the lead",
                limits.lead_field
            ))
        })?;
    // What a public form may set: the fields it declares (or the rules read), never a
    // protected one. The rest is left out and named in the answer.
    let key = app.service.key(&lead);
    lead_rate(&app, &key)?;
    let rules = app.service.rules_for(&key);
    let program = &rules.program;
    let read = |a: &str| program.fields.iter().any(|f| f == a);
    let mut ignored = Vec::new();
    attributes.retain(|name, _| {
        let keep = *name == limits.lead_field
            || (!program.is_protected(name) && settings.allows(name, read));
        if !keep {
            ignored.push(Value::String(name.clone()));
        }
        keep
    });
    if !ignored.is_empty() {
        tracing::info!(form, ignored = ?ignored, "form fields left out");
    }
    let now = app.service.now();
    let v = json!({
        "id": format!("form:{}", uuid::Uuid::new_v4()),
        "lead": lead,
        "type": "form.submitted",
        "at": time::format(now),
        "attributes": attributes,
        "props": {"form": form},
        "source": "public",
    });
    let event = Event::from_json(&v).map_err(|e| bad(e.to_string()))?;
    let events = vec![Incoming { event, json: v }];
    let outcome = match visitor {
        Some(visitor) => app.service.stitch(&visitor, events).await?,
        None => app.service.ingest(events).await?,
    };
    let mut answer = outcome.to_json();
    answer["ignored"] = Value::Array(ignored);
    Ok(done(answer))
}
