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
    /// Score history by minute and by day (docs/desk.md).
    fine: std::collections::BTreeMap<Micros, HistoryPoint>,
    daily: std::collections::BTreeMap<Micros, HistoryPoint>,
    marks: Vec<String>,
}

#[derive(Default)]
struct Inner {
    leads: HashMap<String, Lead>,
    /// Keys that joined a lead: linked visitors, merged leads.
    pointers: HashMap<Joined, Pointer>,
    /// Anonymous visitors' events.
    visitors: HashMap<String, Vec<StoredEvent>>,
    /// The outbox, by (lead, id).
    notes: HashMap<(String, String), Outboxed>,
    desk: DeskLoaded,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
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

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock cannot leave a half-applied write (writes check
        // everything before changing anything), so a poisoned map is still consistent.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

pub(crate) fn listed(q: &ListQuery, rows: impl Iterator<Item = (String, Summary)>) -> Vec<Listed> {
    let mut rows: Vec<Listed> = rows
        .filter(|(k, s)| q.admits(s) && q.past(k, s))
        .map(|(lead, summary)| Listed { lead, summary })
        .collect();
    rows.sort_by(|a, b| {
        let (x, y) = (q.sort.key(&a.summary), q.sort.key(&b.summary));
        match q.sort {
            Sort::Score | Sort::Updated => y.cmp(&x),
            Sort::Deadline => x.cmp(&y),
        }
        .then_with(|| a.lead.cmp(&b.lead))
    });
    rows.truncate(q.limit);
    rows
}

/// Marks held by two leads or more, in mark order.
pub(crate) fn shared(
    by: std::collections::BTreeMap<&str, Vec<String>>,
    limit: usize,
) -> Vec<Shared> {
    by.into_iter()
        .filter(|(_, leads)| leads.len() > 1)
        .take(limit)
        .map(|(mark, mut leads)| {
            leads.sort();
            leads.dedup();
            Shared {
                mark: mark.to_string(),
                leads,
            }
        })
        .collect()
}

/// A notification as it enters the outbox: pending, due at once.
pub(crate) fn pending(note: Notification) -> Outboxed {
    Outboxed {
        next_at: note.created_at,
        note,
        status: NoteStatus::Pending,
        attempts: 0,
        last_error: None,
    }
}

/// A transition moved into the lead a merged key joined, marked with where it came from.
pub(crate) fn moved_transition(from: &str, mut t: StoredTransition) -> StoredTransition {
    t.view.merged_from = Some(from.to_string());
    t
}

#[async_trait::async_trait]
impl LeadLog for MemoryStore {
    async fn load(&self, lead: &str, ids: &[String]) -> Result<Found, StoreError> {
        Ok(self.with(|m| {
            let merged_into = m.pointers.get(&Joined::Lead(lead.to_string())).cloned();
            match m.leads.get(lead) {
                None => Found {
                    merged_into,
                    ..Found::default()
                },
                Some(l) => Found {
                    lead: l.state.as_ref().map(|(s, v)| Loaded {
                        state: s.clone(),
                        version: *v,
                    }),
                    seen: ids
                        .iter()
                        .filter(|id| l.events.iter().any(|e| &e.id == *id))
                        .cloned()
                        .collect(),
                    merged_into,
                },
            }
        }))
    }

    async fn history(&self, lead: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self.with(|m| {
            m.leads
                .get(lead)
                .map(|l| l.events.clone())
                .unwrap_or_default()
        });
        events.sort_by_key(|e| (e.at, e.seq));
        Ok(events)
    }

    async fn commit(&self, w: Write) -> Result<(), StoreError> {
        // Held as a value, but bounded as the other stores bound it.
        let size = leadscore_runtime::limits::encoded_len(&w.state);
        leadscore_runtime::limits::check_state(&w.lead, size).map_err(StoreError::TooLarge)?;
        self.with(|m| {
            let l = m.leads.entry(w.lead.clone()).or_default();
            let version = l.state.as_ref().map(|s| s.1);
            if version != w.expect
                || w.events
                    .iter()
                    .any(|e| l.events.iter().any(|x| x.id == e.id))
                || w.desk.as_ref().is_some_and(|d| d.expect != m.desk.version)
            {
                return Err(StoreError::Conflict);
            }
            let l = m.leads.entry(w.lead.clone()).or_default();
            if let Some(p) = w.history {
                if let Some(d) = w.day_point {
                    let horizon = p.at - HISTORY_FINE_DAYS * DAY;
                    l.fine.retain(|&t, _| t >= horizon);
                    l.daily.insert(history_slots(d.at).1, d);
                }
                l.fine.insert(history_slots(p.at).0, p);
            }
            crate::metric::committed(1);
            l.state = Some((w.state, version.map_or(1, |v| v + 1)));
            l.summary = Some(w.summary);
            l.events.extend(w.events);
            l.transitions.extend(w.transitions);
            if let Some(marks) = w.marks {
                l.marks = marks.new;
            }
            if let Some(d) = w.desk {
                m.desk = DeskLoaded {
                    record: d.record,
                    version: Some(d.expect.map_or(1, |v| v + 1)),
                };
            }
            for n in w.notifications {
                m.notes
                    .entry((n.lead.clone(), n.id.clone()))
                    .or_insert_with(|| pending(n));
            }
            Ok(())
        })
    }

    async fn transitions(&self, lead: &str) -> Result<Vec<StoredTransition>, StoreError> {
        let mut t = self.with(|m| {
            m.leads
                .get(lead)
                .map(|l| l.transitions.clone())
                .unwrap_or_default()
        });
        t.sort_by_key(|t| t.at);
        Ok(t)
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<Listed>, StoreError> {
        Ok(self.with(|m| {
            listed(
                q,
                m.leads
                    .iter()
                    .filter(|(k, _)| !m.pointers.contains_key(&Joined::Lead(k.to_string())))
                    .filter_map(|(k, l)| l.summary.clone().map(|s| (k.clone(), s))),
            )
        }))
    }

    async fn score_history(
        &self,
        lead: &str,
        since: Micros,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        Ok(self.with(|m| {
            let Some(l) = m.leads.get(lead) else {
                return Vec::new();
            };
            let from = |b: &std::collections::BTreeMap<Micros, HistoryPoint>| {
                b.values().filter(|p| p.at >= since).cloned().collect()
            };
            let before = |b: &std::collections::BTreeMap<Micros, HistoryPoint>| {
                b.values().rfind(|p| p.at < since).cloned()
            };
            let prior = before(&l.fine)
                .into_iter()
                .chain(before(&l.daily))
                .collect();
            history_merge(prior, from(&l.fine), from(&l.daily))
        }))
    }

    async fn desk(&self) -> Result<DeskLoaded, StoreError> {
        Ok(self.with(|m| m.desk.clone()))
    }

    async fn shared_marks(&self, limit: usize) -> Result<Vec<Shared>, StoreError> {
        Ok(self.with(|m| {
            let mut by: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for (k, l) in &m.leads {
                if l.state.is_none() || m.pointers.contains_key(&Joined::Lead(k.clone())) {
                    continue;
                }
                for mark in &l.marks {
                    by.entry(mark).or_default().push(k.clone());
                }
            }
            shared(by, limit)
        }))
    }

    async fn release(&self, lead: &str) -> Result<bool, StoreError> {
        Ok(self.with(|m| {
            let Some(l) = m.leads.get_mut(lead) else {
                return false;
            };
            let Some((state, version)) = l.state.clone() else {
                return false;
            };
            let Some((state, owner)) = released(state) else {
                return false;
            };
            l.state = Some((state, version + 1));
            m.desk.record.release(&owner);
            m.desk.version = Some(m.desk.version.map_or(1, |v| v + 1));
            true
        }))
    }

    async fn erase(&self, lead: &str, at: Micros) -> Result<Erased, StoreError> {
        let erased = self.with(|m| {
            let l = m.leads.remove(lead).unwrap_or_default();
            let joined: Vec<Joined> = m
                .pointers
                .iter()
                .filter(|(_, p)| p.lead == lead)
                .map(|(k, _)| k.clone())
                .collect();
            let mut erased = Erased {
                state: l.state.is_some(),
                events: l.events.len(),
                transitions: l.transitions.len(),
                links: joined.len(),
            };
            m.notes.retain(|(l, _), _| l != lead);
            for k in &joined {
                m.pointers.remove(k);
                match k {
                    Joined::Visitor(v) => drop(m.visitors.remove(v)),
                    // What a merge cut short left under the old key, and its outbox.
                    Joined::Lead(b) => {
                        if let Some(old) = m.leads.remove(b) {
                            erased.events += old.events.len();
                            erased.transitions += old.transitions.len();
                        }
                        m.notes.retain(|(l, _), _| l != b);
                    }
                }
            }
            erased
        });
        if erased != Erased::default() {
            self.erasures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((erasure_key(lead), at, erased));
        }
        Ok(erased)
    }

    async fn due(&self, t: Micros, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|m| {
            let mut due: Vec<(Micros, String)> = m
                .leads
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

#[async_trait::async_trait]
impl Joins for MemoryStore {
    async fn track(&self, visitor: &str, events: Vec<StoredEvent>) -> Result<Tracked, StoreError> {
        Ok(self.with(|m| {
            if let Some(p) = m.pointers.get(&Joined::Visitor(visitor.to_string())) {
                return Tracked::Linked(p.clone());
            }
            let log = m.visitors.entry(visitor.to_string()).or_default();
            let mut duplicates = Vec::new();
            for e in events {
                if log.iter().any(|x| x.id == e.id) {
                    duplicates.push(e.id);
                } else {
                    log.push(e);
                }
            }
            Tracked::Stored { duplicates }
        }))
    }

    async fn visitor(
        &self,
        visitor: &str,
    ) -> Result<(Option<Pointer>, Vec<StoredEvent>), StoreError> {
        Ok(self.with(|m| {
            let mut events = m.visitors.get(visitor).cloned().unwrap_or_default();
            events.sort_by_key(|e| (e.at, e.seq));
            (
                m.pointers
                    .get(&Joined::Visitor(visitor.to_string()))
                    .cloned(),
                events,
            )
        }))
    }

    async fn link(&self, visitor: &str, lead: &str, _at: Micros) -> Result<Pointer, StoreError> {
        Ok(self.with(|m| {
            m.pointers
                .entry(Joined::Visitor(visitor.to_string()))
                .or_insert_with(|| Pointer {
                    lead: lead.to_string(),
                    pending: true,
                })
                .clone()
        }))
    }

    async fn settle(&self, visitor: &str) -> Result<(), StoreError> {
        self.with(|m| {
            if let Some(p) = m.pointers.get_mut(&Joined::Visitor(visitor.to_string())) {
                p.pending = false;
                m.visitors.remove(visitor);
            }
        });
        Ok(())
    }

    async fn redirect(
        &self,
        from: &str,
        to: &str,
        version: u64,
        _at: Micros,
    ) -> Result<(), StoreError> {
        self.with(|m| {
            let key = Joined::Lead(from.to_string());
            let Some(l) = m.leads.get_mut(from) else {
                return Err(StoreError::Conflict);
            };
            match &mut l.state {
                Some((_, v)) if *v == version && !m.pointers.contains_key(&key) => {
                    *v += 1;
                    // Time no longer changes it: out of the sweep.
                    if let Some(s) = &mut l.summary {
                        s.next_change = None;
                    }
                    m.pointers.insert(
                        key,
                        Pointer {
                            lead: to.to_string(),
                            pending: true,
                        },
                    );
                    Ok(())
                }
                _ => Err(StoreError::Conflict),
            }
        })
    }

    async fn retire(&self, from: &str) -> Result<Retired, StoreError> {
        self.with(|m| {
            let key = Joined::Lead(from.to_string());
            let Some(p) = m.pointers.get(&key).cloned() else {
                return Err(StoreError::Backend(format!("{from} was not merged")));
            };
            if !p.pending {
                return Ok(Retired::default());
            }
            let old = m.leads.remove(from).unwrap_or_default();
            let retired = Retired {
                events: old.events.len(),
                transitions: old.transitions.len(),
            };
            let target = m.leads.entry(p.lead.clone()).or_default();
            target.transitions.extend(
                old.transitions
                    .into_iter()
                    .map(|t| moved_transition(from, t)),
            );
            for q in m.pointers.values_mut() {
                if q.lead == from {
                    q.lead = p.lead.clone();
                }
            }
            if let Some(q) = m.pointers.get_mut(&key) {
                q.pending = false;
            }
            Ok(retired)
        })
    }

    async fn joined(&self, lead: &str) -> Result<Vec<Joined>, StoreError> {
        let mut out: Vec<Joined> = self.with(|m| {
            m.pointers
                .iter()
                .filter(|(_, p)| p.lead == lead)
                .map(|(k, _)| k.clone())
                .collect()
        });
        out.sort();
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Outbox for MemoryStore {
    async fn due_notes(&self, now: Micros, limit: usize) -> Result<Vec<Outboxed>, StoreError> {
        let mut due = self.notes_where(|o| o.status == NoteStatus::Pending && o.next_at <= now);
        due.truncate(limit);
        Ok(due)
    }

    async fn note(&self, lead: &str, id: &str) -> Result<Option<Outboxed>, StoreError> {
        Ok(self.with(|m| m.notes.get(&(lead.to_string(), id.to_string())).cloned()))
    }

    async fn claim_note(
        &self,
        lead: &str,
        id: &str,
        attempts: u32,
        now: Micros,
        until: Micros,
    ) -> Result<bool, StoreError> {
        Ok(self.with(
            |m| match m.notes.get_mut(&(lead.to_string(), id.to_string())) {
                Some(o)
                    if o.status == NoteStatus::Pending
                        && o.attempts == attempts
                        && o.next_at <= now =>
                {
                    o.attempts += 1;
                    o.next_at = until;
                    true
                }
                _ => false,
            },
        ))
    }

    async fn finish_note(
        &self,
        lead: &str,
        id: &str,
        outcome: Delivery,
        at: Micros,
    ) -> Result<(), StoreError> {
        self.with(|m| {
            if let Some(o) = m.notes.get_mut(&(lead.to_string(), id.to_string())) {
                finish(o, outcome, at);
            }
        });
        Ok(())
    }

    async fn notes(
        &self,
        status: NoteStatus,
        limit: usize,
        after: Option<(Micros, String)>,
    ) -> Result<Vec<Outboxed>, StoreError> {
        let mut out = self.notes_where(|o| {
            o.status == status
                && after
                    .as_ref()
                    .is_none_or(|(t, id)| (o.next_at, &o.note.id) > (*t, id))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn requeue_note(&self, lead: &str, id: &str, now: Micros) -> Result<bool, StoreError> {
        Ok(self.with(
            |m| match m.notes.get_mut(&(lead.to_string(), id.to_string())) {
                Some(o) if o.status == NoteStatus::Failed => {
                    o.status = NoteStatus::Pending;
                    o.attempts = 0;
                    o.next_at = now;
                    true
                }
                _ => false,
            },
        ))
    }
}

/// A notification after an attempt ended.
pub(crate) fn finish(o: &mut Outboxed, outcome: Delivery, at: Micros) {
    match outcome {
        Delivery::Delivered => {
            o.status = NoteStatus::Delivered;
            o.next_at = at;
            o.last_error = None;
        }
        Delivery::Retry { next_at, error } => {
            o.status = NoteStatus::Pending;
            o.next_at = next_at;
            o.last_error = Some(error);
        }
        Delivery::Failed { error } => {
            o.status = NoteStatus::Failed;
            o.next_at = at;
            o.last_error = Some(error);
        }
    }
}

impl MemoryStore {
    /// The notifications that match, by `next_at` then id.
    fn notes_where(&self, keep: impl Fn(&Outboxed) -> bool) -> Vec<Outboxed> {
        let mut out: Vec<Outboxed> =
            self.with(|m| m.notes.values().filter(|o| keep(o)).cloned().collect());
        out.sort_by(|a, b| (a.next_at, &a.note.id).cmp(&(b.next_at, &b.note.id)));
        out
    }
}
