//! A lead from its history: rebuilt from its events, brought up to the clock, an event
//! taken in or out of order, rescored with another program, regraded.

use super::*;

impl<'p> Engine<'p> {
    /// Builds a lead from its events (sorted by `at`, ties by arrival, duplicates already
    /// removed) and brings it up to `now`. Events after `now` are not applied.
    pub fn rebuild(
        &mut self,
        key: &str,
        events: &[Event],
        now: Micros,
        out: &mut Vec<Transition>,
    ) -> Result<LeadState, ApplyError> {
        let mut lead = self.new_lead(key);
        for e in events {
            if e.at <= now {
                self.apply(&mut lead, e, out)?;
            } else {
                defer(&mut lead, e.at);
            }
        }
        self.advance(&mut lead, now, out);
        Ok(lead)
    }

    /// Whether events stored ahead of the clock have come due by `now`: the lead is then
    /// brought up to date from its events ([`Engine::catch_up`]) before anything else.
    pub fn pending_due(&self, lead: &LeadState, now: Micros) -> bool {
        lead.pending.is_some_and(|p| p <= now)
    }

    /// Whether [`Engine::ingest`] of `event` at `now` reads `history`: the state is another
    /// program's, or the event is older than the lead's latest, or stored events that were
    /// ahead of the clock have come due.
    pub fn needs_history(&self, lead: &LeadState, event: &Event, now: Micros) -> bool {
        !self.is_current(lead)
            || (event.at <= now && (!self.in_order(lead, event.at) || self.pending_due(lead, now)))
    }

    /// Whether an event at `at` can be applied to the stored state as it is: not before
    /// the lead's latest event, and — when the lead was evaluated past `at` — with nothing
    /// that time changed from `at` to that instant (else what was recorded then may no
    /// longer hold, and the lead is rebuilt as for a late event).
    pub fn in_order(&self, lead: &LeadState, at: Micros) -> bool {
        if lead.last_at.is_some_and(|l| at < l) || lead.logged_at.is_some_and(|l| at < l) {
            return false;
        }
        match lead.evaluated_at {
            Some(e) if e >= at => self
                .next_change(lead, at.saturating_sub(1))
                .is_none_or(|c| c > e),
            _ => true,
        }
    }

    /// The instant the lead next needs re-evaluating: a time change, or a stored event
    /// coming due.
    pub fn next_due(&self, lead: &LeadState, now: Micros) -> Option<Micros> {
        match (self.next_change(lead, now), lead.pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes in the stored events that were ahead of the clock and have come due by `now`,
    /// as late events are taken in: the lead is rebuilt from `history` (every event, sorted
    /// by `at` then arrival) and one transition is reported if its grade is now another,
    /// caused by the first of them, at its `at` (or the instant the lead had been evaluated
    /// to, if that is later). Returns whether anything was due.
    pub fn catch_up(
        &mut self,
        lead: &mut LeadState,
        history: &[Event],
        now: Micros,
        out: &mut Vec<Transition>,
    ) -> Result<bool, ApplyError> {
        let Some(due) = lead.pending.filter(|_| self.pending_due(lead, now)) else {
            return Ok(false);
        };
        let before = lead.grade_name.clone();
        let at = lead.evaluated_at.map_or(due, |t| t.max(due)).min(now);
        let cause = history
            .iter()
            .find(|e| e.at == due)
            .map_or(Cause::Time, |e| Cause::Event(e.id.clone()));
        let rebuilt = self.rebuild(&lead.key, history, now, &mut Vec::new())?;
        replace(lead, rebuilt);
        out.extend(self.regrade(lead, before.as_deref(), now, at, cause));
        Ok(true)
    }

    /// Takes one new event into a stored lead. `history` is every event of the lead, the
    /// new one included, sorted by `at` then arrival. The event is applied directly when it
    /// can be. When the event is older than the lead's latest, the lead is rebuilt from
    /// `history` and one transition is reported if its grade is now another: caused by the
    /// event, at the event's instant or, if that is earlier, the instant the lead had been
    /// evaluated to (transitions already recorded stay as they are). When the state was made
    /// by another program, the lead is rebuilt with this one and one `rescore` transition
    /// is reported if the grade (by name) changed.
    pub fn ingest(
        &mut self,
        lead: &mut LeadState,
        history: &[Event],
        event: &Event,
        now: Micros,
        out: &mut Vec<Transition>,
    ) -> Result<Ingested, ApplyError> {
        let current = self.is_current(lead);
        if current && event.at > now {
            // Not happened yet (the sender's clock is ahead): stored, and taken in when
            // the clock reaches it.
            defer(lead, event.at);
            return Ok(Ingested::Pending);
        }
        if current && self.pending_due(lead, now) {
            self.catch_up(lead, history, now, out)?;
            return Ok(Ingested::Reordered);
        }
        if current && self.in_order(lead, event.at) {
            self.apply(lead, event, out)?;
            self.advance(lead, now, out);
            return Ok(Ingested::Applied);
        }
        if current {
            // The replay's own transitions are history that was recorded (or not) as it
            // happened; what is news is whether the grade is now another one: one
            // transition, never before what was already recorded.
            let before = lead.grade_name.clone();
            let at = lead.evaluated_at.map_or(event.at, |t| t.max(event.at));
            let rebuilt = self.rebuild(&lead.key, history, now, &mut Vec::new())?;
            replace(lead, rebuilt);
            let cause = Cause::Event(event.id.clone());
            out.extend(self.regrade(lead, before.as_deref(), now, at.min(now), cause));
            return Ok(Ingested::Reordered);
        }
        self.rescore(lead, history, now, out)?;
        Ok(Ingested::Rescored)
    }

    /// Rebuilds a lead stored by another program with this one from its `history`
    /// (sorted by `at` then arrival) and reports one `rescore` transition at `now` if its
    /// grade (by name) changed; the replay's own transitions are history, not news.
    /// Returns whether the grade changed.
    pub fn rescore(
        &mut self,
        lead: &mut LeadState,
        history: &[Event],
        now: Micros,
        out: &mut Vec<Transition>,
    ) -> Result<bool, ApplyError> {
        let rebuilt = self.rebuild(&lead.key, history, now, &mut Vec::new())?;
        let before = lead.grade_name.take();
        replace(lead, rebuilt);
        let change = self.regrade(lead, before.as_deref(), now, now, Cause::Rescore);
        let changed = change.is_some();
        out.extend(change);
        Ok(changed)
    }

    /// The one transition that sums up a change made all at once (a rescore, a join): from
    /// the grade the lead had before (by name, as another program may have named it) to the
    /// grade `lead` has at `now`, recorded at `at`; `None` when they are the same.
    pub fn regrade(
        &mut self,
        lead: &mut LeadState,
        before: Option<&str>,
        now: Micros,
        at: Micros,
        cause: Cause,
    ) -> Option<Transition> {
        let p = self.program;
        let from = before
            .and_then(|n| p.grades.iter().position(|g| g.name == n))
            .map(|g| GradeId(g as u32));
        let to = lead.grade.map(GradeId)?;
        if from == Some(to) {
            return None;
        }
        self.compute(lead, now, None);
        lead.logged_at = lead.logged_at.max(Some(at));
        Some(Transition {
            from,
            to,
            at,
            cause,
            scores: self.scores.clone(),
        })
    }
}
