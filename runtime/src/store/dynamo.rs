//! The DynamoDB store: the single-table design of DESIGN.md. Only this module knows item
//! shapes.
//!
//! | PK | SK | attributes |
//! |---|---|---|
//! | `LEAD#k` | `STATE` | `version`, `state` (JSON), `grade`, `score`, `scores`, `updated_at`, `program`, `ruleset`, `gpk`+`rank` (GSI `by_grade`), `apk`+`rank` (GSI `by_score`), `due_pk`+`next_change` (sparse GSI `due`) |
//! | `LEAD#k` | `EVT#id` | `at`, `seq`, `body` — the event is its own idempotency record |
//! | `LEAD#k` | `GRADE#at#seq` | `at`, `body` (one transition) |
//! | `ERASURE#sha256(k)` | `at` (20 digits) | `events`, `transitions` — an erasure, with no personal data |
//!
//! A lead's write is one `TransactWriteItems`: the state guarded by its version (or by not
//! existing yet), each event by `attribute_not_exists`. The service keeps a write within the
//! 100-action limit by committing a lead's larger batch in ordered chunks, each a full
//! read–apply–commit, so every chunk is consistent on its own and safe to retry.

use super::*;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

/// DynamoDB's limit on actions in one transaction.
pub const MAX_ACTIONS: usize = 100;
const STATE: &str = "STATE";

pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk(lead: &str) -> String {
    format!("LEAD#{lead}")
}

/// Sorts by score descending, then lead ascending, as a string.
fn rank(score: i64, lead: &str) -> String {
    format!("{:020}#{lead}", i128::from(i64::MAX) - i128::from(score))
}

fn get_s<'a>(item: &'a Item, k: &str) -> Result<&'a str, StoreError> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Failed(format!(
            "item attribute {k} is missing or not text"
        ))),
    }
}

fn get_n(item: &Item, k: &str) -> Result<i64, StoreError> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Failed(format!("item attribute {k} is not an integer"))),
        _ => Err(StoreError::Failed(format!(
            "item attribute {k} is missing or not a number"
        ))),
    }
}

fn json_of(text: &str) -> Result<Json, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Failed(format!("stored JSON is unreadable: {e}")))
}

/// Throttling, 5xx and transport failures may be retried; the rest is a failure.
fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("").to_string();
    let retryable = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || code.contains("Throttl")
        || code == "ProvisionedThroughputExceededException"
        || code == "RequestLimitExceeded"
        || code == "InternalServerError"
        || code == "ServiceUnavailable";
    let msg = format!("{code}: {}", e.message().unwrap_or("no message"));
    if retryable {
        StoreError::Unavailable(msg)
    } else {
        StoreError::Failed(msg)
    }
}

fn summary_of(item: &Item) -> Result<Summary, StoreError> {
    let Json::Object(scores) = json_of(get_s(item, "scores")?)? else {
        return Err(StoreError::Failed("stored scores are not an object".into()));
    };
    Ok(Summary {
        grade: get_s(item, "grade").ok().map(str::to_string),
        score: get_n(item, "score")?,
        scores,
        next_change: get_n(item, "next_change").ok(),
        updated_at: get_n(item, "updated_at")?,
        // Items written before summaries named their rules have neither.
        program: get_s(item, "program").unwrap_or_default().to_string(),
        ruleset: get_s(item, "ruleset").unwrap_or_default().to_string(),
    })
}

fn lead_of(item: &Item) -> Result<String, StoreError> {
    Ok(get_s(item, "PK")?.trim_start_matches("LEAD#").to_string())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Creates the table with its indexes (on-demand) — for tests and local use;
    /// deployments create it from template.yaml.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t)
                .build()
                .expect("complete")
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .expect("complete")
        };
        let gsi = |name: &str, hash: &str, range: &str, p: ProjectionType| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(Projection::builder().projection_type(p).build())
                .build()
                .expect("complete")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("PK", ScalarAttributeType::S))
            .attribute_definitions(attr("SK", ScalarAttributeType::S))
            .attribute_definitions(attr("gpk", ScalarAttributeType::S))
            .attribute_definitions(attr("apk", ScalarAttributeType::S))
            .attribute_definitions(attr("rank", ScalarAttributeType::S))
            .attribute_definitions(attr("due_pk", ScalarAttributeType::S))
            .attribute_definitions(attr("next_change", ScalarAttributeType::N))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(gsi("by_grade", "gpk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_score", "apk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi(
                "due",
                "due_pk",
                "next_change",
                ProjectionType::KeysOnly,
            ))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    fn put(
        &self,
        item: Item,
        condition: &str,
        values: Option<Item>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
        limit: Option<usize>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .set_limit(limit.map(|l| (l - out.len()).min(i32::MAX as usize) as i32))
                .set_consistent_read(consistent.then_some(true))
                .send()
                .await
                .map_err(sdk_error)?;
            out.extend(r.items.unwrap_or_default());
            start = r.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| out.len() >= l) {
                return Ok(out);
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn load(
        &self,
        lead: &str,
        ids: &[String],
    ) -> Result<(Option<Loaded>, Vec<String>), StoreError> {
        let key = |sk: String| -> Item {
            HashMap::from([("PK".into(), s(pk(lead))), ("SK".into(), s(sk))])
        };
        let mut wanted: Vec<Item> = vec![key(STATE.into())];
        wanted.extend(ids.iter().map(|id| key(format!("EVT#{id}"))));
        let mut loaded = None;
        let mut seen = Vec::new();
        // BatchGetItem takes 100 keys; consistent reads, unprocessed keys retried.
        for chunk in wanted.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
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
                            StoreError::Failed(format!("stored state of {lead} is unreadable: {e}"))
                        })?;
                        loaded = Some(Loaded {
                            state,
                            version: get_n(&item, "version")? as u64,
                        });
                    } else if let Some(id) = sk.strip_prefix("EVT#") {
                        seen.push(id.to_string());
                    }
                }
                pending = r
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        // In request order.
        seen.sort_by_key(|id| ids.iter().position(|x| x == id));
        Ok((loaded, seen))
    }

    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :evt)",
                HashMap::from([(":pk".into(), s(pk(lead))), (":evt".into(), s("EVT#"))]),
                None,
                true,
            )
            .await?;
        let mut out = items
            .iter()
            .map(|i| {
                Ok(StoredEvent {
                    id: get_s(i, "SK")?.trim_start_matches("EVT#").to_string(),
                    at: get_n(i, "at")?,
                    seq: get_n(i, "seq")? as u64,
                    json: json_of(get_s(i, "body")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|e| (e.at, e.seq));
        Ok(out)
    }

    async fn commit(&self, w: Write) -> Result<(), StoreError> {
        let actions = 1 + w.events.len() + w.transitions.len();
        if actions > MAX_ACTIONS {
            return Err(StoreError::Failed(format!(
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
            (
                "state".into(),
                s(serde_json::to_string(&w.state)
                    .map_err(|e| StoreError::Failed(e.to_string()))?),
            ),
            ("score".into(), n(sm.score)),
            (
                "scores".into(),
                s(Json::Object(sm.scores.clone()).to_string()),
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
            let item = HashMap::from([
                ("PK".into(), s(&lead_pk)),
                ("SK".into(), s(format!("EVT#{}", e.id))),
                ("at".into(), n(e.at)),
                ("seq".into(), n(e.seq)),
                ("body".into(), s(e.json.to_string())),
            ]);
            items.push(self.put(item, "attribute_not_exists(PK)", None)?);
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
                ("body".into(), s(t.json.to_string())),
            ]);
            items.push(self.put(item, "attribute_not_exists(PK)", None)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.code().unwrap_or("").to_string();
                if code == "TransactionCanceledException" {
                    let msg = e.message().unwrap_or("").to_string();
                    if msg.contains("Throttl") || msg.contains("ProvisionedThroughput") {
                        return Err(StoreError::Unavailable(msg));
                    }
                    // A failed condition (version moved, event present) or a concurrent
                    // transaction on the same items: re-read and retry.
                    return Err(StoreError::Conflict);
                }
                if code == "TransactionConflictException" {
                    return Err(StoreError::Conflict);
                }
                Err(sdk_error(e))
            }
        }
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
            .map(|i| {
                Ok(StoredTransition {
                    at: get_n(i, "at")?,
                    json: json_of(get_s(i, "body")?)?,
                })
            })
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
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let items = self
            .query_all(
                None,
                "PK = :pk",
                HashMap::from([(":pk".into(), s(pk(lead)))]),
                None,
                true,
            )
            .await?;
        let mut erased = Erased::default();
        let mut keys = Vec::new();
        let mut state = None;
        for item in &items {
            let sk = get_s(item, "SK")?;
            let key: Item = HashMap::from([("PK".into(), s(pk(lead))), ("SK".into(), s(sk))]);
            if sk == STATE {
                erased.state = true;
                state = Some(key);
                continue;
            }
            if sk.starts_with("EVT#") {
                erased.events += 1;
            } else {
                erased.transitions += 1;
            }
            keys.push(key);
        }
        // Events and transitions first, the state last: an erase cut short leaves a lead
        // that is still there to be erased again, never a state without its events.
        keys.extend(state);
        for chunk in keys.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map_err(|e| StoreError::Failed(e.to_string()))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            while !pending.is_empty() {
                let r = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = r
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
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
