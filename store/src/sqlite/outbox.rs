//! The outbox: due notifications, claims, outcomes, dead letters and requeues.

use super::*;

#[async_trait::async_trait]
impl Outbox for SqliteStore {
    async fn due_notes(&self, now: Micros, limit: usize) -> Result<Vec<Outboxed>, StoreError> {
        self.read(move |c| {
            let mut q = c
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND next_at <= ?1
                     ORDER BY next_at, id LIMIT ?2"
                ))
                .map_err(sql_error)?;
            let rows = q
                .query_map(params![now, limit as i64], outboxed)
                .map_err(sql_error)?;
            notes_of(rows)
        })
        .await
    }

    async fn note(&self, lead: &str, id: &str) -> Result<Option<Outboxed>, StoreError> {
        let (lead, id) = (lead.to_string(), id.to_string());
        self.read(move |c| {
            let mut q = c
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE lead = ?1 AND id = ?2"
                ))
                .map_err(sql_error)?;
            let rows = q.query_map([&lead, &id], outboxed).map_err(sql_error)?;
            Ok(notes_of(rows)?.pop())
        })
        .await
    }

    async fn claim_note(
        &self,
        lead: &str,
        id: &str,
        attempts: u32,
        now: Micros,
        until: Micros,
    ) -> Result<bool, StoreError> {
        let (lead, id) = (lead.to_string(), id.to_string());
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_at = ?5
                     WHERE lead = ?1 AND id = ?2 AND status = 'pending' AND attempts = ?3
                       AND next_at <= ?4",
                    params![lead, id, attempts, now, until],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn finish_note(
        &self,
        lead: &str,
        id: &str,
        outcome: Delivery,
        at: Micros,
    ) -> Result<(), StoreError> {
        let (lead, id) = (lead.to_string(), id.to_string());
        let (status, next_at, error) = match outcome {
            Delivery::Delivered => (NoteStatus::Delivered, at, None),
            Delivery::Retry { next_at, error } => (NoteStatus::Pending, next_at, Some(error)),
            Delivery::Failed { error } => (NoteStatus::Failed, at, Some(error)),
        };
        self.write(move |tx| {
            tx.execute(
                "UPDATE outbox SET status = ?3, next_at = ?4, last_error = ?5
                 WHERE lead = ?1 AND id = ?2",
                params![lead, id, status.name(), next_at, error],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn notes(
        &self,
        status: NoteStatus,
        limit: usize,
        after: Option<(Micros, String)>,
    ) -> Result<Vec<Outboxed>, StoreError> {
        self.read(move |c| {
            let (t, id) = after.unwrap_or((Micros::MIN, String::new()));
            let mut q = c
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox
                     WHERE status = ?1 AND (next_at > ?2 OR (next_at = ?2 AND id > ?3))
                     ORDER BY next_at, id LIMIT ?4"
                ))
                .map_err(sql_error)?;
            let rows = q
                .query_map(params![status.name(), t, id, limit as i64], outboxed)
                .map_err(sql_error)?;
            notes_of(rows)
        })
        .await
    }

    async fn requeue_note(&self, lead: &str, id: &str, now: Micros) -> Result<bool, StoreError> {
        let (lead, id) = (lead.to_string(), id.to_string());
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?3
                     WHERE lead = ?1 AND id = ?2 AND status = 'failed'",
                    params![lead, id, now],
                )
                .map_err(sql_error)?;
            Ok(n == 1)
        })
        .await
    }
}

pub(super) const OUTBOX_COLUMNS: &str =
    "lead, id, channel, created_at, body, status, attempts, next_at, last_error";

/// An outbox row (columns in `OUTBOX_COLUMNS` order).
pub(super) fn outboxed(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(Notification, String, u32, i64, Option<String>)> {
    Ok((
        Notification {
            lead: r.get(0)?,
            id: r.get(1)?,
            channel: r.get(2)?,
            created_at: r.get(3)?,
            body: Json::String(r.get(4)?),
        },
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

/// Rows as notifications (their bodies parsed).
pub(super) fn notes_of(
    rows: impl Iterator<Item = rusqlite::Result<(Notification, String, u32, i64, Option<String>)>>,
) -> Result<Vec<Outboxed>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        let (mut note, status, attempts, next_at, last_error) = row.map_err(sql_error)?;
        if let Json::String(text) = &note.body {
            note.body = json_column(text.clone())?;
        }
        out.push(Outboxed {
            note,
            status: NoteStatus::parse(&status).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown notification status `{status}`"))
            })?,
            attempts,
            next_at,
            last_error,
        });
    }
    Ok(out)
}
