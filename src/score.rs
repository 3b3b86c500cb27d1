//! `leadscore score`: offline scoring of event files and spreadsheets.

use anyhow::{bail, Context, Result};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::event::Event;
use leadscore_runtime::time::{self, Micros};
use leadscore_runtime::view::QuestionView;
use serde_json::{json, Value as Json};
use std::path::Path;

pub use leadscore_runtime::offline::Scored;

/// Reads events from a JSON Lines file, a line at a time; every bad line is named with
/// its line and field.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    use std::io::BufRead;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = Vec::new();
    let mut errors = Vec::new();
    let bar = crate::progress::reading(path);
    for (i, line) in std::io::BufReader::new(bar.wrap_read(file))
        .lines()
        .enumerate()
    {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<Json, String> =
            serde_json::from_str(&line).map_err(|e| format!("invalid JSON: {e}"));
        match parsed.and_then(|v| Event::from_json(&v).map_err(|e| e.to_string())) {
            Ok(e) => events.push(e),
            Err(e) => errors.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    bar.finish_and_clear();
    if !errors.is_empty() {
        let shown: Vec<&String> = errors.iter().take(20).collect();
        let more = errors.len().saturating_sub(20);
        let tail = if more > 0 {
            format!("\n... and {more} more")
        } else {
            String::new()
        };
        bail!(
            "{} bad event(s):\n{}{tail}",
            errors.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(events)
}

/// Reads lead attribute rows from a CSV file: each row becomes a `lead.imported` event
/// at `now` (or at its `at` column). The lead key is the `lead` column, else `email`,
/// else `id`, else the row number.
pub fn read_leads(path: &Path, now: Micros) -> Result<Vec<Event>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let key_col = ["lead", "email", "id"].iter().find_map(|k| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(k))
    });
    let at_col = headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("at"));
    let mut events = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        let mut attributes = serde_json::Map::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            if Some(h) != at_col.map(|c| &headers[c]) && !v.trim().is_empty() {
                attributes.insert(h.trim().to_string(), Json::String(v.to_string()));
            }
        }
        let lead = key_col
            .and_then(|c| row.get(c))
            .filter(|k| !k.trim().is_empty())
            .map_or_else(|| format!("row-{}", i + 2), str::to_string);
        let at = at_col
            .and_then(|c| row.get(c))
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| time::format(now), str::to_string);
        let v = json!({"id": format!("csv:{}:{}", path.display(), i + 2), "lead": lead,
            "type": "lead.imported", "at": at, "attributes": attributes});
        events.push(
            Event::from_json(&v).with_context(|| format!("{}: row {}", path.display(), i + 2))?,
        );
    }
    Ok(events)
}

/// Scores every lead (the reference: [`leadscore_runtime::offline::score_each`]).
/// Returns the results sorted by lead key and how many events were after `now`.
pub fn score_all(
    program: &Program,
    events: Vec<Event>,
    now: Micros,
) -> Result<(Vec<Scored>, usize)> {
    Ok(leadscore_runtime::offline::score_all(program, events, now)?)
}

/// As [`score_all`], handing each lead's result to `sink` in lead order as soon as it is
/// scored, so that a large batch is never held as results all at once.
pub fn score_each(
    program: &Program,
    events: Vec<Event>,
    now: Micros,
    mut sink: impl FnMut(Scored) -> Result<()>,
) -> Result<usize> {
    // Counting the leads costs a pass over the events: only when a bar is drawn.
    let bar = crate::progress::counting(0, "leads");
    if !bar.is_hidden() {
        let leads: std::collections::HashSet<&str> =
            events.iter().map(|e| e.lead.as_str()).collect();
        bar.set_length(leads.len() as u64);
    }
    bar.set_message("scoring");
    let future = leadscore_runtime::offline::score_each(program, events, now, |r| {
        bar.inc(1);
        sink(r)
    });
    bar.finish_and_clear();
    future
}

/// A readable table: one row per lead, columns two spaces apart, numbers right-aligned,
/// widths by display width (a CJK key takes two columns per character).
pub fn table(p: &Program, results: &[Scored]) -> String {
    use comfy_table::{presets::NOTHING, Cell, CellAlignment, Table};
    let mut header = vec!["lead".to_string(), "score".into(), "grade".into()];
    if p.scores.len() > 1 {
        header.extend(p.scores.iter().map(|s| s.name.clone()));
    }
    header.push("tags".into());
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header);
    for r in results {
        let v = &r.view;
        let mut row = vec![r.lead.clone(), v.score.to_string(), v.grade.clone()];
        if p.scores.len() > 1 {
            row.extend(p.scores.iter().map(|s| {
                v.scores
                    .get(&s.name)
                    .map_or("null".to_string(), i64::to_string)
            }));
        }
        row.push(v.tags.join(","));
        t.add_row(row.into_iter().enumerate().map(|(c, v)| {
            // Numbers right-aligned, text left-aligned (the lead's key is text).
            let number = c > 0 && v.parse::<i64>().is_ok();
            Cell::new(v).set_alignment(if number {
                CellAlignment::Right
            } else {
                CellAlignment::Left
            })
        }));
    }
    let mut out = lines(&t);
    // Seed 004's follow-up list: per lead, what to ask next (the rules with `ask` that
    // give it nothing yet).
    let asked: Vec<(&str, &QuestionView)> = results
        .iter()
        .flat_map(|r| {
            r.view
                .open_questions
                .iter()
                .flatten()
                .map(move |q| (r.lead.as_str(), q))
        })
        .collect();
    if !asked.is_empty() {
        let mut q = Table::new();
        q.load_preset(NOTHING);
        q.set_header(["lead", "line", "ask"]);
        for (lead, question) in asked {
            q.add_row([
                Cell::new(lead),
                Cell::new(question.line).set_alignment(CellAlignment::Right),
                Cell::new(&question.ask),
            ]);
        }
        out.push_str("\nopen questions\n");
        out.push_str(&lines(&q));
    }
    out
}

/// A table's lines: each cell is padded one space either side, so the lines lose their
/// first space and the last column's padding.
pub(crate) fn lines(t: &comfy_table::Table) -> String {
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.strip_prefix(' ').unwrap_or(&line).trim_end());
        out.push('\n');
    }
    out
}
