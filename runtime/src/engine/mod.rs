//! The scoring engine: applies events to lead state, evaluates scores, grades and tags at
//! any instant, records grade transitions and explains every point.

mod evaluate;
mod rebuild;

use crate::bytecode::*;
use crate::event::Event;
use crate::state::{Cache, LeadState, RuleState, STATE_VERSION};
use crate::time::{self, Micros};
use crate::value::{Text, Val};
use crate::vm::{eval, Env};
use std::collections::HashMap;

/// Why a grade changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The event with this id.
    Event(String),
    /// Time alone (an inactivity threshold, an expiry).
    Time,
    /// A new program.
    Rescore,
    /// Another lead (this key) was merged into the lead.
    Merge(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub from: Option<GradeId>,
    pub to: GradeId,
    pub at: Micros,
    pub cause: Cause,
    /// The named scores after the change.
    pub scores: Vec<i64>,
}

/// One line of an explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution {
    /// The rule, or `None` for the clamp of a `range`.
    pub rule: Option<RuleIndex>,
    pub score: ScoreId,
    pub points: i64,
}

/// Scores, grade and tags at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Named scores, clamped to their ranges.
    pub scores: Vec<i64>,
    pub total: i64,
    pub grade: GradeId,
    pub tags: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("event {id} is for lead {event_lead}, not {lead}")]
    WrongLead {
        id: String,
        event_lead: String,
        lead: String,
    },
    #[error("event {id} is older than the lead's latest event: rebuild the lead from its events")]
    OutOfOrder { id: String },
}

pub struct Engine<'p> {
    program: &'p Program,
    hash: String,
    fields: HashMap<&'p str, FieldId>,
    /// Every `inactive for` duration in the program, in microseconds.
    inactivity: Vec<Micros>,
    /// Per field rule: whether its condition reads the time (`inactive for`).
    timed_field: Vec<bool>,
    /// The event rules that expire or decay: the only ones time changes.
    timed: Vec<usize>,
    /// Whether a grade has `until` (the grade then depends on the path through time).
    holds: bool,
    /// Per event type (folded, sorted): the rules that wait for it (`within D of TYPE`).
    priors: Vec<(&'p str, Vec<usize>)>,
    /// Scratch: rule sums before clamping, clamped scores, their total.
    raw: Vec<i64>,
    scores: Vec<i64>,
    total: i64,
}

impl<'p> Engine<'p> {
    pub fn new(program: &'p Program) -> Engine<'p> {
        Engine::with_hash(program, program.hash_hex())
    }

    /// As [`Engine::new`] with the program's hash already known (hashing serialises the
    /// whole program: a service computes it once per program, not once per request).
    pub fn with_hash(program: &'p Program, hash: String) -> Engine<'p> {
        let fields = program
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), FieldId(i as u32)))
            .collect();
        let mut inactivity: Vec<Micros> = program
            .code
            .iter()
            .filter_map(|op| match op {
                Op::Inactive(s) => Some(time::seconds(*s)),
                _ => None,
            })
            .collect();
        inactivity.sort_unstable();
        inactivity.dedup();
        let timed_field = program
            .field_rules
            .iter()
            .map(|r| {
                program.code[r.cond.index()..]
                    .iter()
                    .take_while(|op| **op != Op::Return)
                    .any(|op| matches!(op, Op::Inactive(_)))
            })
            .collect();
        Engine {
            program,
            hash,
            fields,
            inactivity,
            timed_field,
            timed: (0..program.event_rules.len())
                .filter(|&i| program.event_rules[i].is_timed())
                .collect(),
            holds: program.grades.iter().any(|g| g.until.is_some()),
            priors: priors(program),
            raw: vec![0; program.scores.len()],
            scores: vec![0; program.scores.len()],
            total: 0,
        }
    }

    pub fn program(&self) -> &'p Program {
        self.program
    }

    /// The program's hash, as stored in lead state.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn new_lead(&self, key: &str) -> LeadState {
        let mut lead = LeadState {
            version: STATE_VERSION,
            key: key.to_string(),
            program: self.hash.clone(),
            attributes: serde_json::Map::new(),
            public: Default::default(),
            rules: self
                .program
                .event_rules
                .iter()
                .map(|r| (r.id, RuleState::default()))
                .collect(),
            spells: self.program.time_rules.iter().map(|r| (r.id, 0)).collect(),
            first_at: None,
            last_at: None,
            events: 0,
            grade: None,
            grade_name: None,
            evaluated_at: None,
            pending: None,
            logged_at: None,
            shadow: None,
            notified: Default::default(),
            desk: None,
            charted: None,
            marks: Vec::new(),
            slots: Vec::new(),
            cache: Cache::default(),
        };
        self.key_slots(&mut lead.slots, key);
        lead
    }

    /// Empties the attribute slots (reusing their memory), but for the lead's key where
    /// the rules read it.
    fn key_slots(&self, slots: &mut Vec<Option<Val>>, key: &str) {
        slots.clear();
        slots.resize(self.program.fields.len(), None);
        if let Some(&f) = self.fields.get(KEY_FIELD) {
            slots[f.index()] = (!crate::text::is_blank(key)).then(|| Val::Text(Text::new(key)));
        }
    }

    /// Whether a stored state was made by this program (and format); if not, the lead is
    /// rebuilt from its events.
    pub fn is_current(&self, lead: &LeadState) -> bool {
        lead.version == STATE_VERSION
            && lead.program == self.hash
            && lead.rules.len() == self.program.event_rules.len()
            && lead.spells.len() == self.program.time_rules.len()
    }

    /// Rebuilds the attribute slots of a deserialised state.
    pub fn attach(&self, lead: &mut LeadState) {
        lead.cache.valid = false;
        self.key_slots(&mut lead.slots, &lead.key);
        for (k, v) in &lead.attributes {
            if let Some(&f) = self.fields.get(k.as_str()) {
                lead.slots[f.index()] = Val::from_json(v).ok().flatten();
            }
        }
    }

    /// Applies one event (its `at` not before the lead's latest), recording the time
    /// transitions before it and the transition it causes.
    pub fn apply(
        &mut self,
        lead: &mut LeadState,
        event: &Event,
        out: &mut Vec<Transition>,
    ) -> Result<(), ApplyError> {
        if event.lead != lead.key {
            return Err(ApplyError::WrongLead {
                id: event.id.clone(),
                event_lead: event.lead.clone(),
                lead: lead.key.clone(),
            });
        }
        if lead.last_at.is_some_and(|l| event.at < l) {
            return Err(ApplyError::OutOfOrder {
                id: event.id.clone(),
            });
        }
        self.advance_before(lead, event.at, out);
        if !lead.cache.valid {
            self.fill_cache(lead, event.at);
        }
        let mut attrs_changed = false;
        for (k, v) in &event.attributes {
            if k == KEY_FIELD {
                // The lead's key is the lead's, whatever an event says.
                continue;
            }
            if event.public {
                // A public input adds what no trusted sender said, and never sets a
                // protected field (docs/security.md).
                let trusted = lead.attributes.contains_key(k) && !lead.public.contains(k);
                if trusted || self.program.is_protected(k) {
                    continue;
                }
            }
            match event.raw_attributes.get(k) {
                Some(serde_json::Value::Null) | None => {
                    lead.attributes.remove(k);
                    lead.public.remove(k);
                }
                Some(raw) => {
                    lead.attributes.insert(k.clone(), raw.clone());
                    if event.public {
                        lead.public.insert(k.clone());
                    } else {
                        lead.public.remove(k);
                    }
                }
            };
            if let Some(&f) = self.fields.get(k.as_str()) {
                lead.slots[f.index()] = v.clone();
                attrs_changed = true;
            }
        }
        if let Some(last) = lead.last_at {
            // The event ends the inactivity spell: what time awarded in it before the
            // event's instant is kept.
            for (tr, (_, done)) in self.program.time_rules.iter().zip(&mut lead.spells) {
                *done = spell_total(tr, *done, last, event.at, false);
            }
        }
        lead.first_at.get_or_insert(event.at);
        lead.last_at = Some(event.at);
        lead.events += 1;
        let p = self.program;
        let env = Env {
            program: p,
            attrs: &lead.slots,
            event: Some(event),
            scores: &[],
            total: 0,
            grade: None,
            now: event.at,
            last_at: event.at,
        };
        if !self.priors.is_empty() {
            if let Ok(k) = self
                .priors
                .binary_search_by(|(t, _)| (*t).cmp(event.event_type.as_str()))
            {
                for &i in &self.priors[k].1 {
                    let prior = p.event_rules[i].prior.as_ref();
                    if prior.is_some_and(|pr| pr.cond.is_none_or(|c| eval(&env, c))) {
                        lead.rules[i].1.prior_at = Some(event.at);
                    }
                }
            }
        }
        let mut reset: Vec<ScoreId> = Vec::new();
        for &i in p.rules_for(&event.event_type) {
            let rule = &p.event_rules[i as usize];
            let st = &mut lead.rules[i as usize].1;
            let after = rule.prior.as_ref().is_none_or(|pr| {
                st.prior_at
                    .is_some_and(|t| t >= event.at.saturating_sub(time::seconds(pr.seconds)))
            });
            if !after || !rule.cond.is_none_or(|c| eval(&env, c)) {
                continue;
            }
            if rule.reset {
                reset.push(rule.score);
                continue;
            }
            let value = match rule.points.amount {
                Amount::Const(_) => Some(0),
                Amount::Prop(f) => event.prop(&p.fields[f.index()]).and_then(Val::points),
                Amount::Attr(f) => lead.slots[f.index()].as_ref().and_then(Val::points),
            };
            let distinct = match rule.distinct {
                Some(f) => match event.prop(&p.fields[f.index()]) {
                    Some(v) => Some(distinct_key(v)),
                    // An event without the prop does not award.
                    None => continue,
                },
                None => None,
            };
            if let Some(value) = value {
                if record(rule, st, event.at, value, distinct) && !rule.is_timed() {
                    let new = contribution(rule, st, event.at);
                    let c = &mut lead.cache;
                    let old = std::mem::replace(&mut c.event[i as usize], new);
                    let s = &mut c.event_sum[rule.score.index()];
                    *s = s.saturating_sub(old).saturating_add(new);
                }
            }
        }
        if !reset.is_empty() {
            self.reset(lead, &reset);
        }
        if attrs_changed {
            self.fill_fields(lead, event.at);
        }
        let grade = self.compute_fast(lead, event.at);
        self.transition(
            lead,
            grade,
            event.at,
            || Cause::Event(event.id.clone()),
            out,
        );
        lead.evaluated_at = Some(event.at);
        Ok(())
    }

    /// `reset SCORE` at an event: every other event rule of the score starts afresh (what
    /// it awarded, counted, capped or saw), the event's own awards included, and the
    /// score's time awards are forgotten; field rules and what a `within … of` rule waits
    /// for are kept.
    fn reset(&mut self, lead: &mut LeadState, scores: &[ScoreId]) {
        let p = self.program;
        for (tr, (_, done)) in p.time_rules.iter().zip(&mut lead.spells) {
            if scores.contains(&tr.score) {
                *done = 0;
            }
        }
        for (i, r) in p.event_rules.iter().enumerate() {
            if r.reset || !scores.contains(&r.score) {
                continue;
            }
            let st = &mut lead.rules[i].1;
            *st = RuleState {
                prior_at: st.prior_at,
                ..RuleState::default()
            };
            if !r.is_timed() {
                let c = &mut lead.cache;
                let old = std::mem::take(&mut c.event[i]);
                let s = &mut c.event_sum[r.score.index()];
                *s = s.saturating_sub(old);
            }
        }
    }

    /// Brings the lead up to `now`, recording a transition at each instant in between where
    /// time alone changed the grade.
    pub fn advance(&mut self, lead: &mut LeadState, now: Micros, out: &mut Vec<Transition>) {
        self.advance_to(lead, now, true, out);
    }

    fn advance_before(&mut self, lead: &mut LeadState, t: Micros, out: &mut Vec<Transition>) {
        self.advance_to(lead, t, false, out);
    }

    fn advance_to(
        &mut self,
        lead: &mut LeadState,
        until: Micros,
        inclusive: bool,
        out: &mut Vec<Transition>,
    ) {
        let Some(mut from) = lead.evaluated_at else {
            return;
        };
        while let Some(c) = self.next_change(lead, from) {
            if c > until || (c == until && !inclusive) {
                break;
            }
            if !lead.cache.valid {
                self.fill_cache(lead, c);
            }
            let grade = self.compute_fast(lead, c);
            self.transition(lead, grade, c, || Cause::Time, out);
            from = c;
            lead.evaluated_at = Some(c);
        }
        if inclusive && until > from {
            lead.evaluated_at = Some(until);
        }
    }

    /// The first instant after `t` at which time alone may change the lead's scores or
    /// grade: an inactivity threshold or an award's expiry.
    pub fn next_change(&self, lead: &LeadState, t: Micros) -> Option<Micros> {
        let mut next: Option<Micros> = None;
        let mut consider = |c: Micros| {
            if c > t && next.is_none_or(|n| c < n) {
                next = Some(c);
            }
        };
        if let Some(last) = lead.last_at {
            for d in &self.inactivity {
                consider(last.saturating_add(*d));
            }
        }
        for &i in &self.timed {
            let r = &self.program.event_rules[i];
            let st = &lead.rules[i].1;
            if let Some(secs) = r.expires {
                for at in &st.recent {
                    consider(at.saturating_add(time::seconds(secs)));
                }
            }
            if let Some(d) = r.decay {
                // The edge is cheap to find; whether the award is still worth something
                // (and so changes there) is checked only for an edge that would be next.
                let mut best: Option<Micros> = None;
                for (at, x) in awards(r, st) {
                    let c = decay_edge(d, at, t);
                    if best.is_none_or(|b| c < b) && decayed(x, d, at, c - period(d)) != 0 {
                        best = Some(c);
                    }
                }
                if let Some(c) = best {
                    consider(c);
                }
            }
        }
        if let Some(last) = lead.last_at {
            for (tr, (_, done)) in self.program.time_rules.iter().zip(&lead.spells) {
                if let Some(c) = spell_next(tr, *done, last, t) {
                    consider(c);
                }
            }
        }
        next
    }

    /// Records a transition when `grade` differs from the lead's; the scores are those
    /// last computed.
    fn transition(
        &self,
        lead: &mut LeadState,
        grade: GradeId,
        at: Micros,
        cause: impl FnOnce() -> Cause,
        out: &mut Vec<Transition>,
    ) {
        let from = lead.grade.map(GradeId);
        if from != Some(grade) {
            out.push(Transition {
                from,
                to: grade,
                at,
                cause: cause(),
                scores: self.scores.clone(),
            });
            lead.grade = Some(grade.0);
            lead.grade_name = Some(self.program.grades[grade.index()].name.clone());
            lead.logged_at = lead.logged_at.max(Some(at));
        }
    }
}

/// Records a stored event at `at` that is not applied yet (after the clock).
fn defer(lead: &mut LeadState, at: Micros) {
    lead.pending = Some(lead.pending.map_or(at, |p| p.min(at)));
}

/// Puts a lead's rebuild in its place, keeping what a rebuild cannot know: the shadow
/// rules' state, the instant of the latest transition recorded, the `once`
/// notifications already sent and the lead's place on the desk.
fn replace(lead: &mut LeadState, mut rebuilt: LeadState) {
    rebuilt.shadow = lead.shadow.take();
    rebuilt.notified = std::mem::take(&mut lead.notified);
    rebuilt.desk = lead.desk.take();
    rebuilt.charted = lead.charted.take();
    rebuilt.marks = std::mem::take(&mut lead.marks);
    rebuilt.logged_at = rebuilt.logged_at.max(lead.logged_at);
    *lead = rebuilt;
}

/// How [`Engine::ingest`] took an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Applied to the stored state.
    Applied,
    /// Older than the lead's latest event: the lead was rebuilt from its events.
    Reordered,
    /// The state was another program's: the lead was rebuilt with this one.
    Rescored,
    /// After the clock: stored, applied when the clock reaches it.
    Pending,
}

/// What a condition reads about a lead at `now`, outside any event.
fn lead_env<'a>(program: &'a Program, lead: &'a LeadState, now: Micros) -> Env<'a> {
    Env {
        program,
        attrs: &lead.slots,
        event: None,
        scores: &[],
        total: 0,
        grade: None,
        now,
        last_at: lead.last_at.unwrap_or(now),
    }
}

/// Points after `max` and sign.
fn signed(raw: i64, p: &Points) -> i64 {
    let capped = match p.max {
        Some(m) => raw.clamp(-i64::from(m), i64::from(m)),
        None => raw,
    };
    if p.negative {
        -capped
    } else {
        capped
    }
}

/// Updates an event rule's state for a matching event at `at`; `value` is the event's
/// points when they come from a field, `distinct` the hash of its `distinct` prop. Returns
/// whether the state changed.
fn record(
    rule: &EventRule,
    st: &mut RuleState,
    at: Micros,
    value: i64,
    distinct: Option<u64>,
) -> bool {
    if let Some(w) = rule.window {
        if st.fired_at.is_none() {
            st.recent.push(at);
            if st.recent.len() > w.count as usize {
                st.recent.remove(0);
            }
            if st.recent.len() == w.count as usize && st.recent[0] > at - time::seconds(w.seconds) {
                st.fired_at = Some(at);
                st.recent.clear();
            }
        }
        return true;
    }
    let per = match rule.points.amount {
        Amount::Const(n) => u64::from(n),
        _ => 0,
    };
    if let Some(k) = distinct {
        // One award per value; once `max` is reached no value can award again, so none
        // is remembered (at most max/points values are kept).
        let full = rule
            .points
            .max
            .is_some_and(|m| st.count.saturating_mul(per) >= u64::from(m));
        if full || st.seen.contains(&k) {
            return false;
        }
    }
    if let Some(cap) = rule.per {
        // The awards in (at − D, at] plus this one stay within N.
        let since = at.saturating_sub(time::seconds(cap.seconds));
        st.capped.retain(|&t| t > since);
        if (st.capped.len() as u64 + 1).saturating_mul(per) > u64::from(cap.points) {
            return false;
        }
        st.capped.push(at);
    }
    if let Some(k) = distinct {
        st.seen.push(k);
    }
    if let (Some(d), None) = (rule.decay, rule.expires) {
        // Each award decays on its own: keep it (the newest 1,024 that are still worth
        // something at this event).
        let x = match rule.points.amount {
            Amount::Const(n) => i64::from(n),
            _ => value,
        };
        if rule.each || st.count == 0 {
            // Oldest first: those decayed to nothing leave from the front (an award of
            // more points made earlier may outlive a smaller later one; it waits its turn
            // and counts 0 meanwhile).
            let gone = st
                .awards
                .iter()
                .take_while(|&&(t, v)| decayed(v, d, t, at) == 0)
                .count();
            st.awards.drain(..gone);
            if x != 0 {
                st.awards.push((at, x));
            }
            // With fixed points and `max M`, the newest M live awards are each worth a point
            // or more, and older ones never more than they: M of them decide the capped
            // sum now and later, so no more are kept.
            let keep = match (rule.points.amount, rule.points.max) {
                (Amount::Const(_), Some(m)) => (m as usize).min(MAX_DECAY_AWARDS),
                _ => MAX_DECAY_AWARDS,
            };
            if st.awards.len() > keep {
                let extra = st.awards.len() - keep;
                st.awards.drain(..extra);
            }
        }
        st.count = st.count.saturating_add(1);
        return true;
    }
    if rule.expires.is_some() {
        // Only the newest max/points awards can ever count.
        if let (Amount::Const(n), Some(m)) = (rule.points.amount, rule.points.max) {
            let keep = m.div_ceil(n.max(1)) as usize;
            st.recent.push(at);
            if st.recent.len() > keep {
                st.recent.remove(0);
            }
        }
        st.count = st.count.saturating_add(1);
        return true;
    }
    match rule.points.amount {
        Amount::Const(_) => st.count = st.count.saturating_add(1),
        _ if rule.each => {
            st.count = st.count.saturating_add(1);
            st.sum = st.sum.saturating_add(value);
        }
        _ => {
            if st.count == 0 {
                st.sum = value;
            }
            st.count = st.count.saturating_add(1);
        }
    }
    true
}

/// Most live awards a decaying rule keeps per lead.
pub const MAX_DECAY_AWARDS: usize = 1024;

/// A decaying rule's awards as (instant, points): a window's one award when it fired,
/// an expiring rule's live awards, or the awards kept.
fn awards<'a>(rule: &'a EventRule, st: &'a RuleState) -> impl Iterator<Item = (Micros, i64)> + 'a {
    let per = match rule.points.amount {
        Amount::Const(n) => i64::from(n),
        _ => 0,
    };
    let fired = rule.window.and(st.fired_at).map(|t| (t, per));
    // An expiring rule's awards are its live instants (a window keeps instants too, but
    // only its firing is an award).
    let recent = match (rule.window, rule.expires) {
        (None, Some(_)) => &st.recent[..],
        _ => &[],
    };
    let recent = recent.iter().map(move |&t| (t, per));
    let kept = st.awards.iter().copied();
    fired.into_iter().chain(recent).chain(kept)
}

/// `trunc(x × (1 − P/100)^k)`, `k = floor((now − t) / D)`: exact in integers while the
/// denominator fits in 128 bits with the numerator (a 25% decay for 39 periods, 10% for
/// 23, 1% for 11), and in floating point beyond (where the value is far below any
/// award's size or the exact result cannot be a whole number).
pub fn decayed(x: i64, d: Decay, t: Micros, now: Micros) -> i64 {
    if now <= t || x == 0 {
        return x;
    }
    let k = ((now - t) / period(d)) as u64;
    if k == 0 {
        return x;
    }
    let keep = u64::from(100 - d.percent.min(99));
    let g = gcd(keep, 100);
    let (a, b) = (keep / g, 100 / g);
    let mag = x.unsigned_abs() as u128;
    let exact = u32::try_from(k).ok().and_then(|k| {
        let bk = (b as u128).checked_pow(k)?;
        let ak = (a as u128).checked_pow(k)?;
        mag.checked_mul(ak).map(|num| num / bk)
    });
    let v = match exact {
        Some(v) => v as i64,
        None => ((mag as f64) * (a as f64 / b as f64).powf(k as f64)).trunc() as i64,
    };
    if x < 0 {
        -v
    } else {
        v
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

fn period(d: Decay) -> Micros {
    time::seconds(d.seconds).max(1)
}

/// The first period edge after `t` of an award made at `at` (where its value may change).
fn decay_edge(d: Decay, at: Micros, t: Micros) -> Micros {
    let p = period(d);
    if t < at {
        at.saturating_add(p)
    } else {
        at.saturating_add(((t - at) / p + 1).saturating_mul(p))
    }
}

/// A time rule's total after the spell that began at `last`, counting the awards due
/// before `until` (or at it, when `inclusive`), from `done` already kept; capped by `max`.
fn spell_total(r: &TimeRule, done: i64, last: Micros, until: Micros, inclusive: bool) -> i64 {
    let Amount::Const(n) = r.points.amount else {
        return done;
    };
    let first = last.saturating_add(time::seconds(r.delay));
    let due = if until > first || (inclusive && until == first) {
        match r.every {
            Some(e) => {
                let e = time::seconds(e).max(1);
                let span = until - first;
                // Instants first + j·E before (or at) `until`.
                let j = if inclusive { span / e } else { (span - 1) / e };
                j.saturating_add(1)
            }
            None => 1,
        }
    } else {
        0
    };
    let total = done.saturating_add(i64::from(n).saturating_mul(due));
    match r.points.max {
        Some(m) => total.min(i64::from(m)),
        None => total,
    }
}

/// The next instant after `t` at which a time rule awards, in the spell that began at
/// `last`; `None` when the spell has nothing more to give.
fn spell_next(r: &TimeRule, done: i64, last: Micros, t: Micros) -> Option<Micros> {
    let now_total = spell_total(r, done, last, t, true);
    if r.points.max.is_some_and(|m| now_total >= i64::from(m)) {
        return None;
    }
    let first = last.saturating_add(time::seconds(r.delay));
    if t < first {
        return Some(first);
    }
    let e = time::seconds(r.every?).max(1);
    Some(first.saturating_add(((t - first) / e + 1).saturating_mul(e)))
}

/// A time rule's contribution at `now`: what it kept and what the current spell gave.
pub(crate) fn spell_contribution(
    r: &TimeRule,
    done: i64,
    last: Option<Micros>,
    now: Micros,
) -> i64 {
    let total = match last {
        Some(last) => spell_total(r, done, last, now, true),
        None => done,
    };
    if r.points.negative {
        -total
    } else {
        total
    }
}

/// The value of a `distinct` prop as the rule compares it: its case-folded text (numbers
/// as written, lists item by item), hashed to 8 bytes of sha256.
fn distinct_key(v: &Val) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match v {
        Val::Text(t) => h.update(t.folded.as_bytes()),
        Val::Bool(b) => h.update(if *b {
            &b"\x01true"[..]
        } else {
            &b"\x01false"[..]
        }),
        Val::List(items) => {
            for t in items {
                h.update(b"\x02");
                h.update(t.folded.as_bytes());
            }
        }
    }
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Per event type, the rules whose `within D of` waits for it.
fn priors(p: &Program) -> Vec<(&str, Vec<usize>)> {
    let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, r) in p.event_rules.iter().enumerate() {
        if let Some(pr) = &r.prior {
            match out.iter_mut().find(|(t, _)| *t == pr.event_type) {
                Some((_, rules)) => rules.push(i),
                None => out.push((pr.event_type.as_str(), vec![i])),
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// An event rule's contribution at `now`.
fn contribution(rule: &EventRule, st: &RuleState, now: Micros) -> i64 {
    let per = match rule.points.amount {
        Amount::Const(n) => i64::from(n),
        _ => 0,
    };
    let raw = if let Some(d) = rule.decay {
        // Each award decayed on its own (and, with `expires after`, only while it lives),
        // then `each`/`max` cap the sum.
        let life = rule.expires.map(time::seconds);
        let period = period(d);
        // Awards of the same points in the same period are worth the same: computed once.
        let mut last: Option<(i64, i64, i64)> = None;
        awards(rule, st)
            .filter(|&(t, _)| t <= now && life.is_none_or(|l| now - t < l))
            .fold(0i64, |acc, (t, x)| {
                let k = (now - t) / period;
                let v = match last {
                    Some((lk, lx, lv)) if lk == k && lx == x => lv,
                    _ => decayed(x, d, t, now),
                };
                last = Some((k, x, v));
                acc.saturating_add(v)
            })
    } else if rule.window.is_some() {
        if st.fired_at.is_some_and(|t| t <= now) {
            per
        } else {
            return 0;
        }
    } else if let Some(secs) = rule.expires {
        let d = time::seconds(secs);
        let live = st
            .recent
            .iter()
            .filter(|&&t| t <= now && now - t < d)
            .count() as i64;
        per.saturating_mul(live)
    } else if st.count == 0 {
        return 0;
    } else {
        match (rule.points.amount, rule.each) {
            (Amount::Const(_), true) => {
                per.saturating_mul(i64::try_from(st.count).unwrap_or(i64::MAX))
            }
            (Amount::Const(_), false) => per,
            _ => st.sum,
        }
    };
    signed(raw, &rule.points)
}
