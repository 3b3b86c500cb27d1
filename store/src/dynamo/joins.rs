//! Joins: anonymous visitors linked and settled, leads redirected and retired.

use super::*;

#[async_trait::async_trait]
impl Joins for DynamoStore {
    async fn track(&self, visitor: &str, events: Vec<StoredEvent>) -> Result<Tracked, StoreError> {
        if events.len() >= MAX_ACTIONS {
            return Err(failed(format!(
                "{} events for one visitor; at most {}",
                events.len(),
                MAX_ACTIONS - 1
            )));
        }
        let part = vis(visitor);
        let mut events = events;
        let mut duplicates = Vec::new();
        for attempt in 0..TRIES {
            if events.is_empty() {
                break;
            }
            let mut items = vec![self.absent(key(&part, LINK))?];
            for e in &events {
                items.push(self.put(event_item(&part, e), "attribute_not_exists(PK)", None)?);
            }
            match self.transact(items).await {
                Ok(()) => return Ok(Tracked::Stored { duplicates }),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
            if let Some(link) = self.get(key(&part, LINK)).await? {
                return Ok(Tracked::Linked(pointer_of(&link)?));
            }
            // Some events are stored already: report them, store the rest.
            let mut rest = Vec::new();
            for e in events {
                if self
                    .get(key(&part, format!("EVT#{}", e.id)))
                    .await?
                    .is_some()
                {
                    duplicates.push(e.id);
                } else {
                    rest.push(e);
                }
            }
            events = rest;
            tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt + 1))).await;
        }
        if events.is_empty() {
            Ok(Tracked::Stored { duplicates })
        } else {
            Err(StoreError::Unavailable(
                "concurrent transactions kept cancelling this one".into(),
            ))
        }
    }

    async fn visitor(
        &self,
        visitor: &str,
    ) -> Result<(Option<Pointer>, Vec<StoredEvent>), StoreError> {
        let items = self.partition(&vis(visitor), None).await?;
        let mut link = None;
        let mut events = Vec::new();
        for i in &items {
            match get_s(i, "SK")? {
                LINK => link = Some(pointer_of(i)?),
                sk if sk.starts_with("EVT#") => events.push(event_of(i)?),
                _ => {}
            }
        }
        events.sort_by(|a, b| (a.at, a.seq, &a.id).cmp(&(b.at, b.seq, &b.id)));
        Ok((link, events))
    }

    async fn link(&self, visitor: &str, lead: &str, at: Micros) -> Result<Pointer, StoreError> {
        let part = vis(visitor);
        self.retrying(|| async {
            let link: Item = HashMap::from([
                ("PK".into(), s(&part)),
                ("SK".into(), s(LINK)),
                ("lead".into(), s(lead)),
                ("pending".into(), AttributeValue::Bool(true)),
                ("at".into(), n(at)),
            ]);
            let back = key(pk(lead), ref_sk(&Joined::Visitor(visitor.to_string())));
            let items = vec![
                self.put(link, "attribute_not_exists(PK)", None)?,
                self.put_any(back)?,
            ];
            match self.transact(items).await {
                Ok(()) => Ok(Some(Pointer {
                    lead: lead.to_string(),
                    pending: true,
                })),
                Err(StoreError::Conflict) => match self.get(key(&part, LINK)).await? {
                    Some(l) => Ok(Some(pointer_of(&l)?)),
                    None => Ok(None),
                },
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn settle(&self, visitor: &str) -> Result<(), StoreError> {
        let part = vis(visitor);
        let events = self.partition(&part, Some("EVT#")).await?;
        self.delete_keys(Self::keys_of(&events)?).await?;
        let done = self.update(
            key(&part, LINK),
            "SET pending = :f",
            "attribute_exists(PK)",
            HashMap::from([(":f".into(), AttributeValue::Bool(false))]),
        )?;
        match self.transact(vec![done]).await {
            // Erased meanwhile: nothing is left to settle.
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn redirect(
        &self,
        from: &str,
        to: &str,
        version: u64,
        at: Micros,
    ) -> Result<(), StoreError> {
        // The state leaves the listings and its version moves, so a writer that read it
        // before cannot commit to it any more.
        let state = self.update(
            key(pk(from), STATE),
            "SET version = version + :one REMOVE gpk, apk, due_pk",
            "version = :v",
            HashMap::from([(":one".into(), n(1)), (":v".into(), n(version))]),
        )?;
        let pointer: Item = HashMap::from([
            ("PK".into(), s(pk(from))),
            ("SK".into(), s(POINTER)),
            ("lead".into(), s(to)),
            ("pending".into(), AttributeValue::Bool(true)),
            ("at".into(), n(at)),
        ]);
        let back = key(pk(to), ref_sk(&Joined::Lead(from.to_string())));
        self.transact(vec![
            state,
            self.put(pointer, "attribute_not_exists(PK)", None)?,
            self.put_any(back)?,
        ])
        .await
    }

    async fn retire(&self, from: &str) -> Result<Retired, StoreError> {
        let Some(p) = self.get(key(pk(from), POINTER)).await? else {
            return Err(failed(format!("{from} was not merged")));
        };
        let p = pointer_of(&p)?;
        if !p.pending {
            return Ok(Retired::default());
        }
        let items = self.partition(&pk(from), None).await?;
        let mut retired = Retired::default();
        let mut moved = Vec::new();
        let mut gone = Vec::new();
        let mut state = Vec::new();
        for item in &items {
            let sk = get_s(item, "SK")?;
            // The outbox stays with the key its changes were about (erased with the lead).
            if sk == POINTER || sk.starts_with("NOTE#") {
                continue;
            }
            let k = key(pk(from), sk);
            if sk == STATE {
                state.push(k);
                continue;
            }
            if let Some(rest) = sk.strip_prefix("GRADE#") {
                // The same key on a retry: moving twice stores it once.
                let t = super::memory::moved_transition(
                    from,
                    StoredTransition::parse(get_n(item, "at")?, get_s(item, "body")?)?,
                );
                moved.push(HashMap::from([
                    ("PK".into(), s(pk(&p.lead))),
                    (
                        "SK".into(),
                        s(format!("GRADE#{:020}#M#{from}#{rest}", t.at)),
                    ),
                    ("at".into(), n(t.at)),
                    ("body".into(), s(t.text())),
                ]));
                retired.transitions += 1;
            } else if sk.starts_with("EVT#") {
                retired.events += 1;
            } else if let Some(j) = joined_of(sk) {
                // A key that had joined `from` now points at `from`'s lead.
                let item_key = match &j {
                    Joined::Visitor(v) => key(vis(v), LINK),
                    Joined::Lead(b) => key(pk(b), POINTER),
                };
                // `lead` is one of DynamoDB's reserved words: named through `#l`.
                let repoint = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(item_key))
                    .update_expression("SET #l = :l")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_names("#l", "lead")
                    .expression_attribute_values(":l", s(&p.lead))
                    .build()
                    .map_err(failed)?;
                let repoint = TransactWriteItem::builder().update(repoint).build();
                let back = self.put_any(key(pk(&p.lead), ref_sk(&j)))?;
                match self.transact(vec![repoint, back]).await {
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e),
                }
            }
            gone.push(k);
        }
        self.put_items(moved).await?;
        gone.extend(state);
        self.delete_keys(gone).await?;
        let done = self.update(
            key(pk(from), POINTER),
            "SET pending = :f",
            "attribute_exists(PK)",
            HashMap::from([(":f".into(), AttributeValue::Bool(false))]),
        )?;
        self.transact(vec![done]).await?;
        Ok(retired)
    }

    async fn joined(&self, lead: &str) -> Result<Vec<Joined>, StoreError> {
        let items = self.partition(&pk(lead), Some("REF#")).await?;
        let mut out: Vec<Joined> = items
            .iter()
            .filter_map(|i| get_s(i, "SK").ok().and_then(joined_of))
            .collect();
        out.sort();
        Ok(out)
    }
}
