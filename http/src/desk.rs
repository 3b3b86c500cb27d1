//! The sales desk's endpoints (docs/desk.md): work queues (`GET /leads` with the desk's
//! filters, `GET /views/{name}`), a lead's score history, follow-ups
//! (`POST /leads/{lead}/followups`), companies and likely duplicates.

use super::leads::{no_such_lead, page, require_reader};
use super::*;
use crate::openapi::ErrorBody;
use leadscore_service::{Queue, QueuePage};

/// A queue's rows and the cursor of the next page (`next`), as `GET /leads` answers.
pub(crate) fn queue_page(page: QueuePage) -> Value {
    let next = page.next.map(|(k, lead)| format!("{k}:{lead}"));
    let rows = page.rows;
    let leads: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let s = r.summary;
            json!({
                "lead": r.lead,
                "score": s.score,
                "scores": s.scores,
                "grade": s.grade,
                "tags": s.tags,
                "owner": s.owner,
                "pool": s.pool,
                "company": s.company,
                "deadline": s.deadline.map(time::format),
                "created_at": s.created_at.map(time::format),
                "updated_at": time::format(s.updated_at),
                "program": s.program,
                "ruleset": s.ruleset,
            })
        })
        .collect();
    json!({"leads": leads, "next": next})
}

fn invalid_query(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid query", reason)
}

/// One page of a queue given as query pairs, `limit` and `after` among them.
async fn serve_queue(
    app: &App,
    pairs: &[(String, String)],
    reader: Option<&str>,
) -> Result<Value, ApiError> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| invalid_query("limit must be a whole number"))?,
        ),
        None => None,
    };
    let (limit, after) = page(limit, 50, get("after"), "invalid query")?;
    let mut q = Queue::parse(pairs, reader, app.service.now()).map_err(invalid_query)?;
    q.list.limit = limit;
    q.list.after = after;
    Ok(queue_page(app.service.queue_page(&q).await?))
}

/// `GET /leads`: a work queue (read token).
#[utoipa::path(get, path = "/leads", tag = "desk", params(("grade" = Option<String>, Query, description = "grades, comma-separated"), ("owner" = Option<String>, Query, description = "an owner's e-mail, or me"), ("pool" = Option<bool>, Query), ("tag" = Option<String>, Query), ("company" = Option<String>, Query), ("overdue" = Option<bool>, Query), ("rising" = Option<String>, Query, description = "P:D, points gained within a duration"), ("created_since" = Option<String>, Query), ("updated_since" = Option<String>, Query), ("sort" = Option<String>, Query, description = "score, updated or deadline"), ("limit" = Option<usize>, Query), ("after" = Option<String>, Query, description = "the previous page's next")), responses((status = 200, description = "leads and the next page's cursor"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn list_leads(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let reader = require_reader(&app, &headers)?;
    let pairs = Queue::pairs(uri.query().unwrap_or("")).map_err(invalid_query)?;
    Ok(Json(serve_queue(&app, &pairs, reader.as_deref()).await?).into_response())
}

/// `GET /views`: the configuration's named queues.
#[utoipa::path(get, path = "/views", tag = "desk", responses((status = 200, description = "the configuration's named queues"), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn list_views(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let views: Vec<Value> = app
        .config
        .views
        .iter()
        .map(|(name, v)| json!({"name": name, "query": v.query, "title": v.title}))
        .collect();
    Ok(Json(json!({ "views": views })).into_response())
}

/// `GET /views/{name}`: a named queue of the configuration, `me` being the reader
/// (`limit` and `after` from the request).
#[utoipa::path(get, path = "/views/{name}", tag = "desk", params(("name" = String, Path), ("limit" = Option<usize>, Query), ("after" = Option<String>, Query)), responses((status = 200, description = "one page of the view"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such view", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn get_view(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let reader = require_reader(&app, &headers)?;
    let Some(view) = app.config.views.get(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such view",
            format!("the configuration has no [views.{name}]"),
        ));
    };
    let mut pairs = Queue::pairs(&view.query)
        .map_err(|e| invalid_query(format!("[views.{name}] query: {e}")))?;
    pairs.retain(|(k, _)| k != "limit" && k != "after");
    for (k, v) in Queue::pairs(uri.query().unwrap_or("")).map_err(invalid_query)? {
        match k.as_str() {
            "limit" | "after" => pairs.push((k, v)),
            _ => {
                return Err(invalid_query(format!(
                    "a view takes only limit and after, not `{k}`"
                )))
            }
        }
    }
    let mut page = serve_queue(&app, &pairs, reader.as_deref()).await?;
    if let Some(o) = page.as_object_mut() {
        o.insert("view".into(), json!(name));
        o.insert("title".into(), json!(view.title));
    }
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    /// A duration back from now (`30d`) or an RFC 3339 instant; default 30 days.
    since: Option<String>,
}

/// `GET /leads/{lead}/history?since=30d`: the lead's score history (read token).
#[utoipa::path(get, path = "/leads/{lead}/history", tag = "desk", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)"), ("since" = Option<String>, Query, description = "a duration (30d) or an RFC 3339 instant")), responses((status = 200, description = "the lead's score history"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such lead", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn get_history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(lead): Path<String>,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let Query(p) = params.map_err(|e| invalid_query(e.body_text()))?;
    let now = app.service.now();
    let since = match p.since.as_deref() {
        None => now - 30 * 86_400_000_000,
        Some(v) => leadscore_service::since(v, now).ok_or_else(|| {
            invalid_query(format!(
                "since: `{v}` is not a duration like `30d`, `week`, `month` or an RFC 3339 instant"
            ))
        })?,
    };
    let key = app.service.key(&lead);
    let Some((lead, points)) = app.service.score_history(&key, since).await? else {
        return Err(no_such_lead(&key));
    };
    let points: Vec<Value> = points
        .into_iter()
        .map(|p| {
            json!({"at": time::format(p.at), "score": p.score, "scores": p.scores,
                   "grade": p.grade})
        })
        .collect();
    Ok(Json(json!({"lead": lead, "since": time::format(since), "points": points})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Followup {
    /// The idempotency key (a follow-up sent twice counts once).
    id: String,
    /// One of `[desk] followup_events`; default the first.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// When it happened (RFC 3339); default now.
    at: Option<String>,
    /// Who followed up (default: the lead's owner).
    owner: Option<String>,
    /// What was said, kept with the event.
    note: Option<String>,
}

/// `POST /leads/{lead}/followups` (signed like `POST /events`): a follow-up of the lead,
/// stored and scored as an event of a follow-up type.
#[utoipa::path(post, path = "/leads/{lead}/followups", tag = "desk", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)")), responses((status = 200, description = "the follow-up was recorded"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such lead", body = ErrorBody)), security(("signature" = [])))]
pub(crate) async fn post_followup(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(lead): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = signed_body(&app, &signed, body, 16 * 1024).await?;
    let f: Followup = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid JSON",
            format!("expected {{\"id\", \"type\"?, \"at\"?, \"owner\"?, \"note\"?}}: {e}"),
        )
    })?;
    let types = &app.config.desk.followup_events;
    let event_type = match f.event_type {
        Some(t) => t,
        None => types.first().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid request",
                "[desk] followup_events is empty: name the event's type",
            )
        })?,
    };
    if !types.iter().any(|t| t.eq_ignore_ascii_case(&event_type)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid request",
            format!(
                "type: `{event_type}` is not a follow-up ([desk] followup_events: {})",
                types.join(", ")
            ),
        ));
    }
    let mut props = serde_json::Map::new();
    if let Some(o) = f.owner {
        props.insert("owner".into(), json!(o));
    }
    if let Some(n) = f.note {
        props.insert("note".into(), json!(n));
    }
    let at = f.at.unwrap_or_else(|| time::format(app.service.now()));
    let event = json!({"id": f.id, "lead": lead, "type": event_type, "at": at, "props": props});
    let events = parse_events(&event, app.service.now())?;
    let outcome = app.service.ingest(events).await?;
    Ok(Json(outcome).into_response())
}

/// `GET /companies/{domain}`: the company's leads with their owners, its best grade and
/// total score (read token).
#[utoipa::path(get, path = "/companies/{domain}", tag = "desk", params(("domain" = String, Path)), responses((status = 200, description = "the company's leads, owners, best grade and total"), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such company", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn get_company(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let c = app.service.company(&domain).await?;
    if c.leads.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such company",
            format!("no stored lead is of `{}`", c.domain),
        ));
    }
    Ok(Json(c).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DuplicateParams {
    limit: Option<usize>,
}

/// `GET /duplicates`: likely pairs of one person under two keys, for
/// `POST /leads/{lead}/merge` (read token).
#[utoipa::path(get, path = "/duplicates", tag = "desk", params(("limit" = Option<usize>, Query)), responses((status = 200, description = "likely pairs of one person under two keys"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn get_duplicates(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Result<Query<DuplicateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let Query(p) = params.map_err(|e| invalid_query(e.body_text()))?;
    let (limit, _) = page(p.limit, 100, None, "invalid query")?;
    let pairs = app.service.duplicates(limit).await?;
    let pairs: Vec<Value> = pairs
        .into_iter()
        .map(|d| {
            let merge = format!("/leads/{}/merge", super::leads::path_segment(&d.leads[0]));
            json!({"leads": d.leads, "reasons": d.reasons, "merge": merge})
        })
        .collect();
    Ok(Json(json!({ "duplicates": pairs })).into_response())
}
