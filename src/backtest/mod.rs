//! `leadscore backtest`: replays a history of events through one or two programs as of an
//! instant and sets the grades they give against what happened to the leads afterwards
//! (won, lost, disqualified). Scores are a pure function of (program, events, instant), so
//! the comparison is exact: the same leads, the same events, two rule versions.

mod render;

pub use render::{html, text};

use crate::score::{read_events, score_each};
use anyhow::{bail, Context, Result};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::event::{normalise_lead, Event};
use leadscore_runtime::time::{self, Micros};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What happened to a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Won,
    Lost,
    Disqualified,
}

impl Outcome {
    /// The event types that record an outcome.
    pub fn of_event_type(t: &str) -> Option<Outcome> {
        match t {
            "deal.won" => Some(Outcome::Won),
            "deal.lost" => Some(Outcome::Lost),
            "lead.disqualified" => Some(Outcome::Disqualified),
            _ => None,
        }
    }

    /// The event type that records this outcome.
    pub fn event_type(self) -> &'static str {
        match self {
            Outcome::Won => "deal.won",
            Outcome::Lost => "deal.lost",
            Outcome::Disqualified => "lead.disqualified",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s.trim().to_lowercase().as_str() {
            "won" => Some(Outcome::Won),
            "lost" => Some(Outcome::Lost),
            "disqualified" => Some(Outcome::Disqualified),
            _ => None,
        }
    }
}

/// Each lead's latest outcome (by time; at equal times the later record wins).
#[derive(Default)]
pub struct Outcomes(HashMap<String, (Micros, Outcome)>);

impl Outcomes {
    fn record(&mut self, lead: &str, at: Micros, o: Outcome) {
        let slot = self.0.entry(lead.to_string()).or_insert((at, o));
        if at >= slot.0 {
            *slot = (at, o);
        }
    }

    fn get(&self, lead: &str) -> Option<Outcome> {
        self.0.get(lead).map(|(_, o)| *o)
    }

    /// Reads an outcomes CSV (see [`read_outcome_rows`]); a row without `at` counts as
    /// the earliest record.
    pub fn read_csv(&mut self, path: &Path) -> Result<()> {
        for (lead, o, at) in read_outcome_rows(path)? {
            self.record(&lead, at.unwrap_or(Micros::MIN), o);
        }
        Ok(())
    }
}

/// Reads `lead,outcome[,at]` rows (the key column may be `lead`, `email` or `id`; outcome
/// `won`, `lost` or `disqualified`; `at` RFC 3339 or empty). A bad row is named by file
/// and line.
pub fn read_outcome_rows(path: &Path) -> Result<Vec<(String, Outcome, Option<Micros>)>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |names: &[&str]| {
        names.iter().find_map(|n| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(n))
        })
    };
    let Some(key) = col(&["lead", "email", "id"]) else {
        bail!("{}: no `lead` (or `email`, `id`) column", path.display());
    };
    let Some(outcome) = col(&["outcome"]) else {
        bail!("{}: no `outcome` column", path.display());
    };
    let at = col(&["at"]);
    let mut rows = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row_no = i + 2;
        let row = row.with_context(|| format!("{}:{row_no}", path.display()))?;
        let lead = normalise_lead(row.get(key).unwrap_or(""));
        if lead.is_empty() {
            bail!("{}:{row_no}: the lead key is empty", path.display());
        }
        let text = row.get(outcome).unwrap_or("");
        let Some(o) = Outcome::parse(text) else {
            bail!(
                "{}:{row_no}: outcome `{text}`: expected won, lost or disqualified",
                path.display()
            );
        };
        let when = match at.and_then(|c| row.get(c)).filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(time::parse(s.trim()).with_context(|| {
                format!(
                    "{}:{row_no}: at `{s}` is not an RFC 3339 timestamp",
                    path.display()
                )
            })?),
            None => None,
        };
        rows.push((lead, o, when));
    }
    Ok(rows)
}

/// One program's grade and score for one lead.
struct Graded {
    score: i64,
    grade: String,
    json: Json,
}

/// One program's results over the history.
struct Version {
    program: Program,
    file: String,
    leads: BTreeMap<String, Graded>,
}

/// Where the history comes from.
#[derive(Clone, Copy)]
pub enum History<'a> {
    /// A JSON Lines file of events.
    File(&'a Path),
    /// Every event stored in a `leadscore serve` database.
    Db(&'a Path),
}

impl History<'_> {
    fn path(&self) -> &Path {
        match self {
            History::File(p) | History::Db(p) => p,
        }
    }

    fn read(&self) -> Result<Vec<Event>> {
        match *self {
            History::File(path) => read_events(path),
            History::Db(path) => read_store(path),
        }
    }
}

/// Every stored event of every lead in a SQLite store, lead by lead.
fn read_store(path: &Path) -> Result<Vec<Event>> {
    use leadscore_store::{LeadLog, ListQuery};
    crate::store::with_existing_store(path, |store| async move {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(&ListQuery {
                    limit: 1000,
                    after: after.clone(),
                    ..ListQuery::default()
                })
                .await?;
            for l in &page {
                for e in store.history(&l.lead).await? {
                    let mut event = Event::from_json(&e.json).map_err(|err| {
                        anyhow::anyhow!("stored event {} of {} is unreadable: {err}", e.id, l.lead)
                    })?;
                    // The lead it is stored under (a merged lead's or a visitor's event
                    // keeps the key it was sent with).
                    event.lead = l.lead.clone();
                    events.push(event);
                }
            }
            match page.last() {
                Some(l) if page.len() == 1000 => after = Some((l.summary.score, l.lead.clone())),
                _ => break,
            }
        }
        Ok(events)
    })
}

pub struct Options<'a> {
    /// Each version's program and the file it came from.
    pub programs: Vec<(Program, String)>,
    pub history: History<'a>,
    pub outcomes: Option<&'a Path>,
    pub as_of: Option<Micros>,
    pub top: usize,
    /// An A/B split: the variant's (the second version's) share of leads, basis points.
    pub split: Option<u32>,
}

/// Runs the backtest; the report as JSON (see docs/backtest.md).
pub fn run(o: Options<'_>) -> Result<Json> {
    let mut outcomes = Outcomes::default();
    let mut history = Vec::new();
    for e in o.history.read()? {
        match Outcome::of_event_type(&e.event_type) {
            Some(out) => outcomes.record(&e.lead, e.at, out),
            None => history.push(e),
        }
    }
    if let Some(path) = o.outcomes {
        outcomes.read_csv(path)?;
    }
    let Some(last) = history.iter().map(|e| e.at).max() else {
        bail!(
            "{}: no events to score (outcome events are labels, not history)",
            o.history.path().display()
        );
    };
    let as_of = o.as_of.unwrap_or(last);
    let versions = o
        .programs
        .into_iter()
        .map(|(p, file)| replay(p, file, history.clone(), as_of))
        .collect::<Result<Vec<_>>>()?;
    let future = history.iter().filter(|e| e.at > as_of).count();
    if o.split.is_some() && versions.len() != 2 {
        bail!("--split needs two rule versions: the rules in use and the variant");
    }
    Ok(report(&versions, &outcomes, as_of, future, o.top, o.split))
}

fn replay(program: Program, file: String, history: Vec<Event>, as_of: Micros) -> Result<Version> {
    let mut leads = BTreeMap::new();
    score_each(&program, history, as_of, |s| {
        let json = s.json();
        leads.insert(
            s.lead,
            Graded {
                score: s.view.score,
                grade: s.view.grade,
                json,
            },
        );
        Ok(())
    })?;
    Ok(Version {
        program,
        file,
        leads,
    })
}

fn rate(wins: usize, of: usize) -> Json {
    if of == 0 {
        Json::Null
    } else {
        json!((wins as f64 / of as f64 * 10_000.0).round() / 10_000.0)
    }
}

/// Ten equal bins over [lo, hi] (integer edges), the count of leads in each.
fn histogram(scores: &[i64], lo: i64, hi: i64) -> Vec<Json> {
    const BINS: i64 = 10;
    let width = ((hi - lo) / BINS + 1).max(1);
    let mut counts = vec![0usize; BINS as usize];
    for s in scores {
        counts[(((s - lo) / width) as usize).min(BINS as usize - 1)] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let from = lo + i as i64 * width;
            json!({"from": from, "to": from + width - 1, "leads": n})
        })
        .collect()
}

/// Per grade of `program`, in its order: leads, outcomes and conversion.
fn grade_stats<'a>(
    program: &Program,
    leads: impl Iterator<Item = (&'a String, &'a Graded)> + Clone,
    outcomes: &Outcomes,
) -> Vec<Json> {
    program
        .grades
        .iter()
        .map(|g| {
            let mut n = [0usize; 4]; // won, lost, disqualified, open
            let mut count = 0;
            for (lead, r) in leads.clone() {
                if r.grade == g.name {
                    count += 1;
                    n[match outcomes.get(lead) {
                        Some(Outcome::Won) => 0,
                        Some(Outcome::Lost) => 1,
                        Some(Outcome::Disqualified) => 2,
                        None => 3,
                    }] += 1;
                }
            }
            json!({"grade": g.name, "leads": count, "won": n[0], "lost": n[1],
                "disqualified": n[2], "open": n[3], "conversion": rate(n[0], count)})
        })
        .collect()
}

/// An A/B split's arms: each lead scored by its arm's version only, as the service would.
fn arms(versions: &[Version], outcomes: &Outcomes, share: u32) -> Json {
    use leadscore_runtime::split::{arm, Arm};
    [Arm::A, Arm::B]
        .iter()
        .zip(versions)
        .map(|(&a, v)| {
            let mine = v.leads.iter().filter(move |(lead, _)| arm(lead, share) == a);
            let leads = mine.clone().count();
            let won = mine
                .clone()
                .filter(|(lead, _)| outcomes.get(lead) == Some(Outcome::Won))
                .count();
            json!({
                "arm": a.name(),
                "file": v.file,
                "ruleset": v.program.name,
                "share": f64::from(if a == Arm::B { share } else { leadscore_runtime::split::WHOLE - share }) / 100.0,
                "leads": leads,
                "won": won,
                "conversion": rate(won, leads),
                "grades": grade_stats(&v.program, mine, outcomes),
            })
        })
        .collect()
}

fn report(
    versions: &[Version],
    outcomes: &Outcomes,
    as_of: Micros,
    future: usize,
    top: usize,
    split: Option<u32>,
) -> Json {
    let scored = &versions[0].leads;
    let wins = scored
        .keys()
        .filter(|l| outcomes.get(l) == Some(Outcome::Won))
        .count();
    let unmatched = outcomes
        .0
        .keys()
        .filter(|l| !scored.contains_key(*l))
        .count();
    let all_scores: Vec<i64> = versions
        .iter()
        .flat_map(|v| v.leads.values().map(|g| g.score))
        .collect();
    let lo = all_scores.iter().copied().min().unwrap_or(0);
    let hi = all_scores.iter().copied().max().unwrap_or(0);
    let base = rate(wins, scored.len());

    let versions_json: Vec<Json> = versions
        .iter()
        .map(|v| {
            let grades = grade_stats(&v.program, v.leads.iter(), outcomes);
            let top_grade = &grades[0];
            let lift = match (top_grade["conversion"].as_f64(), base.as_f64()) {
                (Some(c), Some(b)) if b > 0.0 => json!((c / b * 100.0).round() / 100.0),
                _ => Json::Null,
            };
            let mut warnings = Vec::new();
            let name = top_grade["grade"].as_str().unwrap_or_default();
            let (won, leads) = (
                top_grade["won"].as_u64().unwrap_or(0),
                top_grade["leads"].as_u64().unwrap_or(0),
            );
            if leads == 0 {
                warnings.push(format!("no lead reached the top grade {name}"));
            } else if won * 2 < leads {
                warnings.push(format!(
                    "fewer than 50% of the top grade's leads converted ({won} of {leads} in {name}): the threshold is too loose; raise it"
                ));
            }
            let scores: Vec<i64> = v.leads.values().map(|g| g.score).collect();
            json!({
                "file": v.file,
                "ruleset": v.program.name,
                "program": v.program.hash_hex(),
                "grades": grades,
                "top_grade": name,
                "top_lift": lift,
                "histogram": histogram(&scores, lo, hi),
                "warnings": warnings,
            })
        })
        .collect();

    let mut out = json!({
        "as_of": time::format(as_of),
        "leads": scored.len(),
        "won": wins,
        "base_rate": base,
        "events_after_as_of": future,
        "outcomes_without_history": unmatched,
        "versions": versions_json,
    });
    if let [old, new] = versions {
        out["changes"] = changes(old, new, outcomes, top);
        if let Some(share) = split {
            out["arms"] = arms(versions, outcomes, share);
        }
    }
    out
}

/// Which leads a new version moves: grade to grade counts, and the biggest score changes
/// with both explanations.
fn changes(old: &Version, new: &Version, outcomes: &Outcomes, top: usize) -> Json {
    let mut matrix: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut movers = Vec::new();
    for (lead, a) in &old.leads {
        let Some(b) = new.leads.get(lead) else {
            continue;
        };
        if a.grade != b.grade {
            *matrix.entry((&a.grade, &b.grade)).or_default() += 1;
        }
        if a.score != b.score || a.grade != b.grade {
            movers.push((lead, a, b));
        }
    }
    let moved: usize = matrix.values().sum();
    let mut matrix: Vec<_> = matrix.into_iter().collect();
    matrix.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    // Grade changes first (a threshold change moves grades without moving scores), then
    // by how far the total moved, then by key.
    movers.sort_by_key(|(lead, a, b)| {
        (
            a.grade == b.grade,
            std::cmp::Reverse((b.score - a.score).abs()),
            *lead,
        )
    });
    let side = |g: &Graded| json!({"score": g.score, "grade": g.grade, "contributions": g.json["contributions"]});
    json!({
        "moved": moved,
        "matrix": matrix.iter().map(|((f, t), n)| json!({"from": f, "to": t, "leads": n})).collect::<Vec<_>>(),
        "movers": movers.iter().take(top).map(|(lead, a, b)| json!({
            "lead": lead,
            "outcome": outcomes.get(lead).map(|o| format!("{o:?}").to_lowercase()),
            "delta": b.score - a.score,
            "old": side(a),
            "new": side(b),
        })).collect::<Vec<_>>(),
    })
}

/// A mover's explanations as a diff: the contributions only the old version made, those
/// only the new one makes (by rule text, score and points), and how many both make.
fn explanation_diff(old: &Json, new: &Json) -> (Vec<Json>, Vec<Json>, usize) {
    let key = |c: &Json| (c["rule"].clone(), c["score"].clone(), c["points"].clone());
    let list = |side: &Json| {
        side["contributions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (list(old), list(new));
    let gone: Vec<Json> = a
        .iter()
        .filter(|c| !b.iter().any(|d| key(d) == key(c)))
        .cloned()
        .collect();
    let came: Vec<Json> = b
        .iter()
        .filter(|c| !a.iter().any(|d| key(d) == key(c)))
        .cloned()
        .collect();
    let same = b.len() - came.len();
    (gone, came, same)
}

/// What a draft would change over a history, as the console's rules page shows it: the
/// running program and the draft replayed at `as_of`, compared as [`run`]'s `changes`.
pub fn preview(
    running: Program,
    draft: Program,
    history: Vec<Event>,
    as_of: Micros,
    top: usize,
) -> Result<Json> {
    let history: Vec<Event> = history
        .into_iter()
        .filter(|e| Outcome::of_event_type(&e.event_type).is_none())
        .collect();
    let old = replay(running, "running".into(), history.clone(), as_of)?;
    let new = replay(draft, "draft".into(), history, as_of)?;
    Ok(changes(&old, &new, &Outcomes::default(), top))
}
