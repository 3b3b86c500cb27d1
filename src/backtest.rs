//! `leadscore backtest`: replays a history of events through one or two programs as of an
//! instant and sets the grades they give against what happened to the leads afterwards
//! (won, lost, disqualified). Scores are a pure function of (program, events, instant), so
//! the comparison is exact: the same leads, the same events, two rule versions.

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
    use leadscore_runtime::store::{ListQuery, Store};
    crate::store::with_existing_store(path, |store| async move {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(&ListQuery {
                    grade: None,
                    limit: 1000,
                    after: after.clone(),
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

fn count(v: &Json) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn pct(v: &Json) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// The report for people.
pub fn text(r: &Json) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backtest as of {}: {} leads, {} won (base rate {})",
        r["as_of"].as_str().unwrap_or_default(),
        r["leads"],
        r["won"],
        pct(&r["base_rate"])
    );
    if r["events_after_as_of"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            s,
            "{} event(s) after that instant not counted",
            r["events_after_as_of"]
        );
    }
    if r["outcomes_without_history"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            s,
            "{} outcome(s) for leads without events ignored",
            r["outcomes_without_history"]
        );
    }
    for v in r["versions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\n{}: {} ({})",
            v["file"].as_str().unwrap_or_default(),
            v["ruleset"].as_str().unwrap_or_default(),
            v["program"]
                .as_str()
                .unwrap_or_default()
                .get(..16)
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "  {:<16} {:>7} {:>6} {:>6} {:>6} {:>6} {:>10}",
            "grade", "leads", "won", "lost", "disq", "open", "conversion"
        );
        for g in v["grades"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {:<16} {:>7} {:>6} {:>6} {:>6} {:>6} {:>10}",
                g["grade"].as_str().unwrap_or_default(),
                count(&g["leads"]),
                count(&g["won"]),
                count(&g["lost"]),
                count(&g["disqualified"]),
                count(&g["open"]),
                pct(&g["conversion"])
            );
        }
        if let Some(l) = v["top_lift"].as_f64() {
            let _ = writeln!(
                s,
                "  top grade {}: {l:.2}x the base rate",
                v["top_grade"].as_str().unwrap_or_default()
            );
        }
        let _ = writeln!(s, "  score distribution:");
        let bins = v["histogram"].as_array().cloned().unwrap_or_default();
        let most = bins
            .iter()
            .filter_map(|b| b["leads"].as_u64())
            .max()
            .unwrap_or(0)
            .max(1);
        for b in &bins {
            let n = b["leads"].as_u64().unwrap_or(0);
            let bar = "#".repeat(((n * 40).div_ceil(most)) as usize);
            let line = format!(
                "  {:>6} .. {:<6} {:>6} {bar}",
                b["from"].to_string(),
                b["to"].to_string(),
                n
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        for w in v["warnings"].as_array().into_iter().flatten() {
            let _ = writeln!(s, "  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    for a in r["arms"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\narm {} ({}% of leads, {}): {} leads, {} won, conversion {}",
            a["arm"].as_str().unwrap_or_default(),
            a["share"],
            a["file"].as_str().unwrap_or_default(),
            count(&a["leads"]),
            count(&a["won"]),
            pct(&a["conversion"])
        );
        for g in a["grades"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {:<16} {:>7} {:>6} {:>10}",
                g["grade"].as_str().unwrap_or_default(),
                count(&g["leads"]),
                count(&g["won"]),
                pct(&g["conversion"])
            );
        }
    }
    if let Some(c) = r.get("changes") {
        let _ = writeln!(s, "\n{} lead(s) change grade", c["moved"]);
        for m in c["matrix"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {} -> {}: {}",
                m["from"].as_str().unwrap_or_default(),
                m["to"].as_str().unwrap_or_default(),
                m["leads"]
            );
        }
        let movers = c["movers"].as_array().cloned().unwrap_or_default();
        if !movers.is_empty() {
            let _ = writeln!(s, "\nbiggest movers:");
        }
        for m in &movers {
            let _ = writeln!(
                s,
                "  {} ({}): {} {} -> {} {} ({:+})",
                m["lead"].as_str().unwrap_or_default(),
                m["outcome"].as_str().unwrap_or("open"),
                m["old"]["score"],
                m["old"]["grade"].as_str().unwrap_or_default(),
                m["new"]["score"],
                m["new"]["grade"].as_str().unwrap_or_default(),
                m["delta"].as_i64().unwrap_or(0)
            );
            let (gone, came, same) = explanation_diff(&m["old"], &m["new"]);
            for (sign, list) in [('-', &gone), ('+', &came)] {
                for c in list {
                    let _ = writeln!(
                        s,
                        "    {sign} line {:>3}: {:+} {}  {}",
                        count(&c["line"]),
                        c["points"].as_i64().unwrap_or(0),
                        c["score"].as_str().unwrap_or_default(),
                        c["rule"].as_str().unwrap_or_default()
                    );
                }
            }
            if same > 0 {
                let _ = writeln!(s, "      ({same} contribution(s) unchanged)");
            }
        }
    }
    s
}

/// A self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched) of the
/// same report, for the people who own the rules.
pub fn html(r: &Json) -> String {
    use maud::{html, PreEscaped, DOCTYPE};
    let s = |v: &Json| v.as_str().unwrap_or_default().to_string();
    let versions = r["versions"].as_array().cloned().unwrap_or_default();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "leadscore backtest as of " (s(&r["as_of"])) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Backtest as of " (s(&r["as_of"])) }
                p.summary {
                    (count(&r["leads"])) " leads, " (count(&r["won"])) " won — base rate "
                    (pct(&r["base_rate"])) "."
                    @if count(&r["events_after_as_of"]) > 0 {
                        " " (count(&r["events_after_as_of"])) " event(s) after that instant not counted."
                    }
                    @if count(&r["outcomes_without_history"]) > 0 {
                        " " (count(&r["outcomes_without_history"])) " outcome(s) for leads without events ignored."
                    }
                }
                div.versions {
                    @for v in &versions {
                        section.version {
                            h2 { (s(&v["file"])) }
                            p { "ruleset " (s(&v["ruleset"])) }
                            p.hash { "program " code { (s(&v["program"]).get(..16).unwrap_or_default()) } }
                            @for w in v["warnings"].as_array().into_iter().flatten() {
                                p.warning { "⚠ " (s(w)) }
                            }
                            table {
                                thead { tr { th { "grade" } th { "leads" } th { "won" } th { "lost" } th { "disq." } th { "open" } th { "conversion" } } }
                                tbody {
                                    @for g in v["grades"].as_array().into_iter().flatten() {
                                        tr {
                                            td { (s(&g["grade"])) }
                                            td.n { (count(&g["leads"])) }
                                            td.n { (count(&g["won"])) }
                                            td.n { (count(&g["lost"])) }
                                            td.n { (count(&g["disqualified"])) }
                                            td.n { (count(&g["open"])) }
                                            td.n { (pct(&g["conversion"])) }
                                        }
                                    }
                                }
                            }
                            @if let Some(l) = v["top_lift"].as_f64() {
                                p { "Top grade " (s(&v["top_grade"])) ": " (format!("{l:.2}")) "× the base rate." }
                            }
                            h3 { "Conversion per grade" }
                            (PreEscaped(conversion_chart(v, r["base_rate"].as_f64())))
                            h3 { "Score distribution" }
                            (PreEscaped(histogram_chart(v)))
                        }
                    }
                }
                @if let Some(c) = r.get("changes") {
                    h2 { (count(&c["moved"])) " lead(s) change grade" }
                    ul {
                        @for m in c["matrix"].as_array().into_iter().flatten() {
                            li { (s(&m["from"])) " → " (s(&m["to"])) ": " (count(&m["leads"])) }
                        }
                    }
                    @let movers = c["movers"].as_array().cloned().unwrap_or_default();
                    @if !movers.is_empty() {
                        h2 { "Biggest movers" }
                        table.movers {
                            thead { tr { th { "lead" } th { "outcome" } th { "before" } th { "after" } th { "why" } } }
                            tbody {
                                @for m in &movers {
                                    tr {
                                        td { (s(&m["lead"])) }
                                        td { (m["outcome"].as_str().unwrap_or("open")) }
                                        td.n { (m["old"]["score"]) " " (s(&m["old"]["grade"])) }
                                        td.n { (m["new"]["score"]) " " (s(&m["new"]["grade"])) }
                                        @let (gone, came, same) = explanation_diff(&m["old"], &m["new"]);
                                        td {
                                            @for (label, list) in [("no longer", &gone), ("now", &came)] {
                                                @for c in list {
                                                    div.why {
                                                        span.label { (label) } " line " (c["line"]) ": "
                                                        (format!("{:+}", c["points"].as_i64().unwrap_or(0))) " "
                                                        (s(&c["score"])) " — " code { (s(&c["rule"])) }
                                                    }
                                                }
                                            }
                                            @if same > 0 {
                                                div.why.label { (same) " contribution(s) unchanged" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1em;color:#555}\
.versions{display:flex;gap:2em;flex-wrap:wrap}.version{flex:1 1 30em}\
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.warning{background:#fff3cd;padding:.4em .6em;border-left:4px solid #e0a800}\
.hash{color:#777;font-size:.85em}.why{font-size:.85em}.label{color:#777}svg text{font:12px system-ui,sans-serif}";

/// Horizontal bars: each grade's conversion, with the base rate as a dashed line.
fn conversion_chart(v: &Json, base: Option<f64>) -> String {
    use std::fmt::Write;
    let grades = v["grades"].as_array().cloned().unwrap_or_default();
    let (left, width, row) = (90.0, 300.0, 24.0);
    let height = row * grades.len() as f64 + 20.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img" aria-label="conversion per grade">"#,
        left + width + 70.0
    );
    for (i, g) in grades.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let c = g["conversion"].as_f64().unwrap_or(0.0);
        let name = maud::html! { (g["grade"].as_str().unwrap_or_default()) }.into_string();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{y}" width="{:.1}" height="{}" fill="#4a7bd0"/><text x="{:.1}" y="{}">{} ({} leads)</text>"##,
            left - 6.0,
            y + 14.0,
            c * width,
            row - 8.0,
            left + c * width + 4.0,
            y + 14.0,
            pct(&g["conversion"]),
            count(&g["leads"])
        );
    }
    if let Some(b) = base {
        let x = left + b * width;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="0" y2="{}" stroke="#c33" stroke-dasharray="4 3"/><text x="{x:.1}" y="{}" fill="#c33">base {}</text>"##,
            height - 16.0,
            height - 3.0,
            pct(&json!(b))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical bars: leads per score bin.
fn histogram_chart(v: &Json) -> String {
    use std::fmt::Write;
    let bins = v["histogram"].as_array().cloned().unwrap_or_default();
    let most = bins
        .iter()
        .map(|b| count(&b["leads"]))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (bar, gap, tall) = (34.0, 6.0, 120.0);
    let width = bins.len() as f64 * (bar + gap);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" role="img" aria-label="score distribution">"#,
        tall + 40.0
    );
    for (i, b) in bins.iter().enumerate() {
        let n = count(&b["leads"]);
        let h = n as f64 / most * tall;
        let x = i as f64 * (bar + gap);
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{:.1}" width="{bar}" height="{h:.1}" fill="#6aa56a"><title>{}..{}: {n}</title></rect><text x="{}" y="{}" text-anchor="middle">{n}</text><text x="{}" y="{}" text-anchor="middle">{}</text>"##,
            tall - h + 14.0,
            b["from"],
            b["to"],
            x + bar / 2.0,
            tall - h + 11.0,
            x + bar / 2.0,
            tall + 30.0,
            b["from"]
        );
    }
    svg.push_str("</svg>");
    svg
}
