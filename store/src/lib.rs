//! Where leads live: a small, domain-typed `Store` trait and its implementations.
//!
//! The trait is shaped by the strictest store, DynamoDB (DESIGN.md, Storage): everything a
//! request does to one lead is one read ([`Store::load`]) and one atomic, conditional
//! write ([`Store::commit`]) guarded by the state's version and by each new event being
//! absent. No store type (SQL rows, SDK items) crosses this boundary.
//!
//! **Owns**: the `Store` trait (lead log, joins, outbox), its records (`Summary`,
//! `StoredTransition`, `Notification`, …) and `StoreError` (`Conflict`, `Unavailable`,
//! `Corrupt`, `Backend`, `TooLarge`); `memory`, `sqlite` (feature `sqlite`) and `dynamo`
//! (feature `dynamodb`).
//!
//! **May depend on**: `leadscore-runtime` (lead state, typed views, limits) and the
//! databases' client crates; never on the service, HTTP or the language.
//!
//! **Invariants**: a commit is conditional and all-or-nothing; an event id is stored once;
//! a state or event over `limits` is refused before anything is written; every adapter
//! passes the one contract in `tests.rs`.

#[cfg(feature = "dynamodb")]
pub mod dynamo;
pub mod memory;

/// Store commits counted through the `metrics` facade (leadscore-service renders them).
pub mod metric {
    /// Commits (a group commit counts once).
    pub const COMMITS: &str = "leadscore_store_commits_total";
    /// Lead writes carried by one commit.
    pub const COMMIT_GROUP: &str = "leadscore_store_commit_group_size";

    /// One commit of `writes` lead writes.
    pub fn committed(writes: usize) {
        metrics::counter!(COMMITS).increment(1);
        metrics::histogram!(COMMIT_GROUP).record(writes as f64);
    }
}
#[cfg(feature = "sqlite")]
pub mod sqlite;

use leadscore_runtime::state::LeadState;
use leadscore_runtime::time::Micros;
use leadscore_runtime::view::{Scores, TransitionView};
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
    pub view: TransitionView,
}

impl StoredTransition {
    /// As stored: its JSON text.
    pub fn text(&self) -> String {
        serde_json::to_string(&self.view).unwrap_or_default()
    }

    /// Read back from its JSON text.
    pub fn parse(at: Micros, text: &str) -> Result<StoredTransition, StoreError> {
        let view = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("a transition: {e}")))?;
        Ok(StoredTransition { at, view })
    }
}

/// What listings and the sweep read without decoding a state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub grade: Option<String>,
    /// The sum of the lead's scores.
    pub score: i64,
    pub scores: Scores,
    /// When the lead's scores next change by time alone (for the sweep).
    pub next_change: Option<Micros>,
    pub updated_at: Micros,
    /// The hash of the rules that computed it, and their ruleset name.
    pub program: String,
    pub ruleset: String,
    /// The lead's first event.
    pub created_at: Option<Micros>,
    /// Its tags as of `updated_at`.
    pub tags: Vec<String>,
    /// Its owner on the sales desk (docs/desk.md); `pool`: assigned to nobody.
    pub owner: Option<String>,
    pub pool: bool,
    /// Its follow-up deadline while unmet (or its plan's next step).
    pub deadline: Option<Micros>,
    /// Its latest follow-up.
    pub followup_at: Option<Micros>,
    /// Its deadline was recorded as passed with no follow-up (until one comes).
    pub overdue: bool,
    /// Its company: the domain of its key or e-mail, unless a free-mail domain.
    pub company: Option<String>,
}

/// What makes two leads likely the same person (`phone:…`, `whatsapp:…`,
/// `name:…@company`), replaced when a write changes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Marks {
    /// The marks written before (so that a store keeping an item per mark removes them).
    pub old: Vec<String>,
    pub new: Vec<String>,
}

/// Leads sharing a mark, for `GET /duplicates`.
#[derive(Clone, Debug, PartialEq)]
pub struct Shared {
    pub mark: String,
    /// Sorted.
    pub leads: Vec<String>,
}

/// One point of a lead's score history: its scores after a write that changed them.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPoint {
    pub at: Micros,
    pub score: i64,
    pub scores: Scores,
    pub grade: Option<String>,
}

/// Score history is kept at a minute's resolution (the last write in each minute) for
/// [`HISTORY_FINE_DAYS`] days, and at a day's (the last write in each day, written with
/// the lead's first point of a later day) for ever.
pub const HISTORY_FINE_DAYS: i64 = 365;
pub const MINUTE: Micros = 60_000_000;
pub const DAY: Micros = 86_400_000_000;

impl HistoryPoint {
    /// As stored: `{"score", "scores", "grade"}`.
    pub fn text(&self) -> String {
        serde_json::json!({"score": self.score, "scores": self.scores, "grade": self.grade})
            .to_string()
    }

    pub fn parse(at: Micros, text: &str) -> Result<HistoryPoint, StoreError> {
        let v: Json = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("a history point: {e}")))?;
        let scores = serde_json::from_value(v["scores"].clone())
            .map_err(|e| StoreError::Corrupt(format!("a history point's scores: {e}")))?;
        Ok(HistoryPoint {
            at,
            score: v["score"].as_i64().unwrap_or(0),
            scores,
            grade: v["grade"].as_str().map(String::from),
        })
    }
}

/// A point's minute and day: the slots it replaces the last write of.
pub fn history_slots(at: Micros) -> (Micros, Micros) {
    (at.div_euclid(MINUTE) * MINUTE, at.div_euclid(DAY) * DAY)
}

/// A lead's history from its minute points and its day points (both oldest first, both
/// from `since` on): the day points before the first minute point's day, then the minute
/// points.
/// `prior`: the last point before `since` of either kind, which leads the history when
/// it is older than every point from `since` on.
pub fn history_merge(
    prior: Vec<HistoryPoint>,
    fine: Vec<HistoryPoint>,
    daily: Vec<HistoryPoint>,
) -> Vec<HistoryPoint> {
    // Minute points past the year before the newest are gone (or going: DynamoDB's time
    // to live removes them lazily); every store reads as if they were.
    let horizon = fine
        .last()
        .map_or(Micros::MIN, |p| p.at - HISTORY_FINE_DAYS * DAY);
    let fine: Vec<HistoryPoint> = fine.into_iter().filter(|p| p.at >= horizon).collect();
    let cutoff = fine.first().map_or(Micros::MAX, |p| history_slots(p.at).1);
    let mut out: Vec<HistoryPoint> = daily.into_iter().filter(|p| p.at < cutoff).collect();
    out.extend(fine);
    if let Some(p) = prior.into_iter().max_by_key(|p| p.at) {
        if out.first().is_none_or(|f| p.at < f.at) {
            out.insert(0, p);
        }
    }
    out
}

/// The desk's shared record: each team's round-robin turn and each owner's active leads.
/// Written in the same atomic commit as the lead whose assignment moves it, guarded by its
/// version, so two writers never take the same turn (docs/desk.md).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeskRecord {
    /// Per team: the member whose turn is next (an index into the team, taken modulo
    /// its size).
    pub turns: std::collections::BTreeMap<String, u64>,
    /// Per owner: the leads counting against `max_active_per_owner`.
    pub active: std::collections::BTreeMap<String, u64>,
}

impl DeskRecord {
    /// One lead fewer counts against `owner`.
    pub fn release(&mut self, owner: &str) {
        if let Some(n) = self.active.get_mut(owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active.remove(owner);
            }
        }
    }

    pub fn text(&self) -> String {
        serde_json::json!({"turns": self.turns, "active": self.active}).to_string()
    }

    pub fn parse(text: &str) -> Result<DeskRecord, StoreError> {
        let v: Json = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("the desk record: {e}")))?;
        let map = |k: &str| -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
            serde_json::from_value(v[k].clone())
                .map_err(|e| StoreError::Corrupt(format!("the desk record's {k}: {e}")))
        };
        Ok(DeskRecord {
            turns: map("turns")?,
            active: map("active")?,
        })
    }
}

/// The desk record as read, with the version that guards its next write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeskLoaded {
    pub record: DeskRecord,
    /// `None`: never written.
    pub version: Option<u64>,
}

/// A change of the desk record committed with a lead.
#[derive(Clone, Debug, PartialEq)]
pub struct DeskWrite {
    /// The version read (`None`: it must not exist yet).
    pub expect: Option<u64>,
    pub record: DeskRecord,
}

/// What [`Store::erase`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub state: bool,
    pub events: usize,
    pub transitions: usize,
    /// Keys that had joined the lead: visitors linked to it (with any anonymous events
    /// still under them) and leads merged into it.
    pub links: usize,
}

/// Where a key's events went when it joined a lead: a visitor that became the lead, or a
/// lead merged into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    /// The lead the key joined.
    pub lead: String,
    /// The join is under way: some of the key's events may not be in `lead` yet. Whoever
    /// finds a pending pointer finishes the join (every step is idempotent).
    pub pending: bool,
}

/// A key that joined a lead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Joined {
    /// An anonymous visitor id (the tracking beacon's) linked to the lead.
    Visitor(String),
    /// A lead key merged into the lead.
    Lead(String),
}

/// What [`Store::load`] read: the lead, which of the asked ids its log holds, and where
/// the key points if it was merged into another lead.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub lead: Option<Loaded>,
    pub seen: Vec<String>,
    pub merged_into: Option<Pointer>,
}

/// What [`Store::track`] did with an anonymous visitor's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracked {
    /// Stored under the visitor; these ids were stored already and were not stored again.
    Stored { duplicates: Vec<String> },
    /// The visitor is linked to a lead: nothing was stored, the events belong to the lead.
    Linked(Pointer),
}

/// What [`Store::retire`] moved into the lead a merged key points to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retired {
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

/// The lead a key stands for: itself, or the lead it was merged into (pointers followed,
/// pending or not; at most 8).
pub async fn final_key(store: &dyn Store, key: &str) -> Result<String, StoreError> {
    let mut key = key.to_string();
    for _ in 0..8 {
        match store.load(&key, &[]).await?.merged_into {
            Some(p) => key = p.lead,
            None => return Ok(key),
        }
    }
    Err(StoreError::Backend(format!(
        "{key}: more than 8 merged keys in a row"
    )))
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
    /// Notifications of the transitions, into the outbox in the same commit.
    pub notifications: Vec<Notification>,
    /// A point of score history, when the write changed the lead's scores or grade.
    pub history: Option<HistoryPoint>,
    /// The last point of the day before, when this is the lead's first point of a new day:
    /// kept as the day's point (and the minute points past the year are dropped then).
    pub day_point: Option<HistoryPoint>,
    /// The desk record, when the write assigned or released the lead.
    pub desk: Option<DeskWrite>,
    /// The lead's duplicate marks, when the write changed them.
    pub marks: Option<Marks>,
}

/// A notification as the outbox keeps it: written in the same commit as the change it
/// tells of, delivered afterwards by a worker (docs/notifications.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Unique, and the idempotency key receivers see.
    pub id: String,
    pub lead: String,
    /// The channel's name (the full definition is in `body`).
    pub channel: String,
    pub created_at: Micros,
    /// The change and where it goes: everything a delivery needs but the secrets.
    pub body: Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoteStatus {
    /// To be delivered (again) at `next_at`.
    Pending,
    Delivered,
    /// Given up after the last attempt: the dead letter.
    Failed,
}

impl NoteStatus {
    pub fn name(self) -> &'static str {
        match self {
            NoteStatus::Pending => "pending",
            NoteStatus::Delivered => "delivered",
            NoteStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<NoteStatus> {
        [
            NoteStatus::Pending,
            NoteStatus::Delivered,
            NoteStatus::Failed,
        ]
        .into_iter()
        .find(|n| n.name() == s)
    }
}

/// A notification with its delivery state.
#[derive(Clone, Debug, PartialEq)]
pub struct Outboxed {
    pub note: Notification,
    pub status: NoteStatus,
    /// Delivery attempts begun.
    pub attempts: u32,
    /// Pending: when it is due; delivered or failed: when that happened.
    pub next_at: Micros,
    pub last_error: Option<String>,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    Delivered,
    /// Failed; try again at `next_at`.
    Retry {
        next_at: Micros,
        error: String,
    },
    /// Failed for the last time: kept as a dead letter.
    Failed {
        error: String,
    },
}

/// One row of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub lead: String,
    pub summary: Summary,
}

/// `GET /leads`: the leads that pass every filter given, in `sort` order, ties by lead key.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub grade: Option<String>,
    pub company: Option<String>,
    pub owner: Option<String>,
    /// Only leads in the pool (assigned to nobody).
    pub pool: bool,
    pub tag: Option<String>,
    /// First event at or after.
    pub created_since: Option<Micros>,
    pub updated_since: Option<Micros>,
    /// Only leads recorded overdue, or whose unmet deadline (or plan step) is at or
    /// before this instant.
    pub overdue_at: Option<Micros>,
    /// Only leads with no follow-up at or after this instant (never followed up included).
    pub no_followup_since: Option<Micros>,
    pub sort: Sort,
    pub limit: usize,
    /// Continue after this (sort key, lead): the score, `updated_at` or the deadline.
    pub after: Option<(i64, String)>,
}

/// A listing's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Highest score first.
    #[default]
    Score,
    /// Most recently updated first.
    Updated,
    /// Earliest deadline first (leads without one are left out).
    Deadline,
}

impl Sort {
    /// A row's key in this order.
    pub fn key(self, s: &Summary) -> i64 {
        match self {
            Sort::Score => s.score,
            Sort::Updated => s.updated_at,
            Sort::Deadline => s.deadline.unwrap_or(Micros::MAX),
        }
    }
}

impl ListQuery {
    /// Whether a lead passes the filters (the cursor aside).
    pub fn admits(&self, s: &Summary) -> bool {
        self.grade
            .as_ref()
            .is_none_or(|g| s.grade.as_ref() == Some(g))
            && self
                .company
                .as_ref()
                .is_none_or(|c| s.company.as_ref() == Some(c))
            && self
                .owner
                .as_ref()
                .is_none_or(|o| s.owner.as_ref() == Some(o))
            && (!self.pool || s.pool)
            && self.tag.as_ref().is_none_or(|t| s.tags.contains(t))
            && self
                .created_since
                .is_none_or(|t| s.created_at.is_some_and(|c| c >= t))
            && self.updated_since.is_none_or(|t| s.updated_at >= t)
            && self
                .overdue_at
                .is_none_or(|t| s.overdue || s.deadline.is_some_and(|d| d <= t))
            && self
                .no_followup_since
                .is_none_or(|t| s.followup_at.is_none_or(|f| f < t))
            && (self.sort != Sort::Deadline || s.deadline.is_some())
    }

    /// Whether a row comes after the cursor in this order.
    pub fn past(&self, lead: &str, s: &Summary) -> bool {
        let Some((k, after)) = &self.after else {
            return true;
        };
        let key = self.sort.key(s);
        match self.sort {
            Sort::Score | Sort::Updated => key < *k || (key == *k && lead > after.as_str()),
            Sort::Deadline => key > *k || (key == *k && lead > after.as_str()),
        }
    }
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
    /// Stored data cannot be read back (a bug that wrote it, or tampering).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The store failed in a way a retry will not mend (a refused request, a broken file).
    #[error("store failure: {0}")]
    Backend(String),
    /// The write would make a lead larger than every store may hold
    /// ([`leadscore_runtime::limits::MAX_STATE_BYTES`]); nothing of it was written.
    #[error("{0}")]
    TooLarge(String),
}

/// A released lead's state (the desk no longer counts it) and the owner it counted
/// against, when it did.
pub fn released(mut state: LeadState) -> Option<(LeadState, String)> {
    let desk = state.desk.as_mut().filter(|d| d.active)?;
    desk.active = false;
    let owner = desk.owner.clone()?;
    Some((state, owner))
}

/// A lead state as stored (JSON), refused when larger than any store may hold.
pub fn encode_state(
    lead: &str,
    state: &leadscore_runtime::state::LeadState,
) -> Result<String, StoreError> {
    let text = serde_json::to_string(state).map_err(|e| StoreError::Backend(e.to_string()))?;
    leadscore_runtime::limits::check_state(lead, text.len()).map_err(StoreError::TooLarge)?;
    Ok(text)
}

/// A lead's state, its event log and transitions, the listing by score and the sweep's
/// index: what scoring reads and writes.
#[async_trait::async_trait]
pub trait LeadLog: Send + Sync + 'static {
    /// The lead's state (if stored), which of `ids` its log already holds, and its
    /// pointer if the key was merged into another lead: one read.
    async fn load(&self, lead: &str, ids: &[String]) -> Result<Found, StoreError>;

    /// The lead's whole event log, ordered by `at` then arrival.
    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// Writes one lead atomically: fails with [`StoreError::Conflict`] and changes nothing
    /// if the version moved or any new event is already stored. Returns once durable.
    async fn commit(&self, write: Write) -> Result<(), StoreError>;

    /// The lead's transitions by `at`, ties in the order they were recorded.
    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError>;

    /// The leads a query admits, in its order, after its cursor.
    async fn list(&self, query: &ListQuery) -> Result<Vec<Listed>, StoreError>;

    /// The lead's score history from `since` on, oldest first — the point in force at
    /// `since` (the last before it) first, when there is one: the minute points while
    /// they are kept, the day points before.
    async fn score_history(
        &self,
        lead: &str,
        since: Micros,
    ) -> Result<Vec<HistoryPoint>, StoreError>;

    /// The desk's shared record (turns and active counts).
    async fn desk(&self) -> Result<DeskLoaded, StoreError>;

    /// Marks shared by two leads or more (leads merged away excluded), by mark, at most
    /// `limit` of them.
    async fn shared_marks(&self, limit: usize) -> Result<Vec<Shared>, StoreError>;

    /// Before a lead leaves the store (erased, merged away): if it counts against its
    /// owner on the desk, it stops, atomically with the desk's record (both guarded by
    /// their versions; `Conflict` when either moved). `false` when it did not count.
    async fn release(&self, lead: &str) -> Result<bool, StoreError>;

    /// Leads whose scores change by time alone at or before `t` (the sweep's work).
    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Erases everything stored about the lead — state, events, transitions, and the keys
    /// that joined it (visitor links with their anonymous events, pointers of leads merged
    /// into it) — and records the erasure without personal data (the SHA-256 of the key,
    /// when, how much). Erasing a lead that is not stored removes nothing and records
    /// nothing: idempotent.
    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError>;

    /// The most new events one [`Store::commit`] may carry; the service commits a lead's
    /// larger batch in ordered chunks of this size, each a full read, apply and commit.
    fn max_events_per_commit(&self) -> usize {
        usize::MAX
    }
}

/// Keys that join a lead: anonymous visitors stitched to the lead they become, leads
/// merged into another. Each join is a few idempotent steps (ARCHITECTURE.md).
#[async_trait::async_trait]
pub trait Joins: Send + Sync + 'static {
    /// Stores an anonymous visitor's events under the visitor, unless the visitor is
    /// linked to a lead (then nothing is stored and the link is returned). Atomic with
    /// [`Store::link`]: an event is never stored under a visitor once it is linked.
    async fn track(&self, visitor: &str, events: Vec<StoredEvent>) -> Result<Tracked, StoreError>;

    /// The visitor's link (if linked) and the anonymous events stored under it, ordered by
    /// `at` then arrival.
    async fn visitor(
        &self,
        visitor: &str,
    ) -> Result<(Option<Pointer>, Vec<StoredEvent>), StoreError>;

    /// Links the visitor to `lead` (pending, until [`Store::settle`]) unless it is linked
    /// already; returns the link in force, which may name another lead.
    async fn link(&self, visitor: &str, lead: &str, at: Micros) -> Result<Pointer, StoreError>;

    /// Ends a visitor's join once its events are in the lead: removes its anonymous events
    /// and marks the link settled. Idempotent.
    async fn settle(&self, visitor: &str) -> Result<(), StoreError>;

    /// Starts merging lead `from` into lead `to`: `from` becomes a pending pointer to `to`
    /// and its version moves, so that no writer that read it before can commit to it.
    /// `Conflict` if its version is not `version` or it points somewhere already.
    async fn redirect(
        &self,
        from: &str,
        to: &str,
        version: u64,
        at: Micros,
    ) -> Result<(), StoreError>;

    /// Ends a merge once `from`'s events are in its pointer's lead: moves `from`'s
    /// transitions there (each marked `merged_from`), re-points the keys that had joined
    /// `from`, removes `from`'s state and events and marks the pointer settled. Idempotent.
    async fn retire(&self, from: &str) -> Result<Retired, StoreError>;

    /// The keys that joined the lead (linked visitors, merged leads), sorted.
    async fn joined(&self, lead: &str) -> Result<Vec<Joined>, StoreError>;
}

/// Notifications, written in the same commit as the change they tell of, and their
/// delivery: claimed for an attempt (a lease), then finished.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Pending notifications due by `now`, oldest due first.
    async fn due_notes(&self, now: Micros, limit: usize) -> Result<Vec<Outboxed>, StoreError>;

    /// One notification.
    async fn note(&self, lead: &str, id: &str) -> Result<Option<Outboxed>, StoreError>;

    /// Takes a due notification for one attempt: only if it is still pending, due by
    /// `now` and at `attempts`; then its attempts count one more and it is not due again
    /// before `until` (a lease: a worker that dies mid-delivery leaves it to the next).
    /// `false`: another worker has it, or it is not due.
    async fn claim_note(
        &self,
        lead: &str,
        id: &str,
        attempts: u32,
        now: Micros,
        until: Micros,
    ) -> Result<bool, StoreError>;

    /// Records how the attempt ended (at `at`).
    async fn finish_note(
        &self,
        lead: &str,
        id: &str,
        outcome: Delivery,
        at: Micros,
    ) -> Result<(), StoreError>;

    /// Notifications in a status, by `next_at` then id, after the cursor.
    async fn notes(
        &self,
        status: NoteStatus,
        limit: usize,
        after: Option<(Micros, String)>,
    ) -> Result<Vec<Outboxed>, StoreError>;

    /// A failed notification back to pending, due at `now`, its attempts counted afresh.
    /// `false` when it is not a failed one.
    async fn requeue_note(&self, lead: &str, id: &str, now: Micros) -> Result<bool, StoreError>;
}

/// Everything a deployment stores: the lead log, joins and the outbox, on one backend
/// (memory, SQLite or DynamoDB), so that a lead's change and its notifications commit
/// together.
pub trait Store: LeadLog + Joins + Outbox {}

impl<T: LeadLog + Joins + Outbox + ?Sized> Store for T {}

#[cfg(test)]
mod tests;
