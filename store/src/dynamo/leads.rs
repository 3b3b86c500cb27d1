//! The lead log: state, events, transitions, the listing and the sweep's index.

use super::*;

#[async_trait::async_trait]
impl LeadLog for DynamoStore {
    async fn load(&self, lead: &str, ids: &[String]) -> Result<Found, StoreError> {
        let mut wanted: Vec<Item> = vec![key(pk(lead), STATE), key(pk(lead), POINTER)];
        wanted.extend(ids.iter().map(|id| key(pk(lead), format!("EVT#{id}"))));
        let mut found = Found::default();
        // BatchGetItem takes 100 keys; consistent reads, unprocessed keys retried.
        for chunk in wanted.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(failed)?,
            );
            while let Some(req) = pending.take() {
                let r = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in r
                    .responses
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default()
                {
                    let sk = get_s(&item, "SK")?;
                    if sk == STATE {
                        let state = serde_json::from_str(get_s(&item, "state")?).map_err(|e| {
                            StoreError::Corrupt(format!(
                                "stored state of {lead} is unreadable: {e}"
                            ))
                        })?;
                        found.lead = Some(Loaded {
                            state,
                            version: get_n(&item, "version")? as u64,
                        });
                    } else if sk == POINTER {
                        found.merged_into = Some(pointer_of(&item)?);
                    } else if let Some(id) = sk.strip_prefix("EVT#") {
                        found.seen.push(id.to_string());
                    }
                }
                pending = r
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        // In request order; a lead that is not stored has no events to report.
        if found.lead.is_none() {
            found.seen.clear();
        }
        found
            .seen
            .sort_by_key(|id| ids.iter().position(|x| x == id));
        Ok(found)
    }

    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let items = self.partition(&pk(lead), Some("EVT#")).await?;
        let mut out = items.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| (e.at, e.seq));
        Ok(out)
    }

    async fn commit(&self, w: Write) -> Result<(), StoreError> {
        let marks = w.marks.as_ref().map_or(0, |m| m.old.len() + m.new.len());
        let actions = 1
            + marks
            + w.events.len()
            + w.transitions.len()
            + w.notifications.len()
            + usize::from(w.history.is_some())
            + usize::from(w.day_point.is_some())
            + usize::from(w.desk.is_some());
        if actions > MAX_ACTIONS {
            return Err(StoreError::Backend(format!(
                "a write of {actions} actions exceeds DynamoDB's {MAX_ACTIONS} (the service commits in chunks of {} events)",
                self.max_events_per_commit()
            )));
        }
        let lead_pk = pk(&w.lead);
        let sm = &w.summary;
        let mut state: Item = HashMap::from([
            ("PK".into(), s(&lead_pk)),
            ("SK".into(), s(STATE)),
            ("version".into(), n(w.expect.map_or(1, |v| v + 1))),
            ("state".into(), s(super::encode_state(&w.lead, &w.state)?)),
            ("score".into(), n(sm.score)),
            (
                "scores".into(),
                s(serde_json::to_string(&sm.scores).unwrap_or_default()),
            ),
            ("updated_at".into(), n(sm.updated_at)),
            ("program".into(), s(&sm.program)),
            ("ruleset".into(), s(&sm.ruleset)),
            ("apk".into(), s("LEADS")),
            ("rank".into(), s(rank(sm.score, &w.lead))),
        ]);
        if let Some(g) = &sm.grade {
            state.insert("grade".into(), s(g));
            state.insert("gpk".into(), s(format!("GRADE#{g}")));
        }
        if let Some(t) = sm.next_change {
            state.insert("due_pk".into(), s("DUE"));
            state.insert("next_change".into(), n(t));
        }
        state.insert("urank".into(), s(updated_rank(sm.updated_at, &w.lead)));
        if let Some(t) = sm.created_at {
            state.insert("created_at".into(), n(t));
        }
        state.insert(
            "tags".into(),
            AttributeValue::L(sm.tags.iter().map(s).collect()),
        );
        state.insert("pool".into(), AttributeValue::Bool(sm.pool));
        state.insert("overdue".into(), AttributeValue::Bool(sm.overdue));
        match (&sm.owner, sm.pool) {
            (Some(o), _) => {
                state.insert("owner".into(), s(o));
                state.insert("opk".into(), s(format!("OWNER#{o}")));
            }
            (None, true) => {
                state.insert("opk".into(), s("POOL"));
            }
            (None, false) => {}
        }
        if let Some(co) = &sm.company {
            state.insert("company".into(), s(co));
            state.insert("cpk".into(), s(format!("COMPANY#{co}")));
        }
        if let Some(f) = sm.followup_at {
            state.insert("followup_at".into(), n(f));
        }
        if let Some(d) = sm.deadline {
            state.insert("deadline".into(), n(d));
            state.insert("dlpk".into(), s("DEADLINE"));
            state.insert("dlrank".into(), s(deadline_rank(d, &w.lead)));
        }
        let mut items = vec![match w.expect {
            None => self.put(state, "attribute_not_exists(PK)", None)?,
            Some(v) => self.put(
                state,
                "version = :v",
                Some(HashMap::from([(":v".into(), n(v))])),
            )?,
        }];
        for e in &w.events {
            items.push(self.put(event_item(&lead_pk, e), "attribute_not_exists(PK)", None)?);
        }
        for note in &w.notifications {
            items.push(self.put(note_item(&lead_pk, note), "attribute_not_exists(PK)", None)?);
        }
        let points = w.history.iter().map(|p| {
            (
                format!("HIST#m#{:020}", history_slots(p.at).0),
                Some(p.at + HISTORY_FINE_DAYS * DAY),
                p,
            )
        });
        let day = w
            .day_point
            .iter()
            .map(|p| (format!("HIST#d#{:020}", history_slots(p.at).1), None, p));
        {
            for (sk, expires, p) in points.chain(day) {
                let mut item = HashMap::from([
                    ("PK".into(), s(&lead_pk)),
                    ("SK".into(), s(sk)),
                    ("at".into(), n(p.at)),
                    ("body".into(), s(p.text())),
                ]);
                if let Some(e) = expires {
                    // DynamoDB's time to live (seconds) removes minute points past the year.
                    item.insert("expires".into(), n(e / 1_000_000));
                }
                items.push(self.put_any(item)?);
            }
        }
        if let Some(m) = &w.marks {
            for old in m.old.iter().filter(|o| !m.new.contains(o)) {
                let del = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&lead_pk, format!("MARK#{old}"))))
                    .build()
                    .map_err(failed)?;
                items.push(TransactWriteItem::builder().delete(del).build());
            }
            for new in m.new.iter().filter(|x| !m.old.contains(x)) {
                items.push(self.put_any(HashMap::from([
                    ("PK".into(), s(&lead_pk)),
                    ("SK".into(), s(format!("MARK#{new}"))),
                    ("mkpk".into(), s("MARKS")),
                    ("mksk".into(), s(format!("{new}\u{1f}{}", w.lead))),
                ]))?);
            }
        }
        if let Some(d) = &w.desk {
            items.push(self.desk_put(d)?);
        }
        // The new version makes each commit's transition keys unique within the lead.
        let version = w.expect.map_or(1, |v| v + 1);
        for (i, t) in w.transitions.iter().enumerate() {
            let item = HashMap::from([
                ("PK".into(), s(&lead_pk)),
                (
                    "SK".into(),
                    s(format!("GRADE#{:020}#{version:010}#{i:03}", t.at)),
                ),
                ("at".into(), n(t.at)),
                ("body".into(), s(t.text())),
            ]);
            items.push(self.put(item, "attribute_not_exists(PK)", None)?);
        }
        self.transact(items).await?;
        crate::metric::committed(1);
        Ok(())
    }

    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :g)",
                HashMap::from([(":pk".into(), s(pk(lead))), (":g".into(), s("GRADE#"))]),
                None,
                true,
            )
            .await?;
        items
            .iter()
            .map(|i| StoredTransition::parse(get_n(i, "at")?, get_s(i, "body")?))
            .collect()
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<Listed>, StoreError> {
        // The index that gives the order (and the most selective key for it); every other
        // filter is a filter expression on that index's pages.
        let mut values: Item = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let (index, part_key, sort_key, part) = match (q.sort, &q.owner, q.pool, &q.grade) {
            (Sort::Updated, ..) => ("by_updated", "apk", "urank", "LEADS".to_string()),
            (Sort::Deadline, ..) => ("by_deadline", "dlpk", "dlrank", "DEADLINE".to_string()),
            (Sort::Score, None, false, _) if q.company.is_some() => (
                "by_company",
                "cpk",
                "rank",
                format!("COMPANY#{}", q.company.as_deref().unwrap_or("")),
            ),
            (Sort::Score, Some(o), ..) => ("by_owner", "opk", "rank", format!("OWNER#{o}")),
            (Sort::Score, None, true, _) => ("by_owner", "opk", "rank", "POOL".to_string()),
            (Sort::Score, None, false, Some(g)) => {
                ("by_grade", "gpk", "rank", format!("GRADE#{g}"))
            }
            (Sort::Score, None, false, None) => ("by_score", "apk", "rank", "LEADS".to_string()),
        };
        values.insert(":p".into(), s(part));
        let mut condition = format!("{part_key} = :p");
        if let Some((k, lead)) = &q.after {
            values.insert(
                ":r".into(),
                s(match q.sort {
                    Sort::Score => rank(*k, lead),
                    Sort::Updated => updated_rank(*k, lead),
                    Sort::Deadline => deadline_rank(*k, lead),
                }),
            );
            names.insert("#sk".into(), sort_key.into());
            condition.push_str(" AND #sk > :r");
        }
        let mut filters: Vec<String> = Vec::new();
        let mut filter = |expr: &str, name: &str, attr: &str, v: AttributeValue| {
            names.insert(name.into(), attr.into());
            values.insert(format!(":{attr}"), v);
            filters.push(expr.to_string());
        };
        if let (Some(g), false) = (&q.grade, index == "by_grade") {
            filter("#grade = :grade", "#grade", "grade", s(g));
        }
        if let (Some(co), false) = (&q.company, index == "by_company") {
            filter("#company = :company", "#company", "company", s(co));
        }
        if let (Some(o), false) = (&q.owner, index == "by_owner") {
            filter("#owner = :owner", "#owner", "owner", s(o));
        }
        if q.pool && index != "by_owner" {
            filter("#pool = :pool", "#pool", "pool", AttributeValue::Bool(true));
        }
        if let Some(t) = &q.tag {
            filter("contains(#tags, :tags)", "#tags", "tags", s(t));
        }
        if let Some(t) = q.created_since {
            filter(
                "#created_at >= :created_at",
                "#created_at",
                "created_at",
                n(t),
            );
        }
        if let Some(t) = q.updated_since {
            filter(
                "#updated_at >= :updated_at",
                "#updated_at",
                "updated_at",
                n(t),
            );
        }
        if let Some(t) = q.overdue_at {
            filter(
                "(#overdue = :overdue OR #deadline <= :deadline)",
                "#deadline",
                "deadline",
                n(t),
            );
        }
        if let Some(t) = q.no_followup_since {
            filter(
                "(attribute_not_exists(#followup_at) OR #followup_at < :followup_at)",
                "#followup_at",
                "followup_at",
                n(t),
            );
        }
        if q.overdue_at.is_some() {
            names.insert("#overdue".into(), "overdue".into());
            values.insert(":overdue".into(), AttributeValue::Bool(true));
        }
        let filter_expr = (!filters.is_empty()).then(|| filters.join(" AND "));
        let mut out = Vec::new();
        let mut start = None;
        while out.len() < q.limit {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(&condition)
                .set_filter_expression(filter_expr.clone())
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .limit((q.limit - out.len()).clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(sdk_error)?;
            for i in r.items.unwrap_or_default() {
                out.push(Listed {
                    lead: lead_of(&i)?,
                    summary: summary_of(&i)?,
                });
            }
            start = r.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.truncate(q.limit);
        Ok(out)
    }

    async fn score_history(
        &self,
        lead: &str,
        since: Micros,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        let (minute, day) = history_slots(since);
        let points = |kind: &'static str, from: Micros| {
            let values = HashMap::from([
                (":pk".to_string(), s(pk(lead))),
                (":lo".to_string(), s(format!("HIST#{kind}#{from:020}"))),
                (":hi".to_string(), s(format!("HIST#{kind}#~"))),
            ]);
            async move {
                let items = self
                    .query_all(
                        None,
                        "PK = :pk AND SK BETWEEN :lo AND :hi",
                        values,
                        None,
                        true,
                    )
                    .await?;
                items
                    .iter()
                    .map(|i| HistoryPoint::parse(get_n(i, "at")?, get_s(i, "body")?))
                    .filter(|p| p.as_ref().map_or(true, |p| p.at >= since))
                    .collect::<Result<Vec<_>, _>>()
            }
        };
        let fine = points("m", minute).await?;
        let daily = points("d", day).await?;
        let mut prior = Vec::new();
        for (kind, slot) in [("m", minute), ("d", day)] {
            // The newest point of the kind before `since`: at most two items back (the
            // slot holding `since` may hold a write from before it).
            let values = HashMap::from([
                (":pk".to_string(), s(pk(lead))),
                (":lo".to_string(), s(format!("HIST#{kind}#"))),
                (":hi".to_string(), s(format!("HIST#{kind}#{slot:020}"))),
            ]);
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(false)
                .limit(2)
                .consistent_read(true)
                .send()
                .await
                .map_err(sdk_error)?;
            for i in r.items.unwrap_or_default() {
                let p = HistoryPoint::parse(get_n(&i, "at")?, get_s(&i, "body")?)?;
                if p.at < since {
                    prior.push(p);
                    break;
                }
            }
        }
        Ok(history_merge(prior, fine, daily))
    }

    async fn release(&self, lead: &str) -> Result<bool, StoreError> {
        let Some(item) = self.get(key(pk(lead), STATE)).await? else {
            return Ok(false);
        };
        let version = get_n(&item, "version")?;
        let state = serde_json::from_str(get_s(&item, "state")?).map_err(|e| {
            StoreError::Corrupt(format!("stored state of {lead} is unreadable: {e}"))
        })?;
        let Some((state, owner)) = released(state) else {
            return Ok(false);
        };
        let desk = self.desk().await?;
        let mut record = desk.record;
        record.release(&owner);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(lead), STATE)))
            .update_expression("SET #s = :s, version = :n")
            .condition_expression("version = :v")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":s", s(super::encode_state(lead, &state)?))
            .expression_attribute_values(":n", n(version + 1))
            .expression_attribute_values(":v", n(version))
            .build()
            .map_err(failed)?;
        let put = self.desk_put(&DeskWrite {
            expect: desk.version,
            record,
        })?;
        self.transact(vec![
            TransactWriteItem::builder().update(update).build(),
            put,
        ])
        .await?;
        Ok(true)
    }

    async fn shared_marks(&self, limit: usize) -> Result<Vec<Shared>, StoreError> {
        // The marks index holds every lead's marks under one key, in mark order: shared
        // marks are neighbours.
        let items = self
            .query_all(
                Some("by_mark"),
                "mkpk = :p",
                HashMap::from([(":p".to_string(), s("MARKS"))]),
                None,
                false,
            )
            .await?;
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for i in &items {
            let Some((mark, lead)) = get_s(i, "mksk")?.split_once('\u{1f}') else {
                continue;
            };
            by.entry(mark.to_string())
                .or_default()
                .push(lead.to_string());
        }
        Ok(super::super::memory::shared(
            by.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
            limit,
        ))
    }

    async fn desk(&self) -> Result<DeskLoaded, StoreError> {
        Ok(match self.get(key(DESK, DESK)).await? {
            None => DeskLoaded::default(),
            Some(i) => DeskLoaded {
                record: DeskRecord::parse(get_s(&i, "body")?)?,
                version: Some(get_n(&i, "version")? as u64),
            },
        })
    }

    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError> {
        let items = self.partition(&pk(lead), None).await?;
        let mut erased = Erased::default();
        let mut keys = Vec::new();
        let mut last = Vec::new();
        for item in &items {
            let sk = get_s(item, "SK")?;
            let k = key(pk(lead), sk);
            if sk == STATE || sk == POINTER {
                erased.state |= sk == STATE;
                last.push(k);
                continue;
            }
            if sk.starts_with("EVT#") {
                erased.events += 1;
            } else if sk.starts_with("GRADE#") {
                erased.transitions += 1;
            } else if let Some(j) = joined_of(sk) {
                // The joined key's own items: a visitor's link and anonymous events, or a
                // merged lead's pointer (and anything a pending merge left there).
                erased.links += 1;
                let part = match &j {
                    Joined::Visitor(v) => vis(v),
                    Joined::Lead(b) => pk(b),
                };
                let theirs = self.partition(&part, None).await?;
                if let Joined::Lead(_) = j {
                    for i in &theirs {
                        let sk = get_s(i, "SK")?;
                        erased.events += usize::from(sk.starts_with("EVT#"));
                        erased.transitions += usize::from(sk.starts_with("GRADE#"));
                    }
                }
                keys.extend(Self::keys_of(&theirs)?);
            }
            keys.push(k);
        }
        // The state last: an erase cut short leaves a lead that is still there to be erased
        // again, never a state without its events.
        keys.extend(last);
        self.delete_keys(keys).await?;
        if erased != Erased::default() {
            let record: Item = HashMap::from([
                ("PK".into(), s(format!("ERASURE#{}", erasure_key(lead)))),
                ("SK".into(), s(format!("{at:020}"))),
                ("events".into(), n(erased.events)),
                ("transitions".into(), n(erased.transitions)),
            ]);
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(erased)
    }

    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(
                Some("due"),
                "due_pk = :d AND next_change <= :t",
                HashMap::from([(":d".into(), s("DUE")), (":t".into(), n(t))]),
                Some(limit),
                false,
            )
            .await?;
        items.iter().map(lead_of).collect()
    }

    fn max_events_per_commit(&self) -> usize {
        // Room for the state and the transitions the chunk may cause.
        40
    }
}

impl DynamoStore {
    /// The desk record's write, guarded by the version read (or by not existing yet).
    fn desk_put(&self, d: &DeskWrite) -> Result<TransactWriteItem, StoreError> {
        let item = HashMap::from([
            ("PK".into(), s(DESK)),
            ("SK".into(), s(DESK)),
            ("version".into(), n(d.expect.map_or(1, |v| v + 1))),
            ("body".into(), s(d.record.text())),
        ]);
        match d.expect {
            None => self.put(item, "attribute_not_exists(PK)", None),
            Some(v) => self.put(
                item,
                "version = :v",
                Some(HashMap::from([(":v".into(), n(v))])),
            ),
        }
    }
}
