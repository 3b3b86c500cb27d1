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

mod joins;
mod leads;
mod outbox;

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
/// The desk record's key (both parts).
const DESK: &str = "DESK";
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

/// Sorts by `updated_at` descending, then lead ascending.
fn updated_rank(updated_at: Micros, lead: &str) -> String {
    format!(
        "{:020}#{lead}",
        i128::from(i64::MAX) - i128::from(updated_at)
    )
}

/// Sorts by deadline ascending, then lead ascending.
fn deadline_rank(deadline: Micros, lead: &str) -> String {
    format!("{:020}#{lead}", i128::from(deadline) - i128::from(i64::MIN))
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

/// Whether a conditional write applied: `false` when its condition did not hold.
fn applied<T, E, R>(r: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_error(e)),
    }
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
        created_at: get_n(item, "created_at").ok(),
        tags: match item.get("tags") {
            Some(AttributeValue::L(l)) => l.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
            _ => Vec::new(),
        },
        owner: get_s(item, "owner").ok().map(str::to_string),
        pool: matches!(item.get("pool"), Some(AttributeValue::Bool(true))),
        deadline: get_n(item, "deadline").ok(),
        followup_at: get_n(item, "followup_at").ok(),
        overdue: matches!(item.get("overdue"), Some(AttributeValue::Bool(true))),
        company: get_s(item, "company").ok().map(str::to_string),
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
            .attribute_definitions(attr("opk", ScalarAttributeType::S))
            .attribute_definitions(attr("dlpk", ScalarAttributeType::S))
            .attribute_definitions(attr("dlrank", ScalarAttributeType::S))
            .attribute_definitions(attr("urank", ScalarAttributeType::S))
            .attribute_definitions(attr("cpk", ScalarAttributeType::S))
            .attribute_definitions(attr("mkpk", ScalarAttributeType::S))
            .attribute_definitions(attr("mksk", ScalarAttributeType::S))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(gsi("by_grade", "gpk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_score", "apk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_owner", "opk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_deadline", "dlpk", "dlrank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_updated", "apk", "urank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_company", "cpk", "rank", ProjectionType::All))
            .global_secondary_indexes(gsi("by_mark", "mkpk", "mksk", ProjectionType::KeysOnly))
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
