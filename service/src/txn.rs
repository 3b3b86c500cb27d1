//! The lead transaction: the one read → apply → commit cycle every write of a lead goes
//! through — ingest, joins (stitching, merges), the time sweep and rescoring.
//!
//! [`Service::transact`] takes the lead's turn (the striped lock), reads it with the ids
//! asked for, follows a merge pointer (finishing a join cut short), applies a [`Change`]
//! with the engine of the rules that score the lead, and commits conditionally on the
//! version read; a conflict with another writer is retried from a fresh read with backoff.
//! A batch larger than the store commits at once goes in ordered chunks, each a whole
//! transaction, consistent on its own: a failure between chunks leaves a correct lead and a
//! retry counts nothing twice.
//!
//! What differs between the writes is only [`Change`]: how the engine moves the lead.

use super::outbox::{self, Before};
use super::{desk, Summary};
use super::{
    rekey, stored_event, stored_transitions, summarize, Incoming, Rules, Service, ServiceError,
    MAX_HOPS,
};
use backon::Retryable;
use leadscore_runtime::engine::{Cause, Engine, Transition};
use leadscore_runtime::event::Event;
use leadscore_runtime::state::LeadState;
use leadscore_runtime::time::Micros;
use leadscore_runtime::view::{LeadScores, TransitionView};
use leadscore_store::{
    DeskWrite, Found, HistoryPoint, Marks, Pointer, StoreError, StoredEvent, Write,
};

/// How a transaction moves a lead.
pub(super) enum Change<'a> {
    /// New events, applied in arrival order; a late one (or one stored ahead of the clock
    /// coming due) has the lead rebuilt from its whole history.
    Ingest,
    /// Events joining the lead whatever their instants (a visitor's history, a merged
    /// lead's): rebuilt from everything, one transition for the change of grade.
    Join(&'a JoinCause),
    /// No events: what time alone changes (the sweep). A lead of other rules is rescored.
    Sweep,
    /// No events: a lead made by other rules brought up to the running ones.
    Rescore,
}

/// Why a join's lead changed grade.
pub(super) enum JoinCause {
    /// The event that made the visitor known (a form post, an identified beacon).
    Event(String, Micros),
    /// The lead with this key was merged in.
    Merge(String),
}

impl Done {
    /// The lead after the change, which a change carrying events always has.
    pub fn shown(self) -> Result<LeadScores, ServiceError> {
        let lead = self.lead;
        self.view
            .ok_or_else(|| ServiceError::Invariant(format!("{lead}: a write answered no lead")))
    }
}

impl Change<'_> {
    /// Whether the change carries events that belong to the lead wherever it went: a
    /// conflict is retried and a merge pointer followed. The sweep and rescoring give up
    /// instead — the writer that touched the lead meanwhile brought it up to date, and a
    /// merged lead is the merge's to finish.
    fn carries_events(&self) -> bool {
        matches!(self, Change::Ingest | Change::Join(_))
    }
}

/// What a transaction did.
#[derive(Debug, Default)]
pub(super) struct Done {
    /// The lead written (the key asked for, or the lead it was merged into).
    pub lead: String,
    /// New events stored and scored.
    pub accepted: usize,
    /// Ids already stored: accepted, not counted again.
    pub duplicates: Vec<String>,
    /// The lead's scores after the change, with every transition it recorded (`None` when
    /// there was no lead to change).
    pub view: Option<LeadScores>,
    /// Whether anything was committed.
    pub written: bool,
    /// A rescore changed the grade.
    pub regraded: bool,
}

/// One attempt on one chunk.
enum Step {
    Done(Box<Done>),
    Moved(Pointer),
}

/// What applying a change decided: write this, or answer without writing.
enum Plan<'a> {
    Write {
        state: LeadState,
        transitions: Vec<Transition>,
        fresh: Vec<&'a Incoming>,
        /// Whether the transitions notify (not for rescores, merges, backfills).
        notify: bool,
        /// The scores before, when score crossings are to be tested.
        before: Option<Before>,
        regraded: bool,
    },
    /// Nothing new (every event was stored before): the lead as it stands.
    Unchanged(LeadState),
    /// No lead, or nothing to do to it.
    Nothing,
}

impl<'a> Plan<'a> {
    fn write(
        state: LeadState,
        transitions: Vec<Transition>,
        fresh: Vec<&'a Incoming>,
        notify: bool,
        before: Option<Before>,
    ) -> Plan<'a> {
        Plan::Write {
            state,
            transitions,
            fresh,
            notify,
            before,
            regraded: false,
        }
    }
}

/// The lead as read, ready for the engine.
struct Read<'a> {
    lead: &'a str,
    found: Found,
    fresh: Vec<&'a Incoming>,
    now: Micros,
}

impl Service {
    /// Applies `change` with `events` to `lead` (whose key they carry): the transaction
    /// every write of a lead goes through (see the module's documentation).
    pub(super) async fn transact(
        &self,
        lead: &str,
        mut events: Vec<Incoming>,
        change: Change<'_>,
    ) -> Result<Done, ServiceError> {
        let mut lead = lead.to_string();
        let max = self.store.max_events_per_commit().max(1);
        let mut done = Done::default();
        let mut transitions: Vec<TransitionView> = Vec::new();
        let (mut start, mut hops) = (0, 0);
        loop {
            let end = (start + max).min(events.len());
            let step = {
                let _turn = self.lock(&lead).lock().await;
                self.attempts(&lead, &events[start..end], &change).await?
            };
            match step {
                Step::Done(part) => {
                    done.accepted += part.accepted;
                    done.duplicates.extend(part.duplicates);
                    done.written |= part.written;
                    done.regraded |= part.regraded;
                    if let Some(mut v) = part.view {
                        transitions.append(&mut v.transitions);
                        done.view = Some(v);
                    }
                    start = end;
                    if start >= events.len() {
                        break;
                    }
                }
                Step::Moved(_) if !change.carries_events() => break,
                Step::Moved(p) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(ServiceError::Hops { lead });
                    }
                    if p.pending {
                        Box::pin(self.finish_merge(&lead, &p.lead)).await?;
                    }
                    rekey(&mut events, &p.lead);
                    lead = p.lead;
                }
            }
        }
        if let Some(v) = done.view.as_mut() {
            v.transitions = transitions;
        }
        done.lead = lead;
        Ok(done)
    }

    /// One chunk, attempted again from a fresh read while it conflicts with another writer
    /// when the change carries events ([`super::conflict_backoff`]: writers that collided
    /// spread out instead of colliding again in step). Otherwise a conflict writes nothing.
    async fn attempts(
        &self,
        lead: &str,
        events: &[Incoming],
        change: &Change<'_>,
    ) -> Result<Step, ServiceError> {
        if !change.carries_events() {
            return match self.attempt(lead, events, change).await {
                Err(ServiceError::Store(StoreError::Conflict)) => {
                    ::metrics::counter!(crate::metrics::CONFLICTS).increment(1);
                    Ok(Step::Done(Box::default()))
                }
                other => other,
            };
        }
        (|| self.attempt(lead, events, change))
            .retry(super::conflict_backoff())
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, ServiceError::Store(StoreError::Conflict)))
            .notify(|_, _| super::conflicted())
            .await
    }

    /// Read, apply, commit.
    async fn attempt(
        &self,
        lead: &str,
        events: &[Incoming],
        change: &Change<'_>,
    ) -> Result<Step, ServiceError> {
        let ids: Vec<String> = events.iter().map(|e| e.event.id.clone()).collect();
        let found = self.store.load(lead, &ids).await?;
        if let Some(p) = found.merged_into {
            return Ok(Step::Moved(p));
        }
        let rules = self.rules_for(lead);
        let mut engine = Engine::with_hash(&rules.program, rules.hash.clone());
        let mut read = Read {
            lead,
            fresh: events
                .iter()
                .filter(|e| !found.seen.contains(&e.event.id))
                .collect(),
            found,
            now: self.now(),
        };
        let expect = read.found.lead.as_ref().map(|l| l.version);
        let first_seq = read.found.lead.as_ref().map_or(0, |l| l.state.events);
        // The ids stored before are the answer's duplicates; no plan reads them.
        let (now, duplicates) = (read.now, std::mem::take(&mut read.found.seen));
        let plan = match change {
            Change::Ingest => self.ingest_plan(&rules, &mut engine, read).await?,
            Change::Join(cause) => self.join_plan(&rules, &mut engine, read, cause).await?,
            Change::Sweep => self.sweep_plan(&rules, &mut engine, read).await?,
            Change::Rescore => self.rescore_plan(&mut engine, read).await?,
        };
        match plan {
            Plan::Nothing => Ok(Step::Done(Box::default())),
            Plan::Unchanged(state) => {
                let (_, view) = summarize(&rules, &mut engine, &state, now);
                Ok(Step::Done(Box::new(Done {
                    duplicates,
                    view: Some(view),
                    ..Done::default()
                })))
            }
            Plan::Write {
                mut state,
                transitions,
                fresh,
                notify,
                before,
                regraded,
            } => {
                let mut news = desk::News::default();
                let route = desk::follow(
                    &rules.program,
                    &self.roster,
                    &mut state,
                    &fresh,
                    now,
                    &mut news,
                );
                // The desk's record is read and written under the desk lock, so this
                // process's writers take turns instead of conflicting on it.
                let mut desk_turn = None;
                let mut desk_write = None;
                if let Some(route) = route {
                    let shared = desk::touches_record(&engine, &self.roster, &state, route, now);
                    if shared {
                        desk_turn = Some(self.desk_lock.lock().await);
                    }
                    let loaded = match shared {
                        true => self.store.desk().await?,
                        false => Default::default(),
                    };
                    let mut record = loaded.record.clone();
                    let cause = match change {
                        Change::Rescore => "rescore",
                        _ => "grade",
                    };
                    let company_owner = match desk::wants_company(&rules.program) {
                        true => self.company_owner(lead, &rules.program, &state).await?,
                        false => None,
                    };
                    desk::route(
                        &engine,
                        desk::Desked {
                            roster: &self.roster,
                            record: &mut record,
                            company_owner,
                        },
                        &mut state,
                        route,
                        cause,
                        now,
                        &mut news,
                    );
                    if record != loaded.record {
                        desk_write = Some(DeskWrite {
                            expect: loaded.version,
                            record,
                        });
                    } else {
                        // Nothing taken from the record: the decision stands as of the
                        // read, and other writers need not wait for this commit.
                        desk_turn = None;
                    }
                }
                let view = self
                    .commit_lead(
                        &rules,
                        &mut engine,
                        Commit {
                            lead,
                            expect,
                            first_seq,
                            events: &fresh,
                            notify,
                            before: before.as_ref(),
                            news: &news,
                            desk: desk_write,
                        },
                        state,
                        &transitions,
                        now,
                    )
                    .await?;
                drop(desk_turn);
                Ok(Step::Done(Box::new(Done {
                    accepted: fresh.len(),
                    duplicates,
                    view: Some(view),
                    written: true,
                    regraded,
                    ..Done::default()
                })))
            }
        }
    }

    /// New events in arrival order, incrementally while they come in order.
    async fn ingest_plan<'a>(
        &self,
        rules: &Rules,
        engine: &mut Engine<'_>,
        read: Read<'a>,
    ) -> Result<Plan<'a>, ServiceError> {
        let Read {
            lead,
            found,
            fresh,
            now,
        } = read;
        let exists = found.lead.is_some();
        let mut state = match found.lead {
            Some(l) => l.state,
            None => engine.new_lead(lead),
        };
        engine.attach(&mut state);
        if fresh.is_empty() {
            return Ok(Plan::Unchanged(state));
        }
        let before = Before::of_lead(rules, engine, exists.then_some(&state), now);
        let shadow_prev = state.shadow.take().map(|b| *b);
        let mut transitions: Vec<Transition> = Vec::new();
        let mut history = match engine.is_current(&state) {
            true => {
                self.catch_up(engine, lead, exists, &mut state, now, &mut transitions)
                    .await?
            }
            false => None,
        };
        for (i, inc) in fresh.iter().enumerate() {
            let e = &inc.event;
            if history.is_none() && engine.needs_history(&state, e, now) {
                // The whole history: what is stored, and this request's events so far.
                let mut h = self.history_events(lead, exists).await?;
                for earlier in &fresh[..i] {
                    insert_in_order(&mut h, &earlier.event);
                }
                history = Some(h);
            }
            if let Some(h) = history.as_mut() {
                insert_in_order(h, e);
            }
            engine
                .ingest(
                    &mut state,
                    history.as_deref().unwrap_or(&[]),
                    e,
                    now,
                    &mut transitions,
                )
                .map_err(ServiceError::engine(lead))?;
        }
        engine.advance(&mut state, now, &mut transitions);
        state.shadow = self
            .shadow_state(lead, shadow_prev, &fresh, history.as_deref(), exists, now)
            .await?;
        Ok(Plan::write(state, transitions, fresh, true, before))
    }

    /// Events joining the lead: rebuilt from the whole history with them, one transition
    /// if the grade changed.
    async fn join_plan<'a>(
        &self,
        rules: &Rules,
        engine: &mut Engine<'_>,
        read: Read<'a>,
        cause: &JoinCause,
    ) -> Result<Plan<'a>, ServiceError> {
        let Read {
            lead,
            found,
            fresh,
            now,
        } = read;
        let exists = found.lead.is_some();
        let frontier = found
            .lead
            .as_ref()
            .and_then(|l| l.state.logged_at.max(l.state.evaluated_at));
        let (grade_before, shadow_prev, before, kept) = match found.lead {
            Some(mut l) => {
                engine.attach(&mut l.state);
                let scores = Before::of_lead(rules, engine, Some(&l.state), now);
                (
                    l.state.grade_name.clone(),
                    l.state.shadow.map(|b| *b),
                    scores,
                    (
                        l.state.notified,
                        l.state.desk,
                        l.state.charted,
                        l.state.marks,
                    ),
                )
            }
            None => (
                None,
                None,
                Before::of_lead(rules, engine, None, now),
                Default::default(),
            ),
        };
        let mut history = self.history_events(lead, exists).await?;
        for inc in &fresh {
            insert_in_order(&mut history, &inc.event);
        }
        let mut state = engine
            .rebuild(lead, &history, now, &mut Vec::new())
            .map_err(ServiceError::engine(lead))?;
        // The log never gains an entry before what it already said, a `once`
        // notification already sent is not sent again, and the lead keeps its place on
        // the desk.
        state.logged_at = state.logged_at.max(frontier);
        (state.notified, state.desk, state.charted, state.marks) = kept;
        if fresh.is_empty() {
            return Ok(Plan::Unchanged(state));
        }
        let (at, why) = match cause {
            JoinCause::Event(id, at) => (
                (*at).max(frontier.unwrap_or(Micros::MIN)).min(now),
                Cause::Event(id.clone()),
            ),
            JoinCause::Merge(key) => (now, Cause::Merge(key.clone())),
        };
        let transitions: Vec<Transition> = engine
            .regrade(&mut state, grade_before.as_deref(), now, at, why)
            .into_iter()
            .collect();
        state.shadow = self
            .shadow_state(lead, shadow_prev, &fresh, Some(&history), exists, now)
            .await?;
        let notify = matches!(cause, JoinCause::Event(..));
        Ok(Plan::write(state, transitions, fresh, notify, before))
    }

    /// What time alone changed by now; a lead of other rules is rescored, as a request
    /// would.
    async fn sweep_plan<'a>(
        &self,
        rules: &Rules,
        engine: &mut Engine<'_>,
        read: Read<'a>,
    ) -> Result<Plan<'a>, ServiceError> {
        let Some(loaded) = read.found.lead else {
            return Ok(Plan::Nothing);
        };
        let (lead, now) = (read.lead, read.now);
        let mut state = loaded.state;
        let mut transitions = Vec::new();
        let mut before = None;
        if engine.is_current(&state) {
            engine.attach(&mut state);
            before = Before::of(rules, engine, &state, now);
            self.catch_up(engine, lead, true, &mut state, now, &mut transitions)
                .await?;
            engine.advance(&mut state, now, &mut transitions);
        } else {
            let history = self.history_events(lead, true).await?;
            engine
                .rescore(&mut state, &history, now, &mut transitions)
                .map_err(ServiceError::engine(lead))?;
        }
        Ok(Plan::write(state, transitions, Vec::new(), true, before))
    }

    /// A lead made by other rules, rebuilt with these (a `rescore` transition if its grade
    /// changed); a lead already on them is left alone.
    async fn rescore_plan<'a>(
        &self,
        engine: &mut Engine<'_>,
        read: Read<'a>,
    ) -> Result<Plan<'a>, ServiceError> {
        let Some(loaded) = read.found.lead else {
            return Ok(Plan::Nothing);
        };
        if engine.is_current(&loaded.state) {
            return Ok(Plan::Nothing);
        }
        let (lead, now) = (read.lead, read.now);
        let mut state = loaded.state;
        let history = self.history_events(lead, true).await?;
        let mut transitions = Vec::new();
        let regraded = engine
            .rescore(&mut state, &history, now, &mut transitions)
            .map_err(ServiceError::engine(lead))?;
        Ok(Plan::Write {
            state,
            transitions,
            fresh: Vec::new(),
            notify: false,
            before: None,
            regraded,
        })
    }

    /// Writes a lead with its new events (numbered from `first_seq` in arrival order) and
    /// transitions, in one conditional commit; returns its view with those transitions.
    async fn commit_lead(
        &self,
        rules: &Rules,
        engine: &mut Engine<'_>,
        c: Commit<'_>,
        mut state: LeadState,
        transitions: &[Transition],
        now: Micros,
    ) -> Result<LeadScores, ServiceError> {
        let (summary, mut view) = summarize(rules, engine, &state, now);
        let (history, day_point) = chart(&mut state, &summary, now);
        let marks = desk::marks(&rules.program, &state, summary.company.as_deref());
        let marks = (marks != state.marks).then(|| Marks {
            old: std::mem::replace(&mut state.marks, marks.clone()),
            new: marks,
        });
        let events = c
            .events
            .iter()
            .enumerate()
            .map(|(i, inc)| StoredEvent {
                id: inc.event.id.clone(),
                at: inc.event.at,
                seq: c.first_seq + i as u64,
                json: inc.json.clone(),
            })
            .collect();
        let notifications = if c.notify && !self.quiet {
            let version = c.expect.map_or(1, |v| v + 1);
            outbox::notifications(
                rules,
                engine,
                &mut state,
                version,
                outbox::News {
                    transitions,
                    desk: c.news,
                },
                c.before,
                now,
            )
        } else {
            Vec::new()
        };
        let transitions = stored_transitions(rules, transitions);
        view.transitions = transitions.iter().map(|t| t.view.clone()).collect();
        self.store
            .commit(Write {
                lead: c.lead.to_string(),
                expect: c.expect,
                state,
                summary,
                events,
                transitions,
                notifications,
                history,
                day_point,
                desk: c.desk,
                marks,
            })
            .await?;
        Ok(view)
    }

    /// Who owns the lead's company's other leads: the owner of the highest-scored one.
    async fn company_owner(
        &self,
        lead: &str,
        p: &leadscore_runtime::bytecode::Program,
        state: &LeadState,
    ) -> Result<Option<String>, ServiceError> {
        let Some(company) = desk::company(p, state) else {
            return Ok(None);
        };
        let rows = self
            .store
            .list(&leadscore_store::ListQuery {
                company: Some(company),
                limit: 50,
                ..Default::default()
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.lead != lead)
            .find_map(|r| r.summary.owner))
    }

    /// Takes in the events stored ahead of the clock that have come due by `now` (a lead
    /// on these rules); returns the history it read to do so, if it had to.
    async fn catch_up(
        &self,
        engine: &mut Engine<'_>,
        lead: &str,
        exists: bool,
        state: &mut LeadState,
        now: Micros,
        transitions: &mut Vec<Transition>,
    ) -> Result<Option<Vec<Event>>, ServiceError> {
        if !engine.pending_due(state, now) {
            return Ok(None);
        }
        let history = self.history_events(lead, exists).await?;
        engine
            .catch_up(state, &history, now, transitions)
            .map_err(ServiceError::engine(lead))?;
        Ok(Some(history))
    }

    /// The lead's stored events, parsed again.
    pub(super) async fn history_events(
        &self,
        lead: &str,
        exists: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        if !exists {
            return Ok(Vec::new());
        }
        self.store
            .history(lead)
            .await?
            .iter()
            .map(|s| stored_event(s, lead))
            .collect()
    }
}

/// A lead's new events and the version they are written against.
struct Commit<'a> {
    lead: &'a str,
    /// The version read, `None` for a new lead.
    expect: Option<u64>,
    /// The arrival number of the first new event.
    first_seq: u64,
    events: &'a [&'a Incoming],
    notify: bool,
    before: Option<&'a Before>,
    /// What the desk did.
    news: &'a desk::News,
    desk: Option<DeskWrite>,
}

/// The point of score history a write adds — none when the scores and grade are as the
/// last point had them — and, when it is the lead's first of a new day, the last point of
/// the day before (the day's point).
fn chart(
    state: &mut LeadState,
    s: &Summary,
    now: Micros,
) -> (Option<HistoryPoint>, Option<HistoryPoint>) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.score.hash(&mut h);
    s.grade.hash(&mut h);
    for (k, v) in &s.scores {
        (k, v).hash(&mut h);
    }
    let digest = h.finish();
    if state.charted.as_ref().is_some_and(|c| c.digest == digest) {
        return (None, None);
    }
    let point = HistoryPoint {
        at: now,
        score: s.score,
        scores: s.scores.clone(),
        grade: s.grade.clone(),
    };
    let day = |t: Micros| leadscore_store::history_slots(t).1;
    let day_point = state
        .charted
        .as_ref()
        .filter(|c| day(c.at) != day(now))
        .and_then(|c| HistoryPoint::parse(c.at, &c.point).ok());
    state.charted = Some(leadscore_runtime::state::Charted {
        digest,
        at: now,
        point: point.text(),
    });
    (Some(point), day_point)
}

/// Puts `e` into a history kept in `at` then arrival order (it arrived last).
pub(super) fn insert_in_order(h: &mut Vec<Event>, e: &Event) {
    let pos = h.partition_point(|x| x.at <= e.at);
    h.insert(pos, e.clone());
}

/// A stored event joining `lead`.
pub(super) fn incoming(s: &StoredEvent, lead: &str) -> Result<Incoming, ServiceError> {
    Ok(Incoming {
        event: stored_event(s, lead)?,
        json: s.json.clone(),
    })
}
