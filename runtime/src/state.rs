//! A lead's stored state: a cache of what its events imply, tagged with the program that
//! computed it and a format version so that later releases can migrate it.

use crate::bytecode::RuleId;
use crate::time::Micros;
use crate::value::Val;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The lead state format version. 3: rule state for `within D of`, `up to N per D` and
/// `distinct`, and the `notify … once` already sent.
pub const STATE_VERSION: u32 = 3;

/// What one event rule remembers about a lead. Bounded: `recent` holds at most
/// `max / points` timestamps for `expires` rules and `N` for `count >= N within` rules;
/// `capped` at most `N / points` for `up to N per D`; `seen` at most `max / points`;
/// `awards` at most 1,024 for a decaying rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Matching events (saturating).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Points taken from fields: their sum (`each`) or the first value (once).
    #[serde(default, skip_serializing_if = "is_zero_i")]
    pub sum: i64,
    /// The newest matching events' instants, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<Micros>,
    /// When a `count >= N within D` rule first held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<Micros>,
    /// `within D of TYPE`: the latest matching event of `TYPE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_at: Option<Micros>,
    /// `up to N per D`: the instants of the awards made in the last `D`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<Micros>,
    /// `distinct PROP`: the values already awarded (hashed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u64>,
    /// Decaying rules: each live award's instant and points (the newest 1,024; an award
    /// decayed to 0 is dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awards: Vec<(Micros, i64)>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeadState {
    pub version: u32,
    /// The normalised lead key.
    pub key: String,
    /// The hash of the program that computed this state (hex).
    pub program: String,
    /// Current attributes as sent (blank values included; `null` removed them).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The attributes whose value came from a public input (a form, the beacon): a later
    /// public input may change them, and may not change the others (docs/security.md).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub public: BTreeSet<String>,
    /// Per event rule, in the program's order.
    pub rules: Vec<(RuleId, RuleState)>,
    /// Per time rule (`after inactive for`), in the program's order: the points awarded
    /// in the inactivity spells that have ended (their size, capped by `max`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spells: Vec<(RuleId, i64)>,
    pub first_at: Option<Micros>,
    /// The latest event's instant: inactivity counts from here.
    pub last_at: Option<Micros>,
    /// Events applied.
    pub events: u64,
    /// The grade (index into the program's grades) as of `evaluated_at`.
    pub grade: Option<u32>,
    /// The grade's name, which survives a change of program.
    pub grade_name: Option<String>,
    pub evaluated_at: Option<Micros>,
    /// The instant of the latest transition recorded for the lead: an event before it is
    /// taken in by a rebuild, so that the log never gains an entry before what it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_at: Option<Micros>,
    /// The earliest stored event not applied yet because its `at` was after the clock when
    /// it arrived (senders' clocks run a little ahead): the lead is brought up to date from
    /// its events when the clock reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Micros>,
    /// The same lead as the shadow rules see it, when the service runs a shadow program:
    /// kept in step with every event, never the source of a transition. The engine never
    /// reads it and keeps it when it rebuilds the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Box<LeadState>>,
    /// The channels a `notify … once` statement has already sent to for this lead: no
    /// `once` statement sends to them again, whatever the rules are rescored to.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub notified: BTreeSet<String>,
    /// The lead's place on the sales desk: its owner, deadline, follow-ups. Kept with the
    /// lead like `notified`: who owns a lead depends on the other leads and on the order
    /// they came in, so it is never rebuilt from the lead's events (docs/desk.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk: Option<Box<Desk>>,
    /// The point last written to the lead's score history: a write that leaves the scores
    /// and grade as they were adds no point, and the first point of a new day closes the
    /// day before with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charted: Option<Charted>,
    /// What makes the lead likely the same person as another (`phone:…`, `name:…`), as
    /// last written to the store's duplicate index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<String>,
    /// Attributes by the program's field ids; rebuilt from `attributes` on load.
    #[serde(skip)]
    pub(crate) slots: Vec<Option<Val>>,
    /// Contributions kept between events so that an event costs what its own rules cost;
    /// rebuilt on load. Not part of the state's identity.
    #[serde(skip)]
    pub(crate) cache: Cache,
}

/// The last point of a lead's score history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charted {
    /// A digest of its scores and grade.
    pub digest: u64,
    pub at: Micros,
    /// The point as stored (`{"score", "scores", "grade"}`).
    pub point: String,
}

/// How many owner changes a lead keeps (the oldest are dropped first).
pub const MAX_OWNER_CHANGES: usize = 100;

/// A lead on the sales desk (docs/desk.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Desk {
    /// The grade the desk last placed the lead for: assignment runs when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// The `assign` statement that placed the lead, as written: a lead keeps its owner
    /// while its grade stays in the same statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Who owns the lead; `None`: the pool (or never assigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Assigned to nobody: in the lead pool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
    /// Won or lost (`[desk] closed_events`): no deadline, not counted against its owner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// Whether the lead counts against its owner's `max_active_per_owner`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<Micros>,
    /// The follow-up deadline set by `within` at assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Micros>,
    /// The latest follow-up since the assignment, and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup_at: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup_by: Option<String>,
    /// When the deadline passed with no follow-up; cleared by a follow-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_at: Option<Micros>,
    /// The follow-up plan's steps for the current owner (`assign … plan NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    /// The lead's owner changes, oldest first (at most [`MAX_OWNER_CHANGES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<OwnerChange>,
}

/// One step of a follow-up plan: due at `due`, met by a follow-up of its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `email`, `call`: met by a follow-up whose event type is this or starts with it
    /// and a dot.
    pub kind: String,
    pub due: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<Micros>,
    /// Its `task due` notification was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notified: bool,
}

impl Task {
    /// Whether a follow-up of this event type (folded) is of the task's kind.
    pub fn met_by(&self, event_type: &str) -> bool {
        event_type == self.kind
            || event_type
                .strip_prefix(self.kind.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

impl Desk {
    /// Whether the deadline passed unmet by `now`.
    /// Overdue once recorded (by the write that saw the deadline pass) until a follow-up,
    /// whatever the clock of the reader.
    pub fn overdue(&self, now: Micros) -> bool {
        self.open_deadline()
            .is_some_and(|d| d <= now || self.overdue_at.is_some())
    }

    /// The deadline while it is unmet (the lead owned and not closed).
    pub fn open_deadline(&self) -> Option<Micros> {
        self.deadline
            .filter(|_| self.owner.is_some() && !self.closed && !self.met())
    }

    /// The plan's steps not done yet.
    pub fn open_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| t.done_at.is_none())
    }

    /// What the owner must do next, by when: the earliest of the unmet deadline and the
    /// open tasks.
    pub fn next_due(&self) -> Option<Micros> {
        self.open_deadline()
            .into_iter()
            .chain(self.open_tasks().map(|t| t.due))
            .min()
    }

    /// Whether a follow-up came since the assignment.
    pub fn met(&self) -> bool {
        match (self.followup_at, self.assigned_at) {
            (Some(f), Some(a)) => f >= a,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Records an owner change (the oldest dropped past the bound).
    pub fn record(&mut self, change: OwnerChange) {
        if self.changes.len() >= MAX_OWNER_CHANGES {
            self.changes.remove(0);
        }
        self.changes.push(change);
    }
}

/// One change of a lead's owner, as `GET /leads/{lead}` shows it next to transitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChange {
    pub at: Micros,
    pub from_owner: Option<String>,
    pub to_owner: Option<String>,
    /// `grade` (the grade moved to another `assign`), `recycle`, `rescore`.
    pub cause: String,
    /// The `assign` statement that chose the new owner (`None` when released).
    pub line: Option<u32>,
    pub rule: Option<String>,
}

/// Cached contributions (see `Engine::compute_fast`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Cache {
    /// Whether the cache matches the rule states and attributes.
    pub valid: bool,
    /// Field rules' points as of the last attribute change.
    pub field: Vec<i64>,
    /// Each event rule's contribution (non-expiring rules; they change only on events).
    pub event: Vec<i64>,
    /// Per score: the sum of `event`.
    pub event_sum: Vec<i64>,
}

/// Two states are equal when they hold the same lead: the cache, `logged_at` and
/// `notified` (what the log and the channels were already told, which depends on how
/// events arrived) are not part of that.
impl PartialEq for LeadState {
    fn eq(&self, o: &Self) -> bool {
        self.version == o.version
            && self.key == o.key
            && self.program == o.program
            && self.attributes == o.attributes
            && self.public == o.public
            && self.rules == o.rules
            && self.spells == o.spells
            && self.first_at == o.first_at
            && self.last_at == o.last_at
            && self.events == o.events
            && self.grade == o.grade
            && self.grade_name == o.grade_name
            && self.evaluated_at == o.evaluated_at
            && self.pending == o.pending
            && self.shadow == o.shadow
    }
}
