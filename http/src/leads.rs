//! The lead endpoints: read one, list by score, export, erase and merge.

use super::*;
use crate::openapi::ErrorBody;

pub(crate) fn no_such_lead(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such lead",
        format!("nothing is stored for lead `{key}`"),
    )
}

/// A lead's JSON; for a key merged into another lead, `308` to that lead with the pointer
/// as the body; else `404 no such lead`.
pub(crate) fn found(key: &str, view: LeadView) -> Result<Response, ApiError> {
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
pub(crate) fn path_segment(key: &str) -> String {
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
pub(crate) struct MergeParams {
    /// The key merged into the lead in the path.
    lead: String,
}

/// `POST /leads/{lead}/merge`: merges the lead named in the body into the one in the path
/// (signed like `POST /events`, as it writes).
#[utoipa::path(post, path = "/leads/{lead}/merge", tag = "leads", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)")), responses((status = 200, description = "merged"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 409, description = "the merge would form a cycle", body = ErrorBody)), security(("signature" = [])))]
pub(crate) async fn merge_lead(
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
    scores: Option<leadscore_runtime::view::Scores>,
    tags: Option<Vec<String>>,
    transitions: Option<Vec<leadscore_runtime::view::TransitionView>>,
}

#[derive(serde::Serialize)]
struct Moved {
    events: usize,
    transitions: usize,
}

/// `DELETE /leads/{lead}`: erases the lead (signed like `POST /events`, as it writes).
/// Idempotent: erasing a lead that is not stored answers the same shape with nothing
/// removed.
#[utoipa::path(delete, path = "/leads/{lead}", tag = "leads", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)")), responses((status = 200, description = "erased (idempotent)"), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("signature" = [])))]
pub(crate) async fn delete_lead(
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

/// A read's token: the shared read tokens, or a reader's own (`[readers]`), whose owner
/// e-mail is returned (`me` in a queue).
pub(crate) fn require_reader(app: &App, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let readers: Vec<(&str, &str)> = app
        .config
        .readers
        .values()
        .filter_map(|r| Some((r.token.as_deref()?, r.owner.as_str())))
        .collect();
    auth::reader(&app.config.security.read_tokens, &readers, headers)
        .map_err(|r| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", r))
}

#[utoipa::path(get, path = "/leads/{lead}", tag = "leads", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)")), responses((status = 200, description = "scores, grade, tags, explanation, transitions, desk"), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such lead", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn get_lead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(lead): Path<String>,
) -> Result<Response, ApiError> {
    require_reader(&app, &headers)?;
    let key = app.service.key(&lead);
    found(&key, app.service.lead(&key).await?)
}

/// A page cursor: `<sort key>:<lead>`.
fn parse_cursor(s: &str) -> Option<(i64, String)> {
    let (score, lead) = s.split_once(':')?;
    Some((score.parse().ok()?, lead.to_string()))
}

/// A page's size (1..=MAX_PAGE, `default` when absent) and where it starts; a bad one is
/// a 400 with `error`.
pub(crate) fn page(
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

/// `GET /leads/{lead}/export`: everything stored about the lead (read token).
#[utoipa::path(get, path = "/leads/{lead}/export", tag = "leads", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)")), responses((status = 200, description = "everything stored about the lead"), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such lead", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn export_lead(
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
