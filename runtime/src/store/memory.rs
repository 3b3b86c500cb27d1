//! A store in memory with the same guarantees as the durable ones (atomic, versioned,
//! idempotent writes) but none of the durability: for tests and trying things out.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Lead {
    state: Option<(LeadState, u64)>,
    summary: Option<Summary>,
    events: Vec<StoredEvent>,
    transitions: Vec<StoredTransition>,
}

#[derive(Default)]
pub struct MemoryStore {
    leads: Mutex<HashMap<String, Lead>>,
    /// Erasure records: (SHA-256 of the key, when, what was removed).
    erasures: Mutex<Vec<(String, Micros, Erased)>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The erasure records, oldest first.
    pub fn erasures(&self) -> Vec<(String, Micros, Erased)> {
        self.erasures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Lead>) -> T) -> T {
        // A panic while holding the lock cannot leave a half-applied write (writes check
        // everything before changing anything), so a poisoned map is still consistent.
        let mut guard = self.leads.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// Whether a row sorts after the cursor in (score descending, lead ascending) order.
pub(crate) fn comes_after(score: i64, lead: &str, after_score: i64, after_lead: &str) -> bool {
    score < after_score || (score == after_score && lead > after_lead)
}

pub(crate) fn listed(q: &ListQuery, rows: impl Iterator<Item = (String, Summary)>) -> Vec<Listed> {
    let mut rows: Vec<Listed> = rows
        .filter(|(_, s)| q.grade.as_ref().is_none_or(|g| s.grade.as_ref() == Some(g)))
        .filter(|(k, s)| {
            q.after
                .as_ref()
                .is_none_or(|(score, key)| comes_after(s.score, k, *score, key))
        })
        .map(|(lead, summary)| Listed { lead, summary })
        .collect();
    rows.sort_by(|a, b| {
        b.summary
            .score
            .cmp(&a.summary.score)
            .then_with(|| a.lead.cmp(&b.lead))
    });
    rows.truncate(q.limit);
    rows
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn load(
        &self,
        lead: &str,
        ids: &[String],
    ) -> Result<(Option<Loaded>, Vec<String>), StoreError> {
        Ok(self.with(|m| match m.get(lead) {
            None => (None, Vec::new()),
            Some(l) => (
                l.state.as_ref().map(|(s, v)| Loaded {
                    state: s.clone(),
                    version: *v,
                }),
                ids.iter()
                    .filter(|id| l.events.iter().any(|e| &e.id == *id))
                    .cloned()
                    .collect(),
            ),
        }))
    }

    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self.with(|m| m.get(lead).map(|l| l.events.clone()).unwrap_or_default());
        events.sort_by_key(|e| (e.at, e.seq));
        Ok(events)
    }

    async fn commit(&self, w: Write) -> Result<(), StoreError> {
        self.with(|m| {
            let l = m.entry(w.lead.clone()).or_default();
            let version = l.state.as_ref().map(|s| s.1);
            if version != w.expect
                || w.events
                    .iter()
                    .any(|e| l.events.iter().any(|x| x.id == e.id))
            {
                return Err(StoreError::Conflict);
            }
            l.state = Some((w.state, version.map_or(1, |v| v + 1)));
            l.summary = Some(w.summary);
            l.events.extend(w.events);
            l.transitions.extend(w.transitions);
            Ok(())
        })
    }

    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError> {
        Ok(self.with(|m| {
            m.get(lead)
                .map(|l| l.transitions.clone())
                .unwrap_or_default()
        }))
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<Listed>, StoreError> {
        Ok(self.with(|m| {
            listed(
                q,
                m.iter()
                    .filter_map(|(k, l)| l.summary.clone().map(|s| (k.clone(), s))),
            )
        }))
    }

    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError> {
        let Some(l) = self.with(|m| m.remove(lead)) else {
            return Ok(Erased::default());
        };
        let erased = Erased {
            state: l.state.is_some(),
            events: l.events.len(),
            transitions: l.transitions.len(),
        };
        self.erasures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((erasure_key(lead), at, erased));
        Ok(erased)
    }

    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|m| {
            let mut due: Vec<(Micros, String)> = m
                .iter()
                .filter_map(|(k, l)| {
                    let n = l.summary.as_ref()?.next_change?;
                    (n <= t).then(|| (n, k.clone()))
                })
                .collect();
            due.sort();
            due.into_iter().take(limit).map(|(_, k)| k).collect()
        }))
    }
}
