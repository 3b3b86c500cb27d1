//! The notification endpoints: the outbox by status, and a dead letter retried.

use super::*;
use crate::openapi::ErrorBody;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteParams {
    status: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// A notification as listings show it.
fn note_json(o: &leadscore_store::Outboxed) -> Value {
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
#[utoipa::path(get, path = "/notifications", tag = "notifications", params(("status" = Option<String>, Query, description = "pending, delivered or failed"), ("limit" = Option<usize>, Query), ("after" = Option<String>, Query)), responses((status = 200, description = "notifications by status"), (status = 400, description = "invalid request", body = ErrorBody), (status = 401, description = "missing or wrong credentials", body = ErrorBody)), security(("read_token" = [])))]
pub(crate) async fn list_notifications(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Result<Query<NoteParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use leadscore_store::NoteStatus;
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
#[utoipa::path(post, path = "/leads/{lead}/notifications/{id}/retry", tag = "notifications", params(("lead" = String, Path, description = "the lead's key (an e-mail address, percent-encoded)"), ("id" = String, Path)), responses((status = 200, description = "the dead letter is pending again"), (status = 401, description = "missing or wrong credentials", body = ErrorBody), (status = 404, description = "no such notification", body = ErrorBody)), security(("signature" = [])))]
pub(crate) async fn retry_notification(
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
