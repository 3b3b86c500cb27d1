//! Joins: anonymous visitors linked and settled, leads redirected and retired.

use super::*;

#[async_trait::async_trait]
impl Joins for SqliteStore {
    async fn track(&self, visitor: &str, events: Vec<StoredEvent>) -> Result<Tracked, StoreError> {
        let op = Op::Track {
            visitor: visitor.to_string(),
            events: event_rows(events),
        };
        match self.send(op).await? {
            Done::Tracked(t) => Ok(t),
            Done::Committed => Err(failed("the writer answered a track with a commit")),
        }
    }

    async fn visitor(
        &self,
        visitor: &str,
    ) -> Result<(Option<Pointer>, Vec<StoredEvent>), StoreError> {
        let visitor = visitor.to_string();
        self.read(move |c| {
            let link = pointer(c, VISITOR, &visitor)?;
            let mut q = c
                .prepare_cached(
                    "SELECT id, at, seq, body FROM visitor_events WHERE visitor = ?1
                     ORDER BY at, seq, id",
                )
                .map_err(sql_error)?;
            Ok((link, read_events(&mut q, &visitor)?))
        })
        .await
    }

    async fn link(&self, visitor: &str, lead: &str, at: Micros) -> Result<Pointer, StoreError> {
        let (visitor, lead) = (visitor.to_string(), lead.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO pointers (kind, key, lead, pending, at) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT DO NOTHING",
                params![VISITOR, visitor, lead, at],
            )
            .map_err(sql_error)?;
            pointer(tx, VISITOR, &visitor)?.ok_or_else(|| failed("the link was not stored"))
        })
        .await
    }

    async fn settle(&self, visitor: &str) -> Result<(), StoreError> {
        let visitor = visitor.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM visitor_events WHERE visitor = ?1", [&visitor])
                .map_err(sql_error)?;
            tx.execute(
                "UPDATE pointers SET pending = 0 WHERE kind = ?1 AND key = ?2",
                [VISITOR, &visitor],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn redirect(
        &self,
        from: &str,
        to: &str,
        version: u64,
        at: Micros,
    ) -> Result<(), StoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.write(move |tx| {
            if pointer(tx, LEAD, &from)?.is_some() {
                return Err(StoreError::Conflict);
            }
            let moved = tx
                .execute(
                    "UPDATE leads SET version = version + 1, next_change = NULL
                     WHERE key = ?1 AND version = ?2",
                    params![from, version as i64],
                )
                .map_err(sql_error)?;
            if moved == 0 {
                return Err(StoreError::Conflict);
            }
            tx.execute(
                "INSERT INTO pointers (kind, key, lead, pending, at) VALUES (?1, ?2, ?3, 1, ?4)",
                params![LEAD, from, to, at],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn retire(&self, from: &str) -> Result<Retired, StoreError> {
        let from = from.to_string();
        self.write(move |tx| {
            let Some(p) = pointer(tx, LEAD, &from)? else {
                return Err(failed(format!("{from} was not merged")));
            };
            if !p.pending {
                return Ok(Retired::default());
            }
            let moved: Vec<(i64, String)> = {
                let mut q = tx
                    .prepare("SELECT at, body FROM transitions WHERE lead = ?1 ORDER BY n")
                    .map_err(sql_error)?;
                let rows = q
                    .query_map([&from], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql_error)?;
                rows.collect::<Result<_, _>>().map_err(sql_error)?
            };
            for (at, body) in &moved {
                let t = super::memory::moved_transition(&from, StoredTransition::parse(*at, body)?);
                tx.execute(
                    "INSERT INTO transitions (lead, at, body) VALUES (?1, ?2, ?3)",
                    params![p.lead, t.at, t.text()],
                )
                .map_err(sql_error)?;
            }
            tx.execute("DELETE FROM transitions WHERE lead = ?1", [&from])
                .map_err(sql_error)?;
            tx.execute("DELETE FROM score_history WHERE lead = ?1", [&from])
                .map_err(sql_error)?;
            tx.execute("DELETE FROM lead_marks WHERE lead = ?1", [&from])
                .map_err(sql_error)?;
            let events = tx
                .execute("DELETE FROM events WHERE lead = ?1", [&from])
                .map_err(sql_error)?;
            tx.execute("DELETE FROM leads WHERE key = ?1", [&from])
                .map_err(sql_error)?;
            tx.execute(
                "UPDATE pointers SET lead = ?1 WHERE lead = ?2",
                [&p.lead, &from],
            )
            .map_err(sql_error)?;
            tx.execute(
                "UPDATE pointers SET pending = 0 WHERE kind = ?1 AND key = ?2",
                [LEAD, &from],
            )
            .map_err(sql_error)?;
            Ok(Retired {
                events,
                transitions: moved.len(),
            })
        })
        .await
    }

    async fn joined(&self, lead: &str) -> Result<Vec<Joined>, StoreError> {
        let lead = lead.to_string();
        self.read(move |c| {
            let mut q = c
                .prepare_cached("SELECT kind, key FROM pointers WHERE lead = ?1")
                .map_err(sql_error)?;
            let rows = q
                .query_map([&lead], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))
                .map_err(sql_error)?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, key) = row.map_err(sql_error)?;
                out.push(if kind == VISITOR {
                    Joined::Visitor(key)
                } else {
                    Joined::Lead(key)
                });
            }
            out.sort();
            Ok(out)
        })
        .await
    }
}

/// Stores an anonymous visitor's events unless it is linked (in the writer's transaction,
/// which serialises it with [`Store::link`]).
pub(super) fn track(
    tx: &Connection,
    visitor: &str,
    events: &[EventRow],
) -> Result<Tracked, StoreError> {
    if let Some(p) = pointer(tx, VISITOR, visitor)? {
        return Ok(Tracked::Linked(p));
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO visitor_events (visitor, id, at, seq, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )
        .map_err(sql_error)?;
    let mut duplicates = Vec::new();
    for (id, at, seq, body) in events {
        if insert
            .execute(params![visitor, id, at, seq, body])
            .map_err(sql_error)?
            == 0
        {
            duplicates.push(id.clone());
        }
    }
    Ok(Tracked::Stored { duplicates })
}

pub(super) fn event_rows(events: Vec<StoredEvent>) -> Vec<EventRow> {
    events
        .into_iter()
        .map(|e| (e.id, e.at, e.seq as i64, e.json.to_string()))
        .collect()
}
