//! Ingest and read, independent of HTTP and of the store: what `POST /events`,
//! `POST /forms/{form}`, `GET /leads…` and the time sweep do.
//!
//! Per lead, a request is one [`Store::load`], the engine, and one [`Store::commit`]
//! guarded by the version read. Requests for one lead in this process take turns (a
//! striped lock), so they rarely conflict; a conflict with another process is retried
//! from a fresh read.
//!
//! **Owns**: `Service` and its answers (`Outcome`, `LeadView`, `Merged`, `Rescored`,
//! `Exported`, …), `ServiceError`; the lead transaction (`txn.rs`); the deployment
//! configuration (`config`) and request signing (`signing`), shared by the router and the
//! notifier.
//!
//! **May depend on**: `leadscore-runtime` and `leadscore-store` (the trait, no adapter);
//! never on HTTP, the language or a database crate.
//!
//! **Invariants**: every write of a lead is one `Service::transact`; answers are typed
//! views, never JSON patched after the fact.

pub mod config;
mod desk;
mod events;
mod join;
pub mod metrics;
mod outbox;
mod reads;
pub use reads::{since, Company, CompanyLead, Duplicate, Queue, QueuePage, RISING_BUDGET};
mod shadow;
pub mod signing;
mod txn;

pub use desk::Roster;
pub use events::{parse_events, Incoming, Invalid, MAX_EVENTS, MAX_SKEW};
pub use join::{MergeError, Merged, Tracked};
pub use outbox::Retried;
use txn::Change;

use leadscore_runtime::bytecode::Program;
use leadscore_runtime::engine::{Engine, Transition};
use leadscore_runtime::event::Event;
use leadscore_runtime::keys::KeyPolicy;
use leadscore_runtime::state::LeadState;
use leadscore_runtime::time::{self, Micros};
use leadscore_runtime::view::{self, Explained, LeadDetail, LeadScores, TransitionView};
use leadscore_store::{
    Joined, ListQuery, Listed, Store, StoreError, StoredEvent, StoredTransition, Summary,
};
use serde::Serialize;
use serde_json::Value as Json;
use std::sync::{Arc, RwLock};

/// Why a service call failed: the store, or the data or engine on top of it — never
/// reported as one another.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine refused to apply an event to a lead: a bug in the service's bookkeeping
    /// (an event for another lead, or one out of order without its history), never the
    /// rules' or the store's doing.
    #[error("lead {lead}: {source}")]
    Engine {
        lead: String,
        #[source]
        source: leadscore_runtime::engine::ApplyError,
    },
    /// Something stored cannot be read back (tampering, or a bug that wrote it).
    #[error("lead {lead}: {what} is unreadable: {reason}")]
    Corrupt {
        lead: String,
        what: String,
        reason: String,
    },
    /// A chain of merged keys longer than merges make (they flatten chains).
    #[error("{lead}: more than {MAX_HOPS} merged keys in a row")]
    Hops { lead: String },
    /// The service's own bookkeeping broke (a bug, named in the message).
    #[error("{0}")]
    Invariant(String),
}

impl ServiceError {
    /// The message for the log: lead keys as their short hash ([`metrics::logged`]).
    pub fn logged(&self) -> String {
        use metrics::logged;
        match self {
            ServiceError::Store(e) => e.to_string(),
            ServiceError::Engine { lead, source } => format!("lead {}: {source}", logged(lead)),
            ServiceError::Corrupt { lead, what, reason } => {
                format!("lead {}: {what} is unreadable: {reason}", logged(lead))
            }
            ServiceError::Hops { lead } => {
                format!(
                    "{}: more than {MAX_HOPS} merged keys in a row",
                    logged(lead)
                )
            }
            ServiceError::Invariant(m) => m.clone(),
        }
    }

    fn engine(
        lead: &str,
    ) -> impl FnOnce(leadscore_runtime::engine::ApplyError) -> ServiceError + '_ {
        move |source| ServiceError::Engine {
            lead: lead.to_string(),
            source,
        }
    }
}

const LOCK_STRIPES: usize = 1024;
const MAX_ATTEMPTS: u32 = 8;

/// What a request did (its JSON is `POST /events`'s answer).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Events stored and scored.
    pub accepted: usize,
    /// Ids already stored (or repeated in the request): accepted, not counted again.
    pub duplicates: Vec<String>,
    /// Per lead touched, with the transitions the request recorded.
    pub leads: Vec<LeadScores>,
}

impl Outcome {
    pub fn to_json(&self) -> Json {
        view::to_json(self)
    }
}

/// What one page of [`Service::rescore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rescored {
    /// Leads rebuilt with the running program.
    pub rescored: usize,
    /// Of those, leads whose grade changed (a `rescore` transition each).
    pub changed_grade: usize,
    /// Leads already on the running program.
    pub current: usize,
    /// Where the next page starts; `None` when every lead was seen.
    pub next: Option<(i64, String)>,
    /// The leads rescored and those found current (a caller paging through every lead
    /// counts a lead met again on a later page once).
    pub rescored_leads: Vec<String>,
    pub current_leads: Vec<String>,
}

/// The running program and its hash.
pub struct Rules {
    pub program: Program,
    pub hash: String,
}

impl Rules {
    pub fn new(program: Program) -> Rules {
        let hash = program.hash_hex();
        Rules { program, hash }
    }
}

pub type Clock = Arc<dyn Fn() -> Micros + Send + Sync>;

/// What `GET /leads/{lead}` finds under a key.
#[derive(Clone, Debug, PartialEq)]
pub enum LeadView {
    Found(Box<LeadDetail>),
    /// The key was merged into this lead.
    Merged(String),
    Missing,
}

impl LeadView {
    /// The lead as `GET /leads/{lead}` answers it (its JSON), if the key holds a lead.
    pub fn found(self) -> Option<Json> {
        match self {
            LeadView::Found(v) => Some(view::to_json(&v)),
            _ => None,
        }
    }
}

/// Everything stored about a lead ([`Service::export`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exported {
    /// Every stored event, as it was sent.
    pub events: Vec<Json>,
    pub lead: LeadDetail,
    /// Lead keys merged into it.
    pub merged: Vec<String>,
    /// Visitor ids linked to it.
    pub visitors: Vec<String>,
}

/// How many pointers a key is followed through (merges flatten chains, so one is usual).
const MAX_HOPS: usize = 8;

pub struct Service {
    rules: RwLock<Arc<Rules>>,
    /// Rules scored alongside the live ones for every event, never causing transitions.
    shadow: RwLock<Option<Arc<Rules>>>,
    /// An A/B split: the variant's rules and its share of leads (basis points).
    variant: RwLock<Option<(Arc<Rules>, u32)>>,
    store: Arc<dyn Store>,
    locks: Vec<tokio::sync::Mutex<()>>,
    /// The people of the sales desk.
    roster: desk::Roster,
    /// Taken while the desk's shared record is read, changed and committed with a lead.
    desk_lock: tokio::sync::Mutex<()>,
    clock: Clock,
    keys: KeyPolicy,
    /// Backfills: transitions are recorded but notify nobody.
    quiet: bool,
}

/// A lead's scores at `now`, evaluated once: the summary the store keeps for listings and
/// the sweep, and the view a response shows (transitions are added by the caller).
fn summarize(
    rules: &Rules,
    engine: &mut Engine,
    state: &LeadState,
    now: Micros,
) -> (Summary, LeadScores) {
    let p = &rules.program;
    let e = engine.evaluate(state, now, None);
    let grade = view::grade(p, &e);
    let scores = view::scores(p, &e.scores);
    let mut tags = view::tags(p, &e);
    tags.extend(desk::tags(p, state, now));
    let on_desk = state.desk.as_deref();
    let next_change = [
        engine.next_due(state, now),
        desk::next_change(p, state, now),
    ]
    .into_iter()
    .flatten()
    .min();
    let summary = Summary {
        grade: Some(grade.clone()),
        score: e.total,
        scores: scores.clone(),
        next_change,
        updated_at: now,
        program: rules.hash.clone(),
        ruleset: p.name.clone(),
        created_at: state.first_at,
        tags: tags.clone(),
        owner: on_desk.and_then(|d| d.owner.clone()),
        pool: on_desk.is_some_and(|d| d.pool),
        deadline: on_desk.and_then(|d| d.next_due()),
        followup_at: on_desk.and_then(|d| d.followup_at),
        overdue: on_desk.is_some_and(|d| d.overdue(now)),
        company: desk::company(p, state),
    };
    let shown = LeadScores {
        contributions: None,
        grade,
        lead: state.key.clone(),
        open_questions: None,
        score: e.total,
        scores,
        tags,
        transitions: Vec::new(),
    };
    (summary, shown)
}

/// A stored event as the engine reads it, under the key it is stored under (the JSON keeps
/// the key it was sent with: a merged lead's, a visitor's).
fn stored_event(s: &StoredEvent, lead: &str) -> Result<Event, ServiceError> {
    let mut e = Event::from_json(&s.json).map_err(|e| ServiceError::Corrupt {
        lead: lead.to_string(),
        what: format!("stored event {}", s.id),
        reason: e.to_string(),
    })?;
    e.lead = lead.to_string();
    Ok(e)
}

/// Moves events to `lead` (the JSON, as sent, keeps its key).
fn rekey(events: &mut [Incoming], lead: &str) {
    for e in events {
        e.event.lead = lead.to_string();
    }
}

/// Transitions as stored: each names the rules that made it.
fn stored_transitions(rules: &Rules, transitions: &[Transition]) -> Vec<StoredTransition> {
    transitions
        .iter()
        .map(|t| StoredTransition {
            at: t.at,
            view: TransitionView {
                program: Some(rules.hash.clone()),
                ruleset: Some(rules.program.name.clone()),
                ..view::transition(&rules.program, t)
            },
        })
        .collect()
}

/// A lead's scores as some rules see them at `now`, with their explanation.
fn explained(rules: &Rules, engine: &mut Engine, state: &LeadState, now: Micros) -> Explained {
    let mut lines = Vec::new();
    let e = engine.evaluate(state, now, Some(&mut lines));
    Explained::new(&rules.program, &rules.hash, &e, &lines)
}

impl Service {
    pub fn new(program: Program, store: Arc<dyn Store>) -> Service {
        Service::with_clock(program, store, Arc::new(time::now))
    }

    /// With a clock of the caller's (tests move time).
    pub fn with_clock(program: Program, store: Arc<dyn Store>, clock: Clock) -> Service {
        Service {
            rules: RwLock::new(Arc::new(Rules::new(program))),
            shadow: RwLock::new(None),
            variant: RwLock::new(None),
            store,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            clock,
            keys: KeyPolicy::default(),
            quiet: false,
            roster: desk::Roster::default(),
            desk_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// With the sales desk's people (docs/desk.md); refused when the roster has teams and
    /// the rules assign to one it does not have. With no teams at all, every lead the
    /// rules assign to a team goes to the pool (`Roster::check` says so, for the log).
    pub fn with_roster(mut self, roster: desk::Roster) -> Result<Service, String> {
        if !roster.teams.is_empty() {
            roster.check(&self.rules().program)?;
        }
        self.roster = roster;
        Ok(self)
    }

    /// For backfills (`leadscore import`): what it stores notifies nobody.
    pub fn quiet(mut self) -> Service {
        self.quiet = true;
        self
    }

    /// With a key normalisation beyond trimming and lower-casing (docs/http-api.md, Keys).
    pub fn with_keys(mut self, keys: KeyPolicy) -> Service {
        self.keys = keys;
        self
    }

    /// The key a lead sent as `raw` is stored under.
    pub fn key(&self, raw: &str) -> String {
        self.keys.normalise(raw)
    }

    pub fn now(&self) -> Micros {
        (self.clock)()
    }

    /// The sales desk's people.
    pub fn roster(&self) -> &desk::Roster {
        &self.roster
    }

    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the running program; requests in flight finish with the old one, and each
    /// lead is rescored with the new one when next touched.
    pub fn set_program(&self, program: Program) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Rules::new(program));
    }

    /// Splits leads between the live rules and `program`: `share` basis points of leads
    /// (by [`leadscore_runtime::split::arm`] of their key) are scored by `program`, the rest by the
    /// live rules; `None` ends the split (its leads are rescored when next touched).
    pub fn set_variant(&self, variant: Option<(Program, u32)>) {
        *self.variant.write().unwrap_or_else(|p| p.into_inner()) =
            variant.map(|(p, share)| (Arc::new(Rules::new(p)), share));
    }

    /// The variant's rules and share, when leads are split.
    pub fn variant(&self) -> Option<(Arc<Rules>, u32)> {
        self.variant
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The lead's arm under the split, if any.
    pub fn arm(&self, lead: &str) -> Option<leadscore_runtime::split::Arm> {
        self.variant()
            .map(|(_, share)| leadscore_runtime::split::arm(lead, share))
    }

    /// The rules that score `lead`: the variant's for leads in its arm, else the live ones.
    pub fn rules_for(&self, lead: &str) -> Arc<Rules> {
        match self.variant() {
            Some((rules, share))
                if leadscore_runtime::split::arm(lead, share)
                    == leadscore_runtime::split::Arm::B =>
            {
                rules
            }
            _ => self.rules(),
        }
    }

    /// Runs `program` as the shadow (or stops the shadow with `None`): from now on every
    /// event is also scored by it and its view of the lead stored with the lead, shown by
    /// [`Service::lead`] beside the live one. It never records a transition.
    pub fn set_shadow(&self, program: Option<Program>) {
        *self.shadow.write().unwrap_or_else(|p| p.into_inner()) =
            program.map(|p| Arc::new(Rules::new(p)));
    }

    pub fn shadow_rules(&self) -> Option<Arc<Rules>> {
        self.shadow
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn lock(&self, lead: &str) -> &tokio::sync::Mutex<()> {
        // FNV-1a: cheap and stable.
        let h = lead.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        &self.locks[(h % LOCK_STRIPES as u64) as usize]
    }

    /// Stores and scores validated events. Ids repeated within the request or already
    /// stored are reported as duplicates and not counted again.
    pub async fn ingest(&self, incoming: Vec<Incoming>) -> Result<Outcome, ServiceError> {
        let started = std::time::Instant::now();
        let sent = incoming.len();
        let r = self.ingest_batch(incoming).await;
        ::metrics::histogram!(metrics::INGEST_DURATION).record(started.elapsed().as_secs_f64());
        match &r {
            Ok(out) => {
                metrics::events("accepted", out.accepted);
                metrics::events("duplicate", out.duplicates.len());
            }
            Err(_) => metrics::events("refused", sent),
        }
        r
    }

    async fn ingest_batch(&self, incoming: Vec<Incoming>) -> Result<Outcome, ServiceError> {
        let mut out = Outcome::default();
        let mut seen = std::collections::HashSet::new();
        let mut by_lead: Vec<(String, Vec<Incoming>)> = Vec::new();
        for mut inc in incoming {
            if !self.keys.is_plain() {
                inc.event.lead = self.key(&inc.event.lead);
            }
            if !seen.insert((inc.event.lead.clone(), inc.event.id.clone())) {
                out.duplicates.push(inc.event.id);
                continue;
            }
            match by_lead.iter_mut().find(|(k, _)| *k == inc.event.lead) {
                Some((_, v)) => v.push(inc),
                None => by_lead.push((inc.event.lead.clone(), vec![inc])),
            }
        }
        // Leads are independent: their writes may share one group commit.
        let results = futures_util::future::join_all(
            by_lead
                .into_iter()
                .map(|(lead, events)| async move { self.ingest_lead(&lead, events).await }),
        )
        .await;
        for r in results {
            let (accepted, duplicates, view) = r?;
            out.accepted += accepted;
            out.duplicates.extend(duplicates);
            out.leads.push(view);
        }
        Ok(out)
    }

    /// Writes one lead's events (their `event.lead` is `lead`); when the key was merged
    /// into another lead, they are written there (the merge finished first if it was cut
    /// short).
    async fn ingest_lead(
        &self,
        lead: &str,
        events: Vec<Incoming>,
    ) -> Result<(usize, Vec<String>, LeadScores), ServiceError> {
        let mut done = self.transact(lead, events, Change::Ingest).await?;
        let (accepted, duplicates) = (done.accepted, std::mem::take(&mut done.duplicates));
        Ok((accepted, duplicates, done.shown()?))
    }

    /// Erases everything stored about a lead (data rights), leaving only an erasure record
    /// without personal data: its state, events and transitions, the visitor ids linked to
    /// it and the keys merged into it. Erasing a merged key erases the lead it joined (the
    /// same person). Idempotent; an event arriving later starts a new lead.
    pub async fn erase(
        &self,
        lead: &str,
    ) -> Result<(String, leadscore_store::Erased), ServiceError> {
        let lead = self.resolve(lead).await?;
        let _turn = self.lock(&lead).lock().await;
        // Its owner's count first: a crash after leaves an unowned lead to erase again.
        self.release(&lead).await?;
        let erased = self.store.erase(&lead, self.now()).await?;
        Ok((lead, erased))
    }

    /// Rescoring after a rules change: brings up to `limit` stored leads made by another
    /// program up to this one, in listing order after `after`, recording a `rescore`
    /// transition for each whose grade changed. Leads already on this program are
    /// skipped, so an interrupted run resumes by running again. Returns what it did and
    /// where the next page starts (`None` when the listing is exhausted).
    pub async fn rescore(
        &self,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Rescored, ServiceError> {
        let page = self
            .store
            .list(&ListQuery {
                limit,
                after,
                ..ListQuery::default()
            })
            .await?;
        let mut done = Rescored {
            next: page
                .last()
                .filter(|_| page.len() == limit)
                .map(|l| (l.summary.score, l.lead.clone())),
            ..Rescored::default()
        };
        for listed in &page {
            let t = self
                .transact(&listed.lead, Vec::new(), Change::Rescore)
                .await?;
            if t.written {
                done.rescored += 1;
                done.changed_grade += usize::from(t.regraded);
                done.rescored_leads.push(listed.lead.clone());
            } else {
                // On these rules already, or touched meanwhile by a request that rescored it.
                done.current += 1;
                done.current_leads.push(listed.lead.clone());
            }
        }
        Ok(done)
    }

    /// Re-evaluates every lead whose scores change by time alone by `now`, recording the
    /// transitions (cause `time`). Returns how many leads were swept.
    pub async fn sweep(&self, limit: usize) -> Result<usize, ServiceError> {
        let now = self.now();
        let due = self.store.due(now, limit).await?;
        let mut n = 0;
        for lead in &due {
            // Not written when touched meanwhile: the request that did so brought it up to
            // date.
            n += usize::from(
                self.transact(lead, Vec::new(), Change::Sweep)
                    .await?
                    .written,
            );
        }
        metrics::swept(n, self.now());
        Ok(n)
    }
}

/// The pauses between attempts of a write that conflicted with another writer: doubling
/// from 1 ms up to 50 ms, each with random jitter, `MAX_ATTEMPTS` attempts in all.
impl Service {
    /// The lead stops counting against its owner on the desk (before it leaves the store),
    /// retried while another writer moves it or the desk's record.
    async fn release(&self, lead: &str) -> Result<bool, ServiceError> {
        use backon::Retryable;
        let _desk = self.desk_lock.lock().await;
        Ok((|| self.store.release(lead))
            .retry(conflict_backoff())
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, StoreError::Conflict))
            .notify(|_, _| conflicted())
            .await?)
    }
}

/// A write lost a race and is attempted again.
fn conflicted() {
    ::metrics::counter!(metrics::CONFLICTS).increment(1);
    ::metrics::counter!(metrics::RETRIES).increment(1);
}

fn conflict_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(1))
        .with_max_delay(std::time::Duration::from_millis(50))
        .with_jitter()
        .with_max_times(MAX_ATTEMPTS as usize - 1)
}
