//! The reference scorer: every lead scored from its events alone, as `leadscore score`
//! does it. Every online path (HTTP on each store, Lambda, rescore, sweep, merges) is
//! tested against this function.

use crate::bytecode::Program;
use crate::engine::{ApplyError, Engine};
use crate::event::{normalise_lead, Event};
use crate::time::Micros;
use crate::view::LeadScores;
use serde_json::Value as Json;

/// One lead's result, in the shape of DESIGN.md.
pub struct Scored {
    pub lead: String,
    pub view: LeadScores,
}

impl Scored {
    /// The result as `leadscore score` prints it.
    pub fn json(&self) -> Json {
        crate::view::to_json(&self.view)
    }
}

/// Scores every lead from `events` at `now`, handing each lead's result to `sink` in lead
/// order: ids are unique per lead (a repeated id of the same lead is ignored, the first
/// wins; another lead may use the same id), events are ordered by `at` then arrival, and
/// events after `now` have not happened yet. Returns how many events were after `now`.
pub fn score_each<E>(
    program: &Program,
    events: Vec<Event>,
    now: Micros,
    mut sink: impl FnMut(Scored) -> Result<(), E>,
) -> Result<usize, E>
where
    E: From<ApplyError>,
{
    let mut events: Vec<Event> = events
        .into_iter()
        .map(|mut e| {
            e.lead = normalise_lead(&e.lead);
            e
        })
        .collect();
    // By lead, then id: a stable sort keeps arrival order among equal ids, so the first of
    // each run is the one that counts. Sorting indices avoids moving events twice.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&events[a], &events[b]);
        x.lead.cmp(&y.lead).then_with(|| x.id.cmp(&y.id))
    });
    let mut keep = vec![true; events.len()];
    for w in order.windows(2) {
        let (x, y) = (&events[w[0]], &events[w[1]]);
        if x.lead == y.lead && x.id == y.id {
            keep[w[1]] = false;
        }
    }
    drop(order);
    let mut future = 0;
    let mut i = 0;
    events.retain(|e| {
        let kept = keep[i];
        i += 1;
        future += usize::from(kept && e.at > now);
        kept
    });
    // By lead, then `at`; stable, so ties keep arrival order.
    events.sort_by(|a, b| a.lead.cmp(&b.lead).then(a.at.cmp(&b.at)));
    let mut engine = Engine::new(program);
    for events in events.chunk_by(|a, b| a.lead == b.lead) {
        let lead = &events[0].lead;
        let mut transitions = Vec::new();
        let state = engine.rebuild(lead, events, now, &mut transitions)?;
        if state.events == 0 {
            // Every event of this lead is after `now`: it does not exist yet.
            continue;
        }
        let mut lines = Vec::new();
        let e = engine.evaluate(&state, now, Some(&mut lines));
        sink(Scored {
            lead: lead.clone(),
            view: LeadScores::explained(program, lead, &e, &lines, &transitions),
        })?;
    }
    Ok(future)
}

/// As [`score_each`], all results at once.
pub fn score_all(
    program: &Program,
    events: Vec<Event>,
    now: Micros,
) -> Result<(Vec<Scored>, usize), ApplyError> {
    let mut out = Vec::new();
    let future = score_each(program, events, now, |s| {
        out.push(s);
        Ok::<(), ApplyError>(())
    })?;
    Ok((out, future))
}
