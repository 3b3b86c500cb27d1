//! Reads: one lead (with its explanation and transitions), its export, the listing.

use super::*;

impl Service {
    /// `GET /leads/{lead}`: scores, grade and tags at now, the explanation, the recorded
    /// transitions, the attributes. A lead stored by another program is shown as this
    /// program scores it (it is stored so when next touched).
    pub async fn lead(&self, lead: &str) -> Result<LeadView, ServiceError> {
        let found = self.store.load(lead, &[]).await?;
        if let Some(p) = found.merged_into {
            if p.pending {
                self.finish_merge(lead, &p.lead).await?;
            }
            return Ok(LeadView::Merged(self.resolve(&p.lead).await?));
        }
        let Some(loaded) = found.lead else {
            return Ok(LeadView::Missing);
        };
        let now = self.now();
        let mut state = loaded.state;
        let shadow_state = state.shadow.take().map(|b| *b);
        let rules = self.rules_for(lead);
        let (live, state) = self.view_as(&rules, lead, state, now).await?;
        let shadow = match (self.shadow_rules(), shadow_state) {
            (Some(rules), s) => Some(
                self.view_as(&rules, lead, s.unwrap_or(state.clone()), now)
                    .await?
                    .0,
            ),
            (None, _) => None,
        };
        let transitions = self
            .store
            .transitions(lead)
            .await?
            .into_iter()
            .map(|t| t.view)
            .collect();
        let arm = self.arm(lead).map(|a| a.name());
        Ok(LeadView::Found(Box::new(LeadDetail::new(
            live,
            &state,
            transitions,
            shadow,
            arm,
        ))))
    }

    /// The lead as `rules` score it at `now`, and the state that view is of: `state` when
    /// those rules made it and nothing stored has come due, else rebuilt from the lead's
    /// stored events.
    async fn view_as(
        &self,
        rules: &Rules,
        lead: &str,
        mut state: LeadState,
        now: Micros,
    ) -> Result<(Explained, LeadState), ServiceError> {
        let mut engine = Engine::with_hash(&rules.program, rules.hash.clone());
        if !engine.is_current(&state) || engine.pending_due(&state, now) {
            let history = self.history_events(lead, true).await?;
            state = engine
                .rebuild(lead, &history, now, &mut Vec::new())
                .map_err(ServiceError::engine(lead))?;
        }
        engine.attach(&mut state);
        Ok((explained(rules, &mut engine, &state, now), state))
    }

    /// Everything stored about a lead (data rights: export): the lead as
    /// [`Service::lead`] shows it and every stored event as it was sent.
    /// A merged key's lead is the one it was merged into.
    pub async fn export(&self, lead: &str) -> Result<Option<Exported>, ServiceError> {
        let lead = self.resolve(lead).await?;
        let LeadView::Found(view) = self.lead(&lead).await? else {
            return Ok(None);
        };
        let events: Vec<Json> = self
            .store
            .history(&lead)
            .await?
            .into_iter()
            .map(|e| e.json)
            .collect();
        let (mut visitors, mut merged) = (Vec::new(), Vec::new());
        for j in self.store.joined(&lead).await? {
            match j {
                Joined::Visitor(v) => visitors.push(v),
                Joined::Lead(b) => merged.push(b),
            }
        }
        Ok(Some(Exported {
            events,
            lead: *view,
            merged,
            visitors,
        }))
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Listed>, ServiceError> {
        Ok(self.store.list(query).await?)
    }
}
