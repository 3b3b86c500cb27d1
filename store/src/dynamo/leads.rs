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
        let actions = 1 + w.events.len() + w.transitions.len() + w.notifications.len();
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
        self.transact(items).await
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
        let (index, part_key, part) = match &q.grade {
            Some(g) => ("by_grade", "gpk", format!("GRADE#{g}")),
            None => ("by_score", "apk", "LEADS".to_string()),
        };
        let mut values = HashMap::from([(":p".into(), s(part))]);
        let (condition, names) = match &q.after {
            Some((score, lead)) => {
                values.insert(":r".into(), s(rank(*score, lead)));
                (
                    format!("{part_key} = :p AND #rank > :r"),
                    Some(HashMap::from([("#rank".to_string(), "rank".to_string())])),
                )
            }
            None => (format!("{part_key} = :p"), None),
        };
        let r = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(Some(values))
            .limit(q.limit.min(i32::MAX as usize) as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        r.items
            .unwrap_or_default()
            .iter()
            .map(|i| {
                Ok(Listed {
                    lead: lead_of(i)?,
                    summary: summary_of(i)?,
                })
            })
            .collect()
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
