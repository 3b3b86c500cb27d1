//! What is shown of a lead, typed, with its one serde shape (DESIGN.md): a lead after a
//! write, a lead with its explanation, a transition. One definition for `leadscore score`,
//! `leadscore test`, the HTTP API, the outbox and the stores.
//!
//! Every answer's object keys are in sorted order, so each struct declares its fields in
//! that order: a field added out of order would change the bytes every endpoint prints
//! (`view_keys_are_sorted` below pins it).

use crate::bytecode::{Program, TOTAL};
use crate::engine::{Cause, Contribution, Evaluation, Transition};
use crate::time::{self, Micros};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Each named score's value.
pub type Scores = BTreeMap<String, i64>;

/// One line of an explanation: a rule that contributed, or `"clamp"` for a `range`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionView {
    pub line: u32,
    pub points: i64,
    pub rule: String,
    pub score: String,
}

/// A rule with `ask "TEXT"` that gives the lead nothing yet: what to ask the lead next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionView {
    pub ask: String,
    pub line: u32,
    pub rule: String,
}

/// `{"at","cause","event","from","to"}`; `"merged"` (the key merged in) for a merge;
/// stored transitions also name the rules that made them (`"program"`, `"ruleset"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionView {
    pub at: String,
    /// `event`, `time`, `rescore` or `merge`.
    pub cause: String,
    /// The event that caused it (`cause` is `event`).
    pub event: Option<String>,
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<String>,
    /// On a transition moved in by a merge: the key it was recorded under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<String>,
    pub to: String,
}

/// A lead after a write: `{"grade","lead","score","scores","tags","transitions"}` with the
/// transitions the write recorded; as `leadscore score` prints it, with its explanation
/// (`"contributions"`) and every transition that led there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadScores {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Vec<ContributionView>>,
    pub grade: String,
    pub lead: String,
    /// The rules with `ask` that give nothing yet (present when the rules have any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_questions: Option<Vec<QuestionView>>,
    pub score: i64,
    pub scores: Scores,
    pub tags: Vec<String>,
    pub transitions: Vec<TransitionView>,
}

/// A lead's scores as some rules see them, with the explanation:
/// `{"contributions","grade","program","ruleset","score","scores","tags"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explained {
    pub contributions: Vec<ContributionView>,
    pub grade: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_questions: Option<Vec<QuestionView>>,
    pub program: String,
    pub ruleset: String,
    pub score: i64,
    pub scores: Scores,
    pub tags: Vec<String>,
}

/// `GET /leads/{lead}`: the lead as the rules that score it see it now, with what is
/// stored about it, and the shadow rules' view beside it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeadDetail {
    /// The lead's arm under an A/B split (`"a"`, `"b"`), if leads are split.
    pub arm: Option<&'static str>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub contributions: Vec<ContributionView>,
    /// The lead's place on the sales desk, when the rules assign leads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desk: Option<DeskView>,
    pub events: u64,
    pub first_at: Option<String>,
    pub grade: String,
    pub last_at: Option<String>,
    pub lead: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_questions: Option<Vec<QuestionView>>,
    pub program: String,
    pub ruleset: String,
    pub score: i64,
    pub scores: Scores,
    pub shadow: Option<Explained>,
    pub tags: Vec<String>,
    pub transitions: Vec<TransitionView>,
}

/// A lead on the sales desk, as `GET /leads/{lead}` shows it (docs/desk.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeskView {
    pub assigned_at: Option<String>,
    /// Every change of owner kept, oldest first.
    pub changes: Vec<OwnerChangeView>,
    pub closed: bool,
    pub deadline: Option<String>,
    pub followup_at: Option<String>,
    pub followup_by: Option<String>,
    /// The deadline passed with no follow-up.
    pub overdue: bool,
    pub owner: Option<String>,
    pub pool: bool,
    /// The `assign` statement that placed the lead.
    pub rule: Option<String>,
    /// The follow-up plan's steps.
    pub tasks: Vec<TaskView>,
    pub team: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskView {
    pub done_at: Option<String>,
    pub due: String,
    pub kind: String,
    /// Due and not done.
    pub late: bool,
}

impl DeskView {
    pub fn new(d: &crate::state::Desk, now: Micros) -> DeskView {
        let at = |t: Option<Micros>| t.map(time::format);
        DeskView {
            assigned_at: at(d.assigned_at),
            changes: d.changes.iter().map(owner_change).collect(),
            closed: d.closed,
            deadline: at(d.deadline),
            followup_at: at(d.followup_at),
            followup_by: d.followup_by.clone(),
            overdue: d.overdue(now),
            owner: d.owner.clone(),
            pool: d.pool,
            rule: d.rule.clone(),
            tasks: d
                .tasks
                .iter()
                .map(|t| TaskView {
                    done_at: at(t.done_at),
                    due: time::format(t.due),
                    kind: t.kind.clone(),
                    late: t.done_at.is_none() && t.due <= now,
                })
                .collect(),
            team: d.team.clone(),
        }
    }
}

/// One change of owner: `{at, from_owner, to_owner, cause, line, rule}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OwnerChangeView {
    pub at: String,
    pub cause: String,
    pub from_owner: Option<String>,
    pub line: Option<u32>,
    pub rule: Option<String>,
    pub to_owner: Option<String>,
}

pub fn owner_change(c: &crate::state::OwnerChange) -> OwnerChangeView {
    OwnerChangeView {
        at: time::format(c.at),
        cause: c.cause.clone(),
        from_owner: c.from_owner.clone(),
        line: c.line,
        rule: c.rule.clone(),
        to_owner: c.to_owner.clone(),
    }
}

/// The named scores of an evaluation.
pub fn scores(p: &Program, values: &[i64]) -> Scores {
    p.scores
        .iter()
        .zip(values)
        .map(|(s, v)| (s.name.clone(), *v))
        .collect()
}

/// The tags of an evaluation, by name.
pub fn tags(p: &Program, e: &Evaluation) -> Vec<String> {
    e.tags.iter().map(|&t| p.tags[t].name.clone()).collect()
}

/// The grade of an evaluation, by name.
pub fn grade(p: &Program, e: &Evaluation) -> String {
    p.grades[e.grade.index()].name.clone()
}

/// The open questions: the rules with `ask` that contribute nothing (no line of the
/// explanation), in source order; `None` when no rule asks anything.
pub fn questions(p: &Program, lines: &[Contribution]) -> Option<Vec<QuestionView>> {
    if p.rules.iter().all(|r| r.ask.is_none()) {
        return None;
    }
    Some(
        p.rules
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                !lines
                    .iter()
                    .any(|l| l.rule.is_some_and(|r| r.index() == *i))
            })
            .filter_map(|(_, r)| {
                r.ask.as_ref().map(|ask| QuestionView {
                    ask: ask.clone(),
                    line: r.line,
                    rule: r.text.clone(),
                })
            })
            .collect(),
    )
}

/// The explanation: one line per contributing rule, plus `clamp` lines.
pub fn contributions(p: &Program, lines: &[Contribution]) -> Vec<ContributionView> {
    lines
        .iter()
        .map(|c| {
            if c.score == TOTAL {
                // The total's range clamped the lead's `score`.
                return ContributionView {
                    line: p.total.as_ref().map_or(0, |t| t.line),
                    points: c.points,
                    rule: "clamp".to_string(),
                    score: "score".to_string(),
                };
            }
            let score = &p.scores[c.score.index()];
            let (line, rule) = match c.rule {
                Some(r) => {
                    let info = &p.rules[r.index()];
                    (info.line, info.text.clone())
                }
                None => (score.line, "clamp".to_string()),
            };
            ContributionView {
                line,
                points: c.points,
                rule,
                score: score.name.clone(),
            }
        })
        .collect()
}

/// A transition as shown (not yet naming its rules).
pub fn transition(p: &Program, t: &Transition) -> TransitionView {
    let (cause, event, merged) = match &t.cause {
        Cause::Event(id) => ("event", Some(id.clone()), None),
        Cause::Time => ("time", None, None),
        Cause::Rescore => ("rescore", None, None),
        Cause::Merge(key) => ("merge", None, Some(key.clone())),
    };
    TransitionView {
        at: time::format(t.at),
        cause: cause.to_string(),
        event,
        from: t.from.map(|g| p.grades[g.index()].name.clone()),
        merged,
        merged_from: None,
        program: None,
        ruleset: None,
        to: p.grades[t.to.index()].name.clone(),
    }
}

impl LeadScores {
    /// A lead evaluated at one instant, with its explanation and the transitions that led
    /// there (what `leadscore score` prints).
    pub fn explained(
        p: &Program,
        lead: &str,
        e: &Evaluation,
        lines: &[Contribution],
        transitions: &[Transition],
    ) -> LeadScores {
        LeadScores {
            contributions: Some(contributions(p, lines)),
            grade: grade(p, e),
            lead: lead.to_string(),
            open_questions: questions(p, lines),
            score: e.total,
            scores: scores(p, &e.scores),
            tags: tags(p, e),
            transitions: transitions.iter().map(|t| transition(p, t)).collect(),
        }
    }
}

impl Explained {
    pub fn new(p: &Program, hash: &str, e: &Evaluation, lines: &[Contribution]) -> Explained {
        Explained {
            contributions: contributions(p, lines),
            grade: grade(p, e),
            open_questions: questions(p, lines),
            program: hash.to_string(),
            ruleset: p.name.clone(),
            score: e.total,
            scores: scores(p, &e.scores),
            tags: tags(p, e),
        }
    }
}

impl LeadDetail {
    /// `live` (the rules that score the lead) with what is stored about the lead.
    pub fn new(
        live: Explained,
        state: &crate::state::LeadState,
        transitions: Vec<TransitionView>,
        shadow: Option<Explained>,
        arm: Option<&'static str>,
    ) -> LeadDetail {
        let at = |t: Option<Micros>| t.map(time::format);
        LeadDetail {
            arm,
            attributes: state.attributes.clone(),
            contributions: live.contributions,
            desk: None,
            events: state.events,
            first_at: at(state.first_at),
            grade: live.grade,
            last_at: at(state.last_at),
            lead: state.key.clone(),
            open_questions: live.open_questions,
            program: live.program,
            ruleset: live.ruleset,
            score: live.score,
            scores: live.scores,
            shadow,
            tags: live.tags,
            transitions,
        }
    }
}

impl From<LeadDetail> for LeadScores {
    /// The lead's scores, grade, tags and every recorded transition, without the rest.
    fn from(d: LeadDetail) -> LeadScores {
        LeadScores {
            contributions: None,
            grade: d.grade,
            lead: d.lead,
            open_questions: None,
            score: d.score,
            scores: d.scores,
            tags: d.tags,
            transitions: d.transitions,
        }
    }
}

/// The JSON of a view (infallible for these types: string keys, no floats).
pub fn to_json<T: Serialize>(view: &T) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys in the order a struct serializes them, sorted as the JSON of every answer.
    fn keys_sorted(text: &str) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let from_value = serde_json::to_string(&v).unwrap();
        assert_eq!(text, from_value, "fields out of sorted order");
    }

    #[test]
    fn view_keys_are_sorted() {
        let t = TransitionView {
            at: "2026-01-01T00:00:00Z".into(),
            cause: "merge".into(),
            event: None,
            from: Some("B".into()),
            merged: Some("b@x".into()),
            merged_from: Some("c@x".into()),
            program: Some("ab".into()),
            ruleset: Some("r".into()),
            to: "A".into(),
        };
        keys_sorted(&serde_json::to_string(&t).unwrap());
        let c = ContributionView {
            line: 1,
            points: 2,
            rule: "r".into(),
            score: "s".into(),
        };
        keys_sorted(&serde_json::to_string(&c).unwrap());
        let scores: Scores = [("b".into(), 1), ("a".into(), 2)].into();
        let l = LeadScores {
            contributions: None,
            grade: "A".into(),
            lead: "a".into(),
            open_questions: Some(vec![QuestionView {
                ask: "q".into(),
                line: 2,
                rule: "r".into(),
            }]),
            score: 3,
            scores: scores.clone(),
            tags: vec![],
            transitions: vec![t.clone()],
        };
        keys_sorted(&serde_json::to_string(&l).unwrap());
        let e = Explained {
            contributions: vec![c.clone()],
            grade: "A".into(),
            open_questions: Some(vec![QuestionView {
                ask: "q".into(),
                line: 2,
                rule: "r".into(),
            }]),
            program: "ab".into(),
            ruleset: "r".into(),
            score: 3,
            scores: scores.clone(),
            tags: vec!["hot".into()],
        };
        keys_sorted(&serde_json::to_string(&e).unwrap());
        let s = LeadScores {
            contributions: Some(vec![c]),
            grade: "A".into(),
            lead: "a".into(),
            open_questions: None,
            score: 3,
            scores,
            tags: vec![],
            transitions: vec![t.clone()],
        };
        keys_sorted(&serde_json::to_string(&s).unwrap());
        let state: crate::state::LeadState = serde_json::from_value(serde_json::json!({
            "version": 0, "key": "a", "program": "", "attributes": {}, "rules": [],
            "first_at": null, "last_at": null, "events": 0, "grade": null,
            "grade_name": null, "evaluated_at": null
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let d = LeadDetail::new(e.clone(), &state, vec![t], Some(e), Some("b"));
        keys_sorted(&serde_json::to_string(&d).unwrap());
    }
}
