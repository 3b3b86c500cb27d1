//! Which notifications a write makes: the program's `notify` rules applied to the
//! transitions it records (and to the lead's scores before and after it). They go into
//! the outbox in the same commit, so a change and its notifications are stored together
//! or not at all; a worker delivers them (`leadscore_http::notify`).

use super::{Rules, Service, ServiceError};
use leadscore_runtime::bytecode::{ChannelDef, ChannelTarget, NotifyTrigger};
use leadscore_runtime::engine::{Cause, Engine, Transition};
use leadscore_runtime::state::LeadState;
use leadscore_runtime::time::{self, Micros};
use leadscore_runtime::view;
use leadscore_store::Notification;
use leadscore_store::{NoteStatus, Outboxed};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// The lead's scores before a write: each named score and the total.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Before {
    pub scores: Vec<i64>,
    pub total: i64,
}

impl Before {
    /// What a lead that did not exist had.
    pub fn nothing(scores: usize) -> Before {
        Before {
            scores: vec![0; scores],
            total: 0,
        }
    }

    /// What a lead had before a write: as stored ([`Before::of`]) when it exists, nothing
    /// (every score 0) when it is new and the program tests crossings.
    pub fn of_lead(
        rules: &Rules,
        engine: &mut Engine,
        state: Option<&LeadState>,
        now: Micros,
    ) -> Option<Before> {
        match state {
            Some(state) => Before::of(rules, engine, state, now),
            None => crosses(rules).then(|| Before::nothing(rules.program.scores.len())),
        }
    }

    /// The lead as stored, at the instant it was last evaluated — when the program has
    /// crossing rules to test (otherwise nothing is computed).
    pub fn of(
        rules: &Rules,
        engine: &mut Engine,
        state: &LeadState,
        now: Micros,
    ) -> Option<Before> {
        if !crosses(rules) {
            return None;
        }
        if !engine.is_current(state) {
            // Another program's scores say nothing about this one's thresholds.
            return None;
        }
        let e = engine.evaluate(state, state.evaluated_at.unwrap_or(now), None);
        Some(Before {
            scores: e.scores,
            total: e.total,
        })
    }
}

/// Whether the program tests score crossings.
pub(super) fn crosses(rules: &Rules) -> bool {
    rules
        .program
        .notifies
        .iter()
        .any(|n| matches!(n.trigger, NotifyTrigger::Crosses { .. }))
}

/// A channel as the outbox keeps it: enough to deliver without the program.
fn channel_json(c: &ChannelDef) -> Json {
    let (url, secret, template) = match &c.target {
        ChannelTarget::Url(u) => (Some(u.as_str()), None, None),
        ChannelTarget::Secret(n) => (None, Some(n.as_str()), None),
        ChannelTarget::Template(t) => (None, None, Some(t.as_str())),
    };
    json!({"name": c.name, "kind": c.kind.name(), "url": url, "secret": secret,
           "template": template, "signed": c.signed})
}

/// What one write changed that `notify` rules test: its transitions and what the desk did.
pub(super) struct News<'a> {
    pub transitions: &'a [Transition],
    pub desk: &'a super::desk::News,
}

/// The notifications of one write of `lead` (the write that makes its `version`).
/// Transitions caused by a rescore or a merge make none; `before` is `None` when
/// crossings are not to be tested.
#[allow(clippy::too_many_arguments)]
pub(super) fn notifications(
    rules: &Rules,
    engine: &mut Engine,
    state: &mut LeadState,
    version: u64,
    news: News,
    before: Option<&Before>,
    now: Micros,
) -> Vec<Notification> {
    let transitions = news.transitions;
    let p = &rules.program;
    if p.notifies.is_empty() {
        return Vec::new();
    }
    let news_desk = news.desk;
    let news: Vec<(usize, &Transition)> = transitions
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.cause, Cause::Event(_) | Cause::Time))
        .collect();
    let mut hits: Vec<Hit> = Vec::new();
    let mut after: Option<(Vec<i64>, i64)> = None;
    for (r, rule) in p.notifies.iter().enumerate() {
        match rule.trigger {
            NotifyTrigger::Becomes(g) => hits.extend(
                news.iter()
                    .filter(|(_, t)| t.to == g)
                    .map(|(i, _)| Hit::transition(r, *i)),
            ),
            NotifyTrigger::Leaves(g) => hits.extend(
                news.iter()
                    .filter(|(_, t)| t.from == Some(g))
                    .map(|(i, _)| Hit::transition(r, *i)),
            ),
            NotifyTrigger::Changes => hits.extend(news.iter().map(|(i, _)| Hit::transition(r, *i))),
            NotifyTrigger::OwnerChanges => {
                hits.extend(news_desk.changes.iter().enumerate().map(|(i, c)| Hit {
                    rule: r,
                    transition: None,
                    crossing: None,
                    desk: Some((
                        format!("owner{i}"),
                        json!({"owner_change": view::owner_change(c)}),
                    )),
                }))
            }
            NotifyTrigger::TaskDue => {
                let owner = state.desk.as_ref().and_then(|d| d.owner.clone());
                hits.extend(news_desk.tasks_due.iter().map(|(kind, due)| Hit {
                    rule: r,
                    transition: None,
                    crossing: None,
                    desk: Some((
                        format!("task{kind}{due}"),
                        json!({"task": {"kind": kind, "due": time::format(*due), "owner": owner}}),
                    )),
                }))
            }
            NotifyTrigger::FollowupOverdue => {
                if let Some(d) = news_desk.overdue {
                    let owner = state.desk.as_ref().and_then(|d| d.owner.clone());
                    hits.push(Hit {
                        rule: r,
                        transition: None,
                        crossing: None,
                        desk: Some((
                            "overdue".into(),
                            json!({"overdue": {"deadline": time::format(d), "owner": owner}}),
                        )),
                    });
                }
            }
            NotifyTrigger::Crosses { score, threshold } => {
                let Some(b) = before else { continue };
                let (scores, total) = after.get_or_insert_with(|| {
                    let e = engine.evaluate(state, now, None);
                    (e.scores, e.total)
                });
                let (name, from, to) = match score {
                    Some(s) => (
                        p.scores[s.index()].name.clone(),
                        b.scores.get(s.index()).copied().unwrap_or(0),
                        scores[s.index()],
                    ),
                    None => ("score".to_string(), b.total, *total),
                };
                if from < threshold && to >= threshold {
                    hits.push(Hit {
                        rule: r,
                        transition: None,
                        crossing: Some(json!({"score": name, "threshold": threshold,
                                              "from": from, "to": to})),
                        desk: None,
                    });
                }
            }
        }
    }
    // `notify … once`: at most once per lead and channel, ever — the first hit of a `once`
    // statement for the lead is sent and its channel remembered with the lead (written in
    // the same commit); no `once` statement sends to that channel for the lead again.
    hits.retain(|h| {
        let rule = &p.notifies[h.rule];
        !rule.once
            || state
                .notified
                .insert(p.channels[rule.channel as usize].name.clone())
    });
    if hits.is_empty() {
        return Vec::new();
    }
    let state: &LeadState = state;
    let mut lines = Vec::new();
    let e = engine.evaluate(state, now, Some(&mut lines));
    let scores = view::scores(p, &e.scores);
    let explanation = view::contributions(p, &lines);
    let lead = &state.key;
    let mut tags = view::tags(p, &e);
    tags.extend(super::desk::tags(p, state, now));
    let owner = state.desk.as_ref().and_then(|d| d.owner.clone());
    hits.into_iter()
        .map(
            |Hit {
                 rule: r,
                 transition: t,
                 crossing,
                 desk,
             }| {
                let rule = &p.notifies[r];
                let channel = &p.channels[rule.channel as usize];
                let which = match (&desk, t) {
                    (Some((w, _)), _) => w.clone(),
                    (None, Some(i)) => i.to_string(),
                    (None, None) => "crossing".to_string(),
                };
                let id = note_id(lead, version, r, &which);
                let transition = t.map(|i| view::transition(p, &transitions[i]));
                let at = t.map_or(now, |i| transitions[i].at);
                let mut body = json!({
                    "id": id,
                    "lead": lead,
                    "channel": channel_json(channel),
                    "rule": {"line": rule.line, "text": rule.text},
                    "at": time::format(at),
                    "transition": transition,
                    "crossing": crossing,
                    "score": e.total,
                    "scores": scores,
                    "grade": view::grade(p, &e),
                    "tags": tags,
                    "explanation": explanation,
                    "program": rules.hash,
                    "ruleset": p.name,
                });
                if let (Some((_, extra)), Some(b)) = (desk, body.as_object_mut()) {
                    if let Some(x) = extra.as_object() {
                        b.extend(x.clone());
                    }
                }
                if let (Some(o), Some(b)) = (&owner, body.as_object_mut()) {
                    b.insert("owner".into(), json!(o));
                }
                Notification {
                    id,
                    lead: lead.clone(),
                    channel: channel.name.clone(),
                    created_at: now,
                    body,
                }
            },
        )
        .collect()
}

/// A `notify` rule that matched: a transition of the write, a crossing, or the desk.
struct Hit {
    rule: usize,
    transition: Option<usize>,
    /// `{"score", "threshold", "from", "to"}`.
    crossing: Option<Json>,
    /// What the desk did (which, for the id; the body's extra keys).
    desk: Option<(String, Json)>,
}

impl Hit {
    fn transition(rule: usize, i: usize) -> Hit {
        Hit {
            rule,
            transition: Some(i),
            crossing: None,
            desk: None,
        }
    }
}

/// A notification's id: the lead, the write's version, the rule and what it matched. A
/// write is committed once (its version guards it), so the same change never makes two.
fn note_id(lead: &str, version: u64, rule: usize, which: &str) -> String {
    let mut h = Sha256::new();
    for part in [lead, &version.to_string(), &rule.to_string(), which] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What [`Service::retry_notification`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Retried {
    /// The lead has no notification with that id.
    Missing,
    /// The dead letter is pending again.
    Requeued,
    /// Only failed notifications are retried; this one is in this state.
    NotFailed(NoteStatus),
}

impl Service {
    /// One page of the outbox in `status`, in due (or finished) order after `after`.
    pub async fn notifications(
        &self,
        status: NoteStatus,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<Outboxed>, ServiceError> {
        Ok(self.store.notes(status, limit, after).await?)
    }

    /// Puts a dead letter of `lead` back into the outbox, due now.
    pub async fn retry_notification(&self, lead: &str, id: &str) -> Result<Retried, ServiceError> {
        Ok(match self.store.note(lead, id).await? {
            None => Retried::Missing,
            Some(_) if self.store.requeue_note(lead, id, self.now()).await? => Retried::Requeued,
            Some(o) => Retried::NotFailed(o.status),
        })
    }
}
