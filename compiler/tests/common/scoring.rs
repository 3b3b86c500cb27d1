//! The helpers of the semantic tests: rules compiled by the real compiler, one lead's
//! events by the day, and what the engine says of them.
#![allow(dead_code)]

use leadscore_runtime::bytecode::Program;
use leadscore_runtime::engine::{Cause, Engine};
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use serde_json::{json, Value};

pub fn program(src: &str) -> Program {
    match leadscore_compiler::compile(src, "t") {
        Ok(c) => c.program,
        Err(d) => panic!("{d:?}"),
    }
}

pub fn t(s: &str) -> i64 {
    time::parse(s).unwrap_or_else(|| panic!("bad time {s}"))
}

/// Day `d` (fractional allowed) after 2026-01-01T00:00:00Z.
pub fn day(d: f64) -> String {
    time::format(t("2026-01-01T00:00:00Z") + (d * 86_400_000_000.0) as i64)
}

/// Events: (type, at, attributes, props).
pub fn events(list: &[(&str, String, Value, Value)]) -> Vec<Event> {
    list.iter()
        .enumerate()
        .map(|(i, (ty, at, a, p))| {
            Event::from_json(
                &json!({"id": format!("e{i}"), "lead": "l", "type": ty, "at": at,
                "attributes": a, "props": p}),
            )
            .unwrap()
        })
        .collect()
}

pub fn ev(ty: &str, d: f64) -> (&str, String, Value, Value) {
    (ty, day(d), json!({}), json!({}))
}

pub fn attrs(d: f64, a: Value) -> (&'static str, String, Value, Value) {
    ("lead.updated", day(d), a, json!({}))
}

pub struct Result {
    pub scores: Vec<i64>,
    pub total: i64,
    pub grade: String,
    pub tags: Vec<String>,
    pub transitions: Vec<(Option<String>, String, String, String)>,
    pub contributions: Vec<(Option<u32>, i64)>,
    /// Open questions: (line, ask).
    pub questions: Vec<(u32, String)>,
}

pub fn run(p: &Program, evs: &[Event], now: &str) -> Result {
    let mut engine = Engine::new(p);
    let mut tr = Vec::new();
    let lead = engine.rebuild("l", evs, t(now), &mut tr).unwrap();
    let mut lines = Vec::new();
    let e = engine.evaluate(&lead, t(now), Some(&mut lines));
    let name = |g: leadscore_runtime::bytecode::GradeId| p.grades[g.index()].name.clone();
    Result {
        scores: e.scores.clone(),
        total: e.total,
        grade: name(e.grade),
        tags: e.tags.iter().map(|&i| p.tags[i].name.clone()).collect(),
        transitions: tr
            .iter()
            .map(|x| {
                let cause = match &x.cause {
                    Cause::Event(id) => format!("event {id}"),
                    Cause::Time => "time".into(),
                    Cause::Rescore => "rescore".into(),
                    Cause::Merge(k) => format!("merge {k}"),
                };
                (x.from.map(name), name(x.to), time::format(x.at), cause)
            })
            .collect(),
        contributions: lines
            .iter()
            .map(|c| (c.rule.map(|r| p.rules[r.index()].line), c.points))
            .collect(),
        questions: leadscore_runtime::view::questions(p, &lines)
            .unwrap_or_default()
            .into_iter()
            .map(|q| (q.line, q.ask))
            .collect(),
    }
}

pub fn total(src: &str, evs: &[(&str, String, Value, Value)], now: f64) -> i64 {
    let p = program(&format!(
        "{src}\ngrade A when score >= 1000000\ngrade C otherwise\n"
    ));
    run(&p, &events(evs), &day(now)).total
}
