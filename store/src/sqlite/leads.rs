//! The lead log: state, events, transitions, the listing and the sweep's index.

use super::*;

#[async_trait::async_trait]
impl LeadLog for SqliteStore {
    async fn load(&self, lead: &str, ids: &[String]) -> Result<Found, StoreError> {
        let lead = lead.to_string();
        let ids = ids.to_vec();
        self.read(move |c| {
            let row: Option<(String, i64)> = c
                .prepare_cached("SELECT state, version FROM leads WHERE key = ?1")
                .map_err(sql_error)?
                .query_row([&lead], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sql_error)?;
            let loaded = match row {
                None => None,
                Some((state, version)) => Some(Loaded {
                    state: serde_json::from_str(&state)
                        .map_err(|e| StoreError::Corrupt(format!("the state of {lead}: {e}")))?,
                    version: version as u64,
                }),
            };
            let mut seen = Vec::new();
            if loaded.is_some() {
                let mut q = c
                    .prepare_cached("SELECT 1 FROM events WHERE lead = ?1 AND id = ?2")
                    .map_err(sql_error)?;
                for id in ids {
                    if q.exists(params![lead, id]).map_err(sql_error)? {
                        seen.push(id);
                    }
                }
            }
            Ok(Found {
                lead: loaded,
                seen,
                merged_into: pointer(c, LEAD, &lead)?,
            })
        })
        .await
    }

    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let lead = lead.to_string();
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT id, at, seq, body FROM events WHERE lead = ?1 ORDER BY at, seq",
                )
                .map_err(sql_error)?;
            read_events(&mut q, &lead)
        })
        .await
    }

    async fn commit(&self, write: Write) -> Result<(), StoreError> {
        let write = Encoded::new(write)?;
        self.send(Op::Commit(Box::new(write))).await.map(|_| ())
    }

    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError> {
        let lead = lead.to_string();
        self.read(move |c| {
            let mut q = c
                .prepare_cached("SELECT at, body FROM transitions WHERE lead = ?1 ORDER BY at, n")
                .map_err(sql_error)?;
            let rows = q
                .query_map([&lead], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql_error)?;
            let mut out = Vec::new();
            for row in rows {
                let (at, body) = row.map_err(sql_error)?;
                let body: String = body;
                out.push(StoredTransition::parse(at, &body)?);
            }
            Ok(out)
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Listed>, StoreError> {
        let q = query.clone();
        self.read(move |c| {
            let (after_score, after_key) = q
                .after
                .clone()
                .map_or((i64::MAX, String::new()), |(s, k)| (s, k));
            let has_after = q.after.is_some();
            let sql = format!(
                "SELECT key, grade, score, scores, next_change, updated_at, program, ruleset FROM leads
                 WHERE {} (?2 = 0 OR score < ?3 OR (score = ?3 AND key > ?4))
                   AND NOT EXISTS (SELECT 1 FROM pointers p WHERE p.kind = 'lead' AND p.key = leads.key)
                 ORDER BY score DESC, key LIMIT ?5",
                if q.grade.is_some() {
                    "grade = ?1 AND"
                } else {
                    "?1 IS NULL AND"
                }
            );
            let mut stmt = c.prepare_cached(&sql).map_err(sql_error)?;
            let rows = stmt
                .query_map(
                    params![q.grade, has_after, after_score, after_key, q.limit as i64],
                    |r| Ok((r.get::<_, String>(0)?, summary_of(r, 1)?)),
                )
                .map_err(sql_error)?;
            let mut out = Vec::new();
            for row in rows {
                let (lead, s) = row.map_err(sql_error)?;
                out.push(Listed {
                    lead,
                    summary: make_summary(s)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError> {
        let lead = lead.to_string();
        // Deleted content is overwritten, not left in free pages.
        self.write(move |tx| {
            tx.pragma_update(None, "secure_delete", "ON")
                .map_err(sql_error)?;
            // The lead, and what a merge into it that was cut short left under the old key.
            let keys = "(SELECT ?1 UNION SELECT key FROM pointers WHERE kind = ?2 AND lead = ?1)";
            let events = tx
                .execute(
                    &format!("DELETE FROM events WHERE lead IN {keys}"),
                    [&lead, LEAD],
                )
                .map_err(sql_error)?;
            let transitions = tx
                .execute(
                    &format!("DELETE FROM transitions WHERE lead IN {keys}"),
                    [&lead, LEAD],
                )
                .map_err(sql_error)?;
            tx.execute(
                &format!("DELETE FROM outbox WHERE lead IN {keys}"),
                [&lead, LEAD],
            )
            .map_err(sql_error)?;
            tx.execute(
                "DELETE FROM leads WHERE key IN
                     (SELECT key FROM pointers WHERE kind = ?1 AND lead = ?2)",
                [LEAD, &lead],
            )
            .map_err(sql_error)?;
            let state = tx
                .execute("DELETE FROM leads WHERE key = ?1", [&lead])
                .map_err(sql_error)?
                > 0;
            tx.execute(
                "DELETE FROM visitor_events WHERE visitor IN
                     (SELECT key FROM pointers WHERE kind = ?1 AND lead = ?2)",
                [VISITOR, &lead],
            )
            .map_err(sql_error)?;
            let links = tx
                .execute("DELETE FROM pointers WHERE lead = ?1", [&lead])
                .map_err(sql_error)?;
            let erased = Erased {
                state,
                events,
                transitions,
                links,
            };
            if erased != Erased::default() {
                tx.execute(
                    "INSERT INTO erasures (key_sha256, at, events, transitions)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![erasure_key(&lead), at, events as i64, transitions as i64],
                )
                .map_err(sql_error)?;
            }
            Ok(erased)
        })
        .await
    }

    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT key FROM leads WHERE next_change IS NOT NULL AND next_change <= ?1
                     ORDER BY next_change LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = q
                .query_map(params![t, limit as i64], |r| r.get(0))
                .map_err(sql_error)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(sql_error)
        })
        .await
    }
}

/// A summary as its columns: grade, score, scores (JSON), next_change, updated_at,
/// program, ruleset.
type SummaryColumns = (
    Option<String>,
    i64,
    String,
    Option<i64>,
    i64,
    String,
    String,
);

fn summary_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<SummaryColumns> {
    Ok((
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
        r.get(first + 4)?,
        r.get(first + 5)?,
        r.get(first + 6)?,
    ))
}

fn make_summary(
    (grade, score, scores, next_change, updated_at, program, ruleset): SummaryColumns,
) -> Result<Summary, StoreError> {
    let scores =
        serde_json::from_str(&scores).map_err(|e| StoreError::Corrupt(format!("scores: {e}")))?;
    Ok(Summary {
        grade,
        score,
        scores,
        next_change,
        updated_at,
        program,
        ruleset,
    })
}
