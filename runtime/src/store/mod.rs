//! Where leads live: a small, domain-typed `Store` trait and its implementations.
//!
//! The trait is shaped by the strictest store, DynamoDB (DESIGN.md, Storage): everything a
//! request does to one lead is one read ([`Store::load`]) and one atomic, conditional
//! write ([`Store::commit`]) guarded by the state's version and by each new event being
//! absent. No store type (SQL rows, SDK items) crosses this boundary.

#[cfg(feature = "dynamodb")]
pub mod dynamo;
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use crate::state::LeadState;
use crate::time::Micros;
use serde_json::Value as Json;

/// One event as stored in a lead's log: the request's JSON, so that a rebuild reads
/// exactly what was sent.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub id: String,
    pub at: Micros,
    /// Arrival order within the lead (ties on `at` replay in this order).
    pub seq: u64,
    pub json: Json,
}

/// One grade transition in a lead's log, in DESIGN.md's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTransition {
    pub at: Micros,
    pub json: Json,
}

/// What listings and the sweep read without decoding a state.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub grade: Option<String>,
    /// The sum of the lead's scores.
    pub score: i64,
    pub scores: serde_json::Map<String, Json>,
    /// When the lead's scores next change by time alone (for the sweep).
    pub next_change: Option<Micros>,
    pub updated_at: Micros,
    /// The hash of the rules that computed it, and their ruleset name.
    pub program: String,
    pub ruleset: String,
}

/// What [`Store::erase`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub state: bool,
    pub events: usize,
    pub transitions: usize,
}

/// The erasure record's key: the SHA-256 of the lead key (hex), so the record proves an
/// erasure without holding the person's identifier.
pub fn erasure_key(lead: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(lead.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stored lead and the version that guards its next write.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub state: LeadState,
    pub version: u64,
}

/// One lead's atomic write.
#[derive(Clone, Debug)]
pub struct Write {
    pub lead: String,
    /// The version read, or `None` when the lead must not exist yet.
    pub expect: Option<u64>,
    pub state: LeadState,
    pub summary: Summary,
    /// New events; the write fails with `Conflict` if any is already stored.
    pub events: Vec<StoredEvent>,
    pub transitions: Vec<StoredTransition>,
}

/// One row of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub lead: String,
    pub summary: Summary,
}

/// `GET /leads`: by score, highest first, ties by lead key.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub grade: Option<String>,
    pub limit: usize,
    /// Continue after this (score, lead).
    pub after: Option<(i64, String)>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The lead changed since it was read, or an event was stored meanwhile: re-read and
    /// try again.
    #[error("the lead changed concurrently")]
    Conflict,
    /// The store is overloaded or unreachable for now; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read (a bug or tampering), or the store failed for good.
    #[error("store failure: {0}")]
    Failed(String),
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The lead's state (if stored) and which of `ids` its log already holds.
    async fn load(
        &self,
        lead: &str,
        ids: &[String],
    ) -> Result<(Option<Loaded>, Vec<String>), StoreError>;

    /// The lead's whole event log, ordered by `at` then arrival.
    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// Writes one lead atomically: fails with [`StoreError::Conflict`] and changes nothing
    /// if the version moved or any new event is already stored. Returns once durable.
    async fn commit(&self, write: Write) -> Result<(), StoreError>;

    /// The lead's transitions, oldest first.
    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError>;

    /// Leads by score, highest first.
    async fn list(&self, query: &ListQuery) -> Result<Vec<Listed>, StoreError>;

    /// Leads whose scores change by time alone at or before `t` (the sweep's work).
    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Erases everything stored about the lead — state, events, transitions — and records
    /// the erasure without personal data (the SHA-256 of the key, when, how much). Erasing
    /// a lead that is not stored removes nothing and records nothing: idempotent.
    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError>;

    /// The most new events one [`Store::commit`] may carry; the service commits a lead's
    /// larger batch in ordered chunks of this size, each a full read, apply and commit.
    fn max_events_per_commit(&self) -> usize {
        usize::MAX
    }
}

#[cfg(test)]
mod tests;
