//! Keys joining a lead: an anonymous visitor's history when the visitor becomes a lead
//! (stitching), and one lead merged into another (de-duplication).
//!
//! Both are a *join*: the source's events are added to the lead's, the lead is rebuilt
//! from all of them in time order, one transition sums up the change, and the source
//! becomes a pointer to the lead. Each step is idempotent — events are stored under their
//! ids, pointers are created once, settling and retiring repeat harmlessly — so a join cut
//! short by a crash is finished by whoever next finds its pointer pending.
//!
//! No step holds one lead's lock while taking another's: the striped locks would deadlock
//! two merges in opposite directions. Writers in other processes are kept out by the
//! store's conditions (a redirect moves the merged lead's version).

use super::txn::{incoming, Change, JoinCause};
use super::{rekey, Incoming, Service, ServiceError, MAX_HOPS};
use leadscore_runtime::view::LeadScores;
use leadscore_store::{StoreError, StoredEvent};

impl From<StoreError> for MergeError {
    fn from(e: StoreError) -> MergeError {
        MergeError::Store(e.into())
    }
}

/// What [`Service::track`] did with a visitor's events.
#[derive(Clone, Debug, PartialEq)]
pub enum Tracked {
    /// Stored under the anonymous visitor, to be scored when it becomes a lead.
    Anonymous { accepted: usize, duplicates: usize },
    /// Scored for the lead the visitor became.
    Lead { lead: String, accepted: usize },
}

/// What [`Service::merge`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The lead that remains.
    pub lead: String,
    /// The key merged into it, which now points to it.
    pub merged: String,
    /// Events and transitions moved over (0 when the merge had been done before).
    pub events: usize,
    pub transitions: usize,
    /// The lead after the merge: scores, grade, tags and the transition it caused (when
    /// the merge had been done before: every transition of the lead; `None` if the lead
    /// is gone meanwhile).
    pub view: Option<LeadScores>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum MergeError {
    #[error("a lead cannot be merged into itself (`{0}`)")]
    Same(String),
    #[error("nothing is stored for lead `{0}`")]
    NotFound(String),
    #[error("`{0}` was merged into `{1}` already")]
    MergedElsewhere(String, String),
    #[error(transparent)]
    Store(#[from] ServiceError),
}

impl Service {
    /// The lead a key holds now: itself, or the lead it was merged into (a merge cut short
    /// is finished on the way).
    pub async fn resolve(&self, lead: &str) -> Result<String, ServiceError> {
        let mut lead = lead.to_string();
        for _ in 0..MAX_HOPS {
            match self.store.load(&lead, &[]).await?.merged_into {
                None => return Ok(lead),
                Some(p) => {
                    if p.pending {
                        self.finish_merge(&lead, &p.lead).await?;
                    }
                    lead = p.lead;
                }
            }
        }
        Err(ServiceError::Hops { lead })
    }

    /// Takes a browser's events for an anonymous visitor (their `event.lead` is ignored):
    /// stored under the visitor until it becomes a lead, then scored for that lead.
    pub async fn track(
        &self,
        visitor: &str,
        mut events: Vec<Incoming>,
    ) -> Result<Tracked, ServiceError> {
        let n = events.len();
        let stored = events
            .iter()
            .enumerate()
            .map(|(i, inc)| StoredEvent {
                id: inc.event.id.clone(),
                at: inc.event.at,
                seq: i as u64,
                json: inc.json.clone(),
            })
            .collect();
        match self.store.track(visitor, stored).await? {
            leadscore_store::Tracked::Stored { duplicates } => Ok(Tracked::Anonymous {
                accepted: n - duplicates.len(),
                duplicates: duplicates.len(),
            }),
            leadscore_store::Tracked::Linked(p) => {
                rekey(&mut events, &p.lead);
                let (accepted, _, view) = if p.pending {
                    self.finish_stitch(visitor, &p.lead, events).await?
                } else {
                    self.ingest_lead(&p.lead, events).await?
                };
                let lead = view.lead;
                Ok(Tracked::Lead { lead, accepted })
            }
        }
    }

    /// Events that name both a visitor and a lead (a form posted with the snippet's
    /// visitor id, an identified beacon): the visitor is linked to the lead and its
    /// anonymous history joins the lead, in time order, with these events. A visitor
    /// already linked to another lead stays linked to it; these events are then scored for
    /// their own lead only. All of `events` name one lead.
    pub async fn stitch(
        &self,
        visitor: &str,
        mut events: Vec<Incoming>,
    ) -> Result<super::Outcome, ServiceError> {
        let Some(first) = events.first() else {
            return Ok(super::Outcome::default());
        };
        let lead = self.resolve(&self.key(&first.event.lead)).await?;
        rekey(&mut events, &lead);
        let link = self.store.link(visitor, &lead, self.now()).await?;
        let (accepted, duplicates, view) = if link.lead == lead && link.pending {
            self.finish_stitch(visitor, &lead, events).await?
        } else {
            self.ingest_lead(&lead, events).await?
        };
        Ok(super::Outcome {
            accepted,
            duplicates,
            leads: vec![view],
        })
    }

    /// Joins a linked visitor's anonymous events and `trigger` (events for the lead) into
    /// the lead, then settles the visitor.
    pub(super) async fn finish_stitch(
        &self,
        visitor: &str,
        lead: &str,
        trigger: Vec<Incoming>,
    ) -> Result<(usize, Vec<String>, LeadScores), ServiceError> {
        let (_, anonymous) = self.store.visitor(visitor).await?;
        let mut events: Vec<Incoming> = anonymous
            .iter()
            .map(|s| incoming(s, lead))
            .collect::<Result<_, _>>()?;
        let cause = match trigger.last() {
            Some(t) => JoinCause::Event(t.event.id.clone(), t.event.at),
            None => JoinCause::Event(format!("visitor:{visitor}"), self.now()),
        };
        let ids: Vec<String> = trigger.iter().map(|t| t.event.id.clone()).collect();
        events.extend(trigger);
        let (_, mut duplicates, view) = self.join(lead, events, cause).await?;
        // The request's own events: those stored before are its duplicates.
        duplicates.retain(|d| ids.contains(d));
        self.store.settle(visitor).await?;
        Ok((ids.len() - duplicates.len(), duplicates, view))
    }

    /// Merges lead `from` into lead `into` (both keys as sent): `from`'s events join
    /// `into`'s, the lead is rebuilt from all of them, `from`'s transitions move over and
    /// `from` answers with a pointer to `into` from then on. `into` need not exist (the
    /// merge then renames `from`). Merging again is harmless: it reports nothing moved.
    pub async fn merge(&self, into: &str, from: &str) -> Result<Merged, MergeError> {
        let into = self.resolve(&self.key(into)).await?;
        let from = self.key(from);
        if into == from {
            return Err(MergeError::Same(into));
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let found = self.store.load(&from, &[]).await?;
            if let Some(p) = found.merged_into {
                if p.pending {
                    self.finish_merge(&from, &p.lead).await?;
                }
                let target = self.resolve(&p.lead).await?;
                if target != into {
                    return Err(MergeError::MergedElsewhere(from, target));
                }
                let view = self.current_view(&into).await?;
                return Ok(Merged {
                    lead: into,
                    merged: from,
                    events: 0,
                    transitions: 0,
                    view,
                });
            }
            let Some(loaded) = found.lead else {
                return Err(MergeError::NotFound(from));
            };
            if loaded.state.desk.as_ref().is_some_and(|d| d.active) {
                // The merged-away lead stops counting against its owner first (its version
                // moves: read it again).
                let _turn = self.lock(&from).lock().await;
                self.release(&from).await?;
                continue;
            }
            match self
                .store
                .redirect(&from, &into, loaded.version, self.now())
                .await
            {
                Ok(()) => break,
                Err(StoreError::Conflict) if attempts < super::MAX_ATTEMPTS => continue,
                Err(e) => return Err(ServiceError::from(e).into()),
            }
        }
        let (view, retired) = self.finish_merge(&from, &into).await?;
        Ok(Merged {
            lead: into,
            merged: from,
            events: retired.events,
            transitions: retired.transitions,
            view: Some(view),
        })
    }

    /// Moves a redirected lead's events into the lead it points to, rebuilding it, then
    /// retires the old key (its transitions move over, the rest goes).
    pub(super) async fn finish_merge(
        &self,
        from: &str,
        to: &str,
    ) -> Result<(LeadScores, leadscore_store::Retired), ServiceError> {
        let events: Vec<Incoming> = self
            .store
            .history(from)
            .await?
            .iter()
            .map(|s| incoming(s, to))
            .collect::<Result<_, _>>()?;
        let (_, _, view) = self
            .join(to, events, JoinCause::Merge(from.to_string()))
            .await?;
        let retired = self.store.retire(from).await?;
        Ok((view, retired))
    }

    /// The lead's scores now, without writing.
    async fn current_view(&self, lead: &str) -> Result<Option<LeadScores>, ServiceError> {
        Ok(match self.lead(lead).await? {
            super::LeadView::Found(v) => Some(LeadScores::from(*v)),
            _ => None,
        })
    }

    /// Adds `events` (whatever their instants) to `lead` — following it if it was merged
    /// meanwhile — in ordered chunks the store can commit at once. Returns how many were
    /// new, the ids already there, and the lead's view with the transitions recorded.
    async fn join(
        &self,
        lead: &str,
        mut events: Vec<Incoming>,
        cause: JoinCause,
    ) -> Result<(usize, Vec<String>, LeadScores), ServiceError> {
        // One event per id (a visitor's event may come again as the trigger), in time order.
        let mut seen = std::collections::HashSet::new();
        let mut repeated = Vec::new();
        events.retain(|e| {
            seen.insert(e.event.id.clone()) || {
                repeated.push(e.event.id.clone());
                false
            }
        });
        events.sort_by_key(|e| e.event.at);
        let mut done = self.transact(lead, events, Change::Join(&cause)).await?;
        repeated.append(&mut done.duplicates);
        let accepted = done.accepted;
        Ok((accepted, repeated, done.shown()?))
    }
}
