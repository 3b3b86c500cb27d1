//! The DynamoDB store: the single-table design of DESIGN.md. Only this module knows item
//! shapes.
//!
//! | PK | SK | attributes |
//! |---|---|---|
//! | `LEAD#k` | `STATE` | `version`, `state` (JSON), `grade`, `score`, `scores`, `updated_at`, `program`, `ruleset`, `gpk`+`rank` (GSI `by_grade`), `apk`+`rank` (GSI `by_score`), `due_pk`+`next_change` (sparse GSI `due`) |
//! | `LEAD#k` | `EVT#id` | `at`, `seq`, `body` — the event is its own idempotency record |
//! | `LEAD#k` | `GRADE#at#seq` | `at`, `body` (one transition) |
//! | `LEAD#k` | `POINTER` | `lead`, `pending`, `at` — `k` was merged into `lead` |
//! | `LEAD#k` | `REF#VIS#v` / `REF#LEAD#b` | a key that joined `k` (so erasure finds it) |
//! | `LEAD#k` | `NOTE#id` | `channel`, `created_at`, `body`, `status`, `attempts`, `next_at`, `last_error`, `due_pk` = `NOTE#<status>` + `next_change` (GSI `due`) — the outbox |
//! | `VIS#v` | `LINK` | `lead`, `pending`, `at` — the visitor became `lead` |
//! | `VIS#v` | `EVT#id` | `at`, `seq`, `body` — an anonymous visitor's event |
//! | `ERASURE#sha256(k)` | `at` (20 digits) | `events`, `transitions` — an erasure, with no personal data |
//!
//! A lead's write is one `TransactWriteItems`: the state guarded by its version (or by not
//! existing yet), each event by `attribute_not_exists`. The service keeps a write within the
//! 100-action limit by committing a lead's larger batch in ordered chunks, each a full
//! read–apply–commit, so every chunk is consistent on its own and safe to retry.

use super::*;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, PutRequest, ScalarAttributeType, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

/// DynamoDB's limit on actions in one transaction.
pub const MAX_ACTIONS: usize = 100;
const STATE: &str = "STATE";
const POINTER: &str = "POINTER";
const LINK: &str = "LINK";
/// How often a transaction cancelled by a concurrent one is tried again before the caller
/// is told to come back later.
const TRIES: u32 = 5;

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

fn vis(visitor: &str) -> String {
    format!("VIS#{visitor}")
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".into(), s(pk)), ("SK".into(), s(sk))])
}

/// The back-reference a lead keeps to a key that joined it.
fn ref_sk(j: &Joined) -> String {
    match j {
        Joined::Visitor(v) => format!("REF#VIS#{v}"),
        Joined::Lead(b) => format!("REF#LEAD#{b}"),
    }
}

fn joined_of(sk: &str) -> Option<Joined> {
    let r = sk.strip_prefix("REF#")?;
    if let Some(v) = r.strip_prefix("VIS#") {
        Some(Joined::Visitor(v.to_string()))
    } else {
        r.strip_prefix("LEAD#").map(|b| Joined::Lead(b.to_string()))
    }
}

fn pointer_of(item: &Item) -> Result<Pointer, StoreError> {
    Ok(Pointer {
        lead: get_s(item, "lead")?.to_string(),
        pending: matches!(item.get("pending"), Some(AttributeValue::Bool(true))),
    })
}

fn event_of(i: &Item) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        id: get_s(i, "SK")?.trim_start_matches("EVT#").to_string(),
        at: get_n(i, "at")?,
        seq: get_n(i, "seq")? as u64,
        json: json_of(get_s(i, "body")?)?,
    })
}

fn event_item(pk: &str, e: &StoredEvent) -> Item {
    HashMap::from([
        ("PK".into(), s(pk)),
        ("SK".into(), s(format!("EVT#{}", e.id))),
        ("at".into(), n(e.at)),
        ("seq".into(), n(e.seq)),
        ("body".into(), s(e.json.to_string())),
    ])
}

/// The `due` index's partition for notifications in a status.
fn note_due(status: NoteStatus) -> String {
    format!("NOTE#{}", status.name())
}

/// A new notification's item: pending, due at once.
fn note_item(pk: &str, note: &Notification) -> Item {
    HashMap::from([
        ("PK".into(), s(pk)),
        ("SK".into(), s(format!("NOTE#{}", note.id))),
        ("channel".into(), s(&note.channel)),
        ("created_at".into(), n(note.created_at)),
        ("body".into(), s(note.body.to_string())),
        ("status".into(), s(NoteStatus::Pending.name())),
        ("attempts".into(), n(0)),
        ("next_at".into(), n(note.created_at)),
        ("due_pk".into(), s(note_due(NoteStatus::Pending))),
        ("next_change".into(), n(note.created_at)),
    ])
}

fn outboxed(i: &Item) -> Result<Outboxed, StoreError> {
    let status = get_s(i, "status")?;
    Ok(Outboxed {
        note: Notification {
            id: get_s(i, "SK")?.trim_start_matches("NOTE#").to_string(),
            lead: lead_of(i)?,
            channel: get_s(i, "channel")?.to_string(),
            created_at: get_n(i, "created_at")?,
            body: json_of(get_s(i, "body")?)?,
        },
        status: NoteStatus::parse(status).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown notification status `{status}`"))
        })?,
        attempts: get_n(i, "attempts")? as u32,
        next_at: get_n(i, "next_at")?,
        last_error: get_s(i, "last_error").ok().map(str::to_string),
    })
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Sorts by score descending, then lead ascending, as a string.
fn rank(score: i64, lead: &str) -> String {
    format!("{:020}#{lead}", i128::from(i64::MAX) - i128::from(score))
}

fn get_s<'a>(item: &'a Item, k: &str) -> Result<&'a str, StoreError> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!(
            "item attribute {k} is missing or not text"
        ))),
    }
}

fn get_n(item: &Item, k: &str) -> Result<i64, StoreError> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("item attribute {k} is not an integer"))),
        _ => Err(StoreError::Backend(format!(
            "item attribute {k} is missing or not a number"
        ))),
    }
}

fn json_of(text: &str) -> Result<Json, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON: {e}")))
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
        StoreError::Backend(msg)
    }
}

fn summary_of(item: &Item) -> Result<Summary, StoreError> {
    let scores = serde_json::from_str(get_s(item, "scores")?)
        .map_err(|e| StoreError::Corrupt(format!("scores: {e}")))?;
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
            .map_err(failed)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put without a condition (idempotent: the same item again changes nothing).
    fn put_any(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(failed)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn absent(&self, k: Item) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(k))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(failed)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn update(
        &self,
        k: Item,
        expression: &str,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(k))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(failed)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One `TransactWriteItems`: a failed condition, or a transaction that met another on
    /// the same items, is a `Conflict`; throttling is `Unavailable`.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
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
                    return Err(StoreError::Conflict);
                }
                if code == "TransactionConflictException" {
                    return Err(StoreError::Conflict);
                }
                Err(sdk_error(e))
            }
        }
    }

    /// One item, read consistently.
    async fn get(&self, k: Item) -> Result<Option<Item>, StoreError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(r.item)
    }

    /// Every item of a partition, read consistently (`prefix` narrows the sort key).
    async fn partition(&self, pk: &str, prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut values = HashMap::from([(":pk".to_string(), s(pk))]);
        let condition = match prefix {
            Some(p) => {
                values.insert(":p".into(), s(p));
                "PK = :pk AND begins_with(SK, :p)"
            }
            None => "PK = :pk",
        };
        self.query_all(None, condition, values, None, true).await
    }

    /// Writes or deletes items in batches of 25, unprocessed ones retried.
    async fn batch(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
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
        Ok(())
    }

    async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .map_err(failed)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch(requests).await
    }

    async fn put_items(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|i| {
                let put = PutRequest::builder()
                    .set_item(Some(i))
                    .build()
                    .map_err(failed)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch(requests).await
    }

    /// The keys of every item in a partition.
    fn keys_of(items: &[Item]) -> Result<Vec<Item>, StoreError> {
        items
            .iter()
            .map(|i| Ok(key(get_s(i, "PK")?, get_s(i, "SK")?)))
            .collect()
    }

    /// Runs `f` until it does not conflict (`TRIES` times), then answers `Unavailable`.
    async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StoreError>>,
    {
        for attempt in 0..TRIES {
            if let Some(t) = f().await? {
                return Ok(t);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt + 1))).await;
        }
        Err(StoreError::Unavailable(
            "concurrent transactions kept cancelling this one".into(),
        ))
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
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
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
        match update.send().await {
            // Erased meanwhile: nothing to record.
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
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
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }
}
