//! `leadscore test`: rule test cases for a rules repository's CI.
//!
//! ```toml
//! [[case]]
//! name = "tier-1 buyer who asked for a quote"
//! now = "2026-11-20T00:00:00Z"
//! expect = { score = 50, grade = "B", tags = [] }
//!
//! [[case.event]]
//! type = "form.submitted"
//! at = "2026-11-01T10:00:00Z"
//! attributes = { country = "US" }
//! props = { form = "contact" }
//! ```
//!
//! Events take an `id` (default: the case's name and the event's position) and a `lead`
//! (default: "lead"); all events of a case belong to one lead (a case whose events name
//! two is refused). The whole format: docs/language.md, "Rule test cases". `expect` may give `score`,
//! `scores`, `grade`, `tags` (in declaration order) and `transitions`
//! (`{ from, to, at, cause, event }`, each field optional but `to`; `from = ""` is a
//! lead's first grade, as TOML has no null); only what it gives is checked.

use crate::score;
use anyhow::{Context, Result};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    now: toml::Value,
    #[serde(rename = "event", default)]
    events: Vec<CaseEvent>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseEvent {
    id: Option<String>,
    lead: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    at: toml::Value,
    #[serde(default)]
    attributes: toml::Table,
    #[serde(default)]
    props: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    score: Option<i64>,
    scores: Option<BTreeMap<String, i64>>,
    grade: Option<String>,
    tags: Option<Vec<String>>,
    transitions: Option<Vec<ExpectTransition>>,
    /// The `ask` texts of the open questions, in source order.
    open_questions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectTransition {
    from: Option<String>,
    to: String,
    at: Option<toml::Value>,
    cause: Option<String>,
    event: Option<String>,
}

/// TOML allows unquoted datetimes; both forms become RFC 3339 text.
fn instant(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_json(t: &toml::Table) -> Json {
    serde_json::to_value(t).unwrap_or(Json::Null)
}

/// Outcome of one cases file.
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub text: String,
    /// Every case's full result, for a snapshot a reviewer reads as a diff.
    pub snapshot: String,
}

/// One case's result as snapshot lines: score, grade, tags, every score, each rule that
/// contributed and each transition.
fn snapshot(name: &str, got: &Json) -> String {
    let mut s = format!(
        "## {name}
"
    );
    s.push_str(&format!(
        "score {}  grade {}  tags {}
",
        show(&got["score"]),
        show(&got["grade"]),
        got["tags"]
    ));
    for (k, v) in got["scores"].as_object().into_iter().flatten() {
        s.push_str(&format!(
            "  {k} = {v}
"
        ));
    }
    for c in got["contributions"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  line {:>3} {:>+5} {}: {}\n",
            c["line"],
            c["points"].as_i64().unwrap_or(0),
            c["score"].as_str().unwrap_or(""),
            c["rule"].as_str().unwrap_or("")
        ));
    }
    for q in got["open_questions"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  ask line {:>3}: {}\n",
            q["line"],
            q["ask"].as_str().unwrap_or("")
        ));
    }
    for t in got["transitions"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {} -> {} at {} ({}{})\n",
            show(&t["from"]),
            show(&t["to"]),
            show(&t["at"]),
            show(&t["cause"]),
            t["event"]
                .as_str()
                .map(|e| format!(", event {e}"))
                .unwrap_or_default()
        ));
    }
    s.push('\n');
    s
}

pub fn run(program: &Program, path: &Path) -> Result<Report> {
    let src =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: CaseFile = toml::from_str(&src)
        .with_context(|| format!("{} is not a valid cases file", path.display()))?;
    let mut report = Report {
        passed: 0,
        failed: 0,
        text: String::new(),
        snapshot: String::new(),
    };
    for case in &file.cases {
        let now_text = instant(&case.now);
        let now = time::parse(&now_text).with_context(|| {
            format!(
                "{}: case \"{}\": now `{now_text}` is not RFC 3339",
                path.display(),
                case.name
            )
        })?;
        let mut events = Vec::new();
        for (i, e) in case.events.iter().enumerate() {
            let v = json!({
                "id": e.id.clone().unwrap_or_else(|| format!("{}#{}", case.name, i + 1)),
                "lead": e.lead.clone().unwrap_or_else(|| "lead".into()),
                "type": e.event_type,
                "at": instant(&e.at),
                "attributes": to_json(&e.attributes),
                "props": to_json(&e.props),
            });
            events.push(Event::from_json(&v).with_context(|| {
                format!(
                    "{}: case \"{}\", event {}",
                    path.display(),
                    case.name,
                    i + 1
                )
            })?);
        }
        let mut leads: Vec<&str> = events.iter().map(|e| e.lead.as_str()).collect();
        leads.sort_unstable();
        leads.dedup();
        if leads.len() > 1 {
            anyhow::bail!(
                "{}: case \"{}\": its events name {} leads ({}); a case scores one lead",
                path.display(),
                case.name,
                leads.len(),
                leads.join(", ")
            );
        }
        let (results, _) = score::score_all(program, events, now)?;
        let got = results.first().map(|r| r.json()).unwrap_or(Json::Null);
        report.snapshot.push_str(&snapshot(&case.name, &got));
        let diffs = compare(&case.expect, &got);
        if diffs.is_empty() {
            report.passed += 1;
            report
                .text
                .push_str(&format!("ok   {}: {}\n", path.display(), case.name));
        } else {
            report.failed += 1;
            report
                .text
                .push_str(&format!("FAIL {}: {}\n", path.display(), case.name));
            for d in diffs {
                report.text.push_str(&format!("  {d}\n"));
            }
            report.text.push_str("  explanation:\n");
            for c in got["contributions"].as_array().into_iter().flatten() {
                report.text.push_str(&format!(
                    "    line {:>3} {:>+5} {}: {}\n",
                    c["line"],
                    c["points"].as_i64().unwrap_or(0),
                    c["score"].as_str().unwrap_or(""),
                    c["rule"].as_str().unwrap_or("")
                ));
            }
        }
    }
    Ok(report)
}

fn show(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "null".into(),
        other => other.to_string(),
    }
}

fn compare(expect: &Expect, got: &Json) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, want: Json, have: &Json| {
        if &want != have {
            diffs.push(format!(
                "{what}: expected {}, got {}",
                show(&want),
                show(have)
            ));
        }
    };
    if let Some(s) = expect.score {
        check("score", json!(s), &got["score"]);
    }
    if let Some(scores) = &expect.scores {
        for (name, v) in scores {
            check(&format!("scores.{name}"), json!(v), &got["scores"][name]);
        }
    }
    if let Some(g) = &expect.grade {
        check("grade", json!(g), &got["grade"]);
    }
    if let Some(t) = &expect.tags {
        check("tags", json!(t), &got["tags"]);
    }
    if let Some(q) = &expect.open_questions {
        let asked: Vec<&Json> = got["open_questions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| &q["ask"])
            .collect();
        check("open_questions", json!(q), &json!(asked));
    }
    if let Some(want) = &expect.transitions {
        let have = got["transitions"].as_array().cloned().unwrap_or_default();
        if want.len() != have.len() {
            let list: Vec<String> = have
                .iter()
                .map(|t| {
                    format!(
                        "{}->{} at {} ({})",
                        show(&t["from"]),
                        show(&t["to"]),
                        show(&t["at"]),
                        show(&t["cause"])
                    )
                })
                .collect();
            diffs.push(format!(
                "transitions: expected {}, got {}: {}",
                want.len(),
                have.len(),
                list.join(", ")
            ));
        } else {
            for (i, (w, h)) in want.iter().zip(&have).enumerate() {
                let n = i + 1;
                if let Some(f) = &w.from {
                    // TOML has no null: `from = ""` is a lead's first grade.
                    let want = if f.is_empty() { Json::Null } else { json!(f) };
                    check(&format!("transition {n} from"), want, &h["from"]);
                }
                check(&format!("transition {n} to"), json!(w.to), &h["to"]);
                if let Some(at) = &w.at {
                    let want_at = time::parse(&instant(at))
                        .map(time::format)
                        .unwrap_or_else(|| instant(at));
                    check(&format!("transition {n} at"), json!(want_at), &h["at"]);
                }
                if let Some(c) = &w.cause {
                    check(&format!("transition {n} cause"), json!(c), &h["cause"]);
                }
                if let Some(e) = &w.event {
                    check(&format!("transition {n} event"), json!(e), &h["event"]);
                }
            }
        }
    }
    diffs
}
