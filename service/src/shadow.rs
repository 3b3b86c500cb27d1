//! The shadow rules' view of a lead, kept beside the live state in the same write.

use super::txn::insert_in_order;
use super::*;

impl Service {
    /// The lead as the shadow rules (if any run) see it after `fresh`: the stored shadow
    /// state advanced when it is current and the events come in order, else rebuilt from
    /// the lead's whole history (`history`, when the live path already read it, includes
    /// `fresh`). Boxed, as the live state holds it.
    pub(super) async fn shadow_state(
        &self,
        lead: &str,
        prev: Option<LeadState>,
        fresh: &[&Incoming],
        history: Option<&[Event]>,
        exists: bool,
        now: Micros,
    ) -> Result<Option<Box<LeadState>>, ServiceError> {
        let Some(rules) = self.shadow_rules() else {
            return Ok(None);
        };
        let mut engine = Engine::with_hash(&rules.program, rules.hash.clone());
        let fail = |e| ServiceError::engine(lead)(e);
        let mut discard = Vec::new();
        if let Some(mut s) = prev.filter(|s| engine.is_current(s) && !engine.pending_due(s, now)) {
            engine.attach(&mut s);
            let mut in_order = true;
            for i in fresh {
                if engine.needs_history(&s, &i.event, now) {
                    in_order = false;
                    break;
                }
                engine
                    .ingest(&mut s, &[], &i.event, now, &mut discard)
                    .map_err(fail)?;
            }
            if in_order {
                engine.advance(&mut s, now, &mut discard);
                return Ok(Some(Box::new(s)));
            }
        }
        let history = match history {
            Some(h) => h.to_vec(),
            None => {
                let mut h = self.history_events(lead, exists).await?;
                for i in fresh {
                    insert_in_order(&mut h, &i.event);
                }
                h
            }
        };
        engine
            .rebuild(lead, &history, now, &mut discard)
            .map(|s| Some(Box::new(s)))
            .map_err(fail)
    }
}
