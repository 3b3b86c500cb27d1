//! The outbox: due notifications, claims, outcomes, dead letters and requeues.

use super::*;

#[async_trait::async_trait]
impl Outbox for DynamoStore {
    async fn due_notes(&self, now: Micros, limit: usize) -> Result<Vec<Outboxed>, StoreError> {
        let keys = self
            .query_all(
                Some("due"),
                "due_pk = :d AND next_change <= :t",
                HashMap::from([
                    (":d".into(), s(note_due(NoteStatus::Pending))),
                    (":t".into(), n(now)),
                ]),
                Some(limit),
                false,
            )
            .await?;
        let mut out = Vec::new();
        for k in &keys {
            // The index is eventually consistent: the item itself says whether it is due.
            if let Some(item) = self.get(key(get_s(k, "PK")?, get_s(k, "SK")?)).await? {
                let o = outboxed(&item)?;
                if o.status == NoteStatus::Pending && o.next_at <= now {
                    out.push(o);
                }
            }
        }
        out.sort_by(|a, b| (a.next_at, &a.note.id).cmp(&(b.next_at, &b.note.id)));
        Ok(out)
    }

    async fn note(&self, lead: &str, id: &str) -> Result<Option<Outboxed>, StoreError> {
        match self.get(key(pk(lead), format!("NOTE#{id}"))).await? {
            Some(item) => Ok(Some(outboxed(&item)?)),
            None => Ok(None),
        }
    }

    async fn claim_note(
        &self,
        lead: &str,
        id: &str,
        attempts: u32,
        now: Micros,
        until: Micros,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(lead), format!("NOTE#{id}"))))
            .update_expression("SET attempts = :a1, next_at = :u, next_change = :u")
            .condition_expression("#s = :p AND attempts = :a AND next_at <= :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":p", s(NoteStatus::Pending.name()))
            .expression_attribute_values(":a", n(attempts))
            .expression_attribute_values(":a1", n(attempts + 1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":u", n(until))
            .send()
            .await;
        applied(r)
    }

    async fn finish_note(
        &self,
        lead: &str,
        id: &str,
        outcome: Delivery,
        at: Micros,
    ) -> Result<(), StoreError> {
        let (status, next_at, error) = match outcome {
            Delivery::Delivered => (NoteStatus::Delivered, at, None),
            Delivery::Retry { next_at, error } => (NoteStatus::Pending, next_at, Some(error)),
            Delivery::Failed { error } => (NoteStatus::Failed, at, Some(error)),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(lead), format!("NOTE#{id}"))))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status.name()))
            .expression_attribute_values(":t", n(next_at))
            .expression_attribute_values(":d", s(note_due(status)));
        update = match error {
            Some(e) => update
                .update_expression(
                    "SET #s = :s, next_at = :t, next_change = :t, due_pk = :d, last_error = :e",
                )
                .expression_attribute_values(":e", s(e)),
            None => update.update_expression(
                "SET #s = :s, next_at = :t, next_change = :t, due_pk = :d REMOVE last_error",
            ),
        };
        // Not applied: erased meanwhile, nothing to record.
        applied(update.send().await).map(|_| ())
    }

    async fn notes(
        &self,
        status: NoteStatus,
        limit: usize,
        after: Option<(Micros, String)>,
    ) -> Result<Vec<Outboxed>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (t, last) = after.unwrap_or((Micros::MIN, String::new()));
        // A page, not the whole status partition: the index (keys only) is read in pages
        // of `limit + 1` in `next_change` order until `limit` notes past the cursor are
        // known and a later instant has been seen (so no tie could sort before them);
        // only those are read whole.
        let values: Item = HashMap::from([(":d".into(), s(note_due(status))), (":t".into(), n(t))]);
        let mut found: Vec<(Micros, String, Item)> = Vec::new();
        let mut start = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("due")
                .key_condition_expression("due_pk = :d AND next_change >= :t")
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .limit((limit + 1).min(1000) as i32)
                .send()
                .await
                .map_err(sdk_error)?;
            let mut beyond = false;
            for k in r.items.unwrap_or_default() {
                let at: Micros = get_n(&k, "next_change")?;
                let id = get_s(&k, "SK")?.trim_start_matches("NOTE#").to_string();
                // The index returns instants in order, so the `limit`-th found has the
                // `limit`-th instant whatever the order of ids within an instant.
                if found.len() >= limit && at > found[limit - 1].0 {
                    beyond = true;
                    break;
                }
                if (at, &id) > (t, &last) {
                    found.push((at, id, k));
                }
            }
            start = r.last_evaluated_key;
            if beyond || start.is_none() {
                break;
            }
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        found.truncate(limit);
        let mut out = Vec::new();
        for (_, _, k) in &found {
            if let Some(item) = self.get(key(get_s(k, "PK")?, get_s(k, "SK")?)).await? {
                let o = outboxed(&item)?;
                if o.status == status && (o.next_at, &o.note.id) > (t, &last) {
                    out.push(o);
                }
            }
        }
        out.sort_by(|a, b| (a.next_at, &a.note.id).cmp(&(b.next_at, &b.note.id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn requeue_note(&self, lead: &str, id: &str, now: Micros) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(lead), format!("NOTE#{id}"))))
            .update_expression(
                "SET #s = :p, attempts = :z, next_at = :t, next_change = :t, due_pk = :d",
            )
            .condition_expression("#s = :f")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":p", s(NoteStatus::Pending.name()))
            .expression_attribute_values(":f", s(NoteStatus::Failed.name()))
            .expression_attribute_values(":z", n(0))
            .expression_attribute_values(":t", n(now))
            .expression_attribute_values(":d", s(note_due(NoteStatus::Pending)))
            .send()
            .await;
        applied(r)
    }
}
