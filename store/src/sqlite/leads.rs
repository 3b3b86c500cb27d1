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
            use rusqlite::types::Value;
            let mut cond = vec![
                "NOT EXISTS (SELECT 1 FROM pointers p WHERE p.kind = 'lead' AND p.key = leads.key)"
                    .to_string(),
            ];
            let mut args: Vec<Value> = Vec::new();
            let mut arg = |cond: &mut Vec<String>, sql: &str, v: Value| {
                args.push(v);
                cond.push(sql.replace('?', &format!("?{}", args.len())));
            };
            if let Some(g) = &q.grade {
                arg(&mut cond, "grade = ?", Value::Text(g.clone()));
            }
            if let Some(co) = &q.company {
                arg(&mut cond, "company = ?", Value::Text(co.clone()));
            }
            if let Some(o) = &q.owner {
                arg(&mut cond, "owner = ?", Value::Text(o.clone()));
            }
            if q.pool {
                cond.push("pool = 1".into());
            }
            if let Some(t) = &q.tag {
                arg(
                    &mut cond,
                    "EXISTS (SELECT 1 FROM json_each(leads.tags) WHERE value = ?)",
                    Value::Text(t.clone()),
                );
            }
            if let Some(t) = q.created_since {
                arg(&mut cond, "created_at >= ?", Value::Integer(t));
            }
            if let Some(t) = q.updated_since {
                arg(&mut cond, "updated_at >= ?", Value::Integer(t));
            }
            if let Some(t) = q.overdue_at {
                arg(
                    &mut cond,
                    "(overdue = 1 OR deadline <= ?)",
                    Value::Integer(t),
                );
            }
            if let Some(t) = q.no_followup_since {
                arg(
                    &mut cond,
                    "(followup_at IS NULL OR followup_at < ?)",
                    Value::Integer(t),
                );
            }
            let (column, order) = match q.sort {
                Sort::Score => ("score", "score DESC, key"),
                Sort::Updated => ("updated_at", "updated_at DESC, key"),
                Sort::Deadline => ("deadline", "deadline, key"),
            };
            if q.sort == Sort::Deadline {
                cond.push("deadline IS NOT NULL".into());
            }
            if let Some((k, after)) = &q.after {
                let op = if q.sort == Sort::Deadline { ">" } else { "<" };
                args.push(Value::Integer(*k));
                let n = args.len();
                args.push(Value::Text(after.clone()));
                cond.push(format!(
                    "({column} {op} ?{n} OR ({column} = ?{n} AND key > ?{}))",
                    n + 1
                ));
            }
            args.push(Value::Integer(q.limit.min(i64::MAX as usize) as i64));
            let sql = format!(
                "SELECT key, {SUMMARY_COLUMNS} FROM leads WHERE {} ORDER BY {order} LIMIT ?{}",
                cond.join(" AND "),
                args.len()
            );
            let mut stmt = c.prepare_cached(&sql).map_err(sql_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get::<_, String>(0)?, summary_of(r, 1)?))
                })
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

    async fn score_history(
        &self,
        lead: &str,
        since: Micros,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        let lead = lead.to_string();
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT at, body FROM score_history WHERE lead = ?1 AND kind = ?2 AND at >= ?3
                     ORDER BY slot",
                )
                .map_err(sql_error)?;
            let mut points = |kind: &str| -> Result<Vec<HistoryPoint>, StoreError> {
                let rows = q
                    .query_map(params![lead, kind, since], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(sql_error)?;
                let mut out = Vec::new();
                for row in rows {
                    let (at, body) = row.map_err(sql_error)?;
                    out.push(HistoryPoint::parse(at, &body)?);
                }
                Ok(out)
            };
            let fine = points("m")?;
            let daily = points("d")?;
            let mut q = c
                .prepare_cached(
                    "SELECT at, body FROM score_history WHERE lead = ?1 AND kind = ?2 AND at < ?3
                     ORDER BY slot DESC LIMIT 1",
                )
                .map_err(sql_error)?;
            let mut prior = Vec::new();
            for kind in ["m", "d"] {
                let row: Option<(i64, String)> = q
                    .query_row(params![lead, kind, since], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql_error)?;
                if let Some((at, body)) = row {
                    prior.push(HistoryPoint::parse(at, &body)?);
                }
            }
            Ok(history_merge(prior, fine, daily))
        })
        .await
    }

    async fn release(&self, lead: &str) -> Result<bool, StoreError> {
        let lead = lead.to_string();
        self.write(move |tx| {
            let row: Option<String> = tx
                .prepare_cached("SELECT state FROM leads WHERE key = ?1")
                .map_err(sql_error)?
                .query_row([&lead], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            let Some(text) = row else {
                return Ok(false);
            };
            let state = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("the state of {lead}: {e}")))?;
            let Some((state, owner)) = released(state) else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE leads SET state = ?2, version = version + 1 WHERE key = ?1",
                params![lead, super::super::encode_state(&lead, &state)?],
            )
            .map_err(sql_error)?;
            let body: Option<String> = tx
                .query_row("SELECT body FROM desk WHERE id = 1", [], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            let mut record = match body {
                Some(b) => DeskRecord::parse(&b)?,
                None => DeskRecord::default(),
            };
            record.release(&owner);
            tx.execute(
                "INSERT INTO desk (id, version, body) VALUES (1, 1, ?1)
                 ON CONFLICT (id) DO UPDATE SET version = version + 1, body = ?1",
                [record.text()],
            )
            .map_err(sql_error)?;
            Ok(true)
        })
        .await
    }

    async fn shared_marks(&self, limit: usize) -> Result<Vec<Shared>, StoreError> {
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT m.mark, m.lead FROM lead_marks m
                     WHERE m.mark IN (SELECT mark FROM lead_marks GROUP BY mark HAVING count(*) > 1)
                       AND NOT EXISTS (SELECT 1 FROM pointers p WHERE p.kind = 'lead' AND p.key = m.lead)
                     ORDER BY m.mark, m.lead",
                )
                .map_err(sql_error)?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_error)?;
            let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for row in rows {
                let (mark, lead) = row.map_err(sql_error)?;
                by.entry(mark).or_default().push(lead);
            }
            Ok(super::super::memory::shared(
                by.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
                limit,
            ))
        })
        .await
    }

    async fn desk(&self) -> Result<DeskLoaded, StoreError> {
        self.read(move |c| {
            let row: Option<(i64, String)> = c
                .prepare_cached("SELECT version, body FROM desk WHERE id = 1")
                .map_err(sql_error)?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sql_error)?;
            Ok(match row {
                None => DeskLoaded::default(),
                Some((v, body)) => DeskLoaded {
                    record: DeskRecord::parse(&body)?,
                    version: Some(v as u64),
                },
            })
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
                &format!("DELETE FROM score_history WHERE lead IN {keys}"),
                [&lead, LEAD],
            )
            .map_err(sql_error)?;
            tx.execute(
                &format!("DELETE FROM lead_marks WHERE lead IN {keys}"),
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

/// The columns a summary is read from, in [`SummaryColumns`]' order.
const SUMMARY_COLUMNS: &str = "grade, score, scores, next_change, updated_at, program, ruleset, \
                               created_at, tags, owner, pool, deadline, followup_at, \
                               overdue, company";

/// A summary as its columns: grade, score, scores (JSON), next_change, updated_at,
/// program, ruleset, created_at, tags (JSON), owner, pool, deadline, followup_at,
/// overdue, company.
type SummaryColumns = (
    (
        Option<String>,
        i64,
        String,
        Option<i64>,
        i64,
        String,
        String,
    ),
    (
        Option<i64>,
        String,
        Option<String>,
        bool,
        Option<i64>,
        Option<i64>,
        bool,
        Option<String>,
    ),
);

fn summary_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<SummaryColumns> {
    let f = first;
    Ok((
        (
            r.get(f)?,
            r.get(f + 1)?,
            r.get(f + 2)?,
            r.get(f + 3)?,
            r.get(f + 4)?,
            r.get(f + 5)?,
            r.get(f + 6)?,
        ),
        (
            r.get(f + 7)?,
            r.get(f + 8)?,
            r.get(f + 9)?,
            r.get(f + 10)?,
            r.get(f + 11)?,
            r.get(f + 12)?,
            r.get(f + 13)?,
            r.get(f + 14)?,
        ),
    ))
}

fn make_summary(
    (
        (grade, score, scores, next_change, updated_at, program, ruleset),
        (created_at, tags, owner, pool, deadline, followup_at, overdue, company),
    ): SummaryColumns,
) -> Result<Summary, StoreError> {
    let scores =
        serde_json::from_str(&scores).map_err(|e| StoreError::Corrupt(format!("scores: {e}")))?;
    let tags =
        serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?;
    Ok(Summary {
        grade,
        score,
        scores,
        next_change,
        updated_at,
        program,
        ruleset,
        created_at,
        tags,
        owner,
        pool,
        deadline,
        followup_at,
        overdue,
        company,
    })
}
