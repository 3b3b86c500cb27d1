//! Results in the shapes of DESIGN.md: a lead with its explanation, a transition. One
//! definition for `leadscore score`, `leadscore test` and the HTTP API.

use crate::bytecode::Program;
use crate::engine::{Cause, Contribution, Transition};
use crate::time;
use serde_json::{json, Value as Json};

/// `{"lead","score","scores","grade","tags","contributions","transitions"}`.
#[allow(clippy::too_many_arguments)]
pub fn lead_json(
    p: &Program,
    lead: &str,
    scores: &[i64],
    total: i64,
    grade: usize,
    tags: &[usize],
    lines: &[Contribution],
    transitions: &[Transition],
) -> Json {
    let scores_obj: serde_json::Map<String, Json> = p
        .scores
        .iter()
        .zip(scores)
        .map(|(s, v)| (s.name.clone(), json!(v)))
        .collect();
    json!({
        "lead": lead,
        "score": total,
        "scores": scores_obj,
        "grade": p.grades[grade].name,
        "tags": tags.iter().map(|&t| p.tags[t].name.clone()).collect::<Vec<_>>(),
        "contributions": contributions_json(p, lines),
        "transitions": transitions.iter().map(|t| transition_json(p, t)).collect::<Vec<_>>(),
    })
}

/// The explanation: one line per contributing rule, plus `clamp` lines.
pub fn contributions_json(p: &Program, lines: &[Contribution]) -> Vec<Json> {
    lines
        .iter()
        .map(|c| {
            let score = &p.scores[c.score.index()];
            match c.rule {
                Some(r) => {
                    let info = &p.rules[r.index()];
                    json!({"line": info.line, "rule": info.text, "score": score.name, "points": c.points})
                }
                None => json!({"line": score.line, "rule": "clamp", "score": score.name, "points": c.points}),
            }
        })
        .collect()
}

/// `{"from","to","at","cause","event"}`, and `"merged"` (the key merged in) for a merge.
pub fn transition_json(p: &Program, t: &Transition) -> Json {
    let (cause, event) = match &t.cause {
        Cause::Event(id) => ("event", Json::String(id.clone())),
        Cause::Time => ("time", Json::Null),
        Cause::Rescore => ("rescore", Json::Null),
        Cause::Merge(_) => ("merge", Json::Null),
    };
    let mut j = json!({
        "from": t.from.map(|g| p.grades[g.index()].name.clone()),
        "to": p.grades[t.to.index()].name,
        "at": time::format(t.at),
        "cause": cause,
        "event": event,
    });
    if let Cause::Merge(key) = &t.cause {
        j["merged"] = json!(key);
    }
    j
}
