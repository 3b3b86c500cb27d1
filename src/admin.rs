//! The one-shot commands on a stored lead database: `import`, `export`, `erase`, `merge`,
//! `rescore` and `sweep`. Each opens the store through [`crate::store`], runs the service
//! once and exits.

use crate::commands::load_program_as;
use crate::store::{with_existing_store, with_store};
use crate::DiagFormat;
use anyhow::{Context, Result};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::keys::KeyPolicy;
use leadscore_service::{MergeError, Roster, Service};
use leadscore_store::Store;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What the commands take from the configuration `serve` runs with.
pub struct Setup {
    pub keys: KeyPolicy,
    pub roster: Roster,
}

/// A service on `store` with the configuration's keys and desk.
fn service(program: Program, store: Arc<dyn Store>, setup: Setup) -> Result<Service> {
    Service::new(program, store)
        .with_keys(setup.keys)
        .with_roster(setup.roster)
        .map_err(anyhow::Error::msg)
}

/// `leadscore sweep`: one sweep of the SQLite store, then exit.
pub fn sweep(file: &Path, db: &Path, now: Option<&str>, setup: Setup) -> Result<ExitCode> {
    use leadscore_runtime::time;
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let now = match now {
        Some(s) => {
            time::parse(s).with_context(|| format!("--now: `{s}` is not an RFC 3339 timestamp"))?
        }
        None => time::now(),
    };
    let swept = with_existing_store(db, move |store| async move {
        let service = Service::with_clock(program, store.clone(), Arc::new(move || now))
            .with_keys(setup.keys)
            .with_roster(setup.roster)
            .map_err(anyhow::Error::msg)?;
        let mut total = 0;
        loop {
            let n = service.sweep(10_000).await?;
            total += n;
            if n < 10_000 {
                break;
            }
        }
        anyhow::Ok(total)
    })?;
    println!("{swept} lead(s) swept at {}", time::format(now));
    Ok(ExitCode::SUCCESS)
}

/// `leadscore rescore`: brings every stored lead up to the given rules, a page at a time;
/// an interrupted run resumes by running again (leads already rescored are skipped).
pub fn rescore(file: &Path, db: &Path, batch: usize, setup: Setup) -> Result<ExitCode> {
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let total = with_existing_store(db, move |store| async move {
        let service = service(program, store.clone(), setup)?;
        let mut total = leadscore_service::Rescored::default();
        let mut after = None;
        let bar = crate::progress::open_ended("leads");
        bar.set_message("rescoring");
        let mut rescored = std::collections::HashSet::new();
        loop {
            let page = service.rescore(batch.max(1), after).await?;
            total.rescored += page.rescored;
            total.changed_grade += page.changed_grade;
            // A lead rescored on one page may be listed again on a later one (its score
            // moved): it is counted once, as rescored, so the summary adds up to the leads.
            rescored.extend(page.rescored_leads);
            let current = page
                .current_leads
                .iter()
                .filter(|l| !rescored.contains(*l))
                .count();
            total.current += current;
            bar.inc((page.rescored + current) as u64);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        bar.finish_and_clear();
        anyhow::Ok(total)
    })?;
    println!(
        "{} lead(s) rescored, {} changed grade (a rescore transition each), {} already current",
        total.rescored, total.changed_grade, total.current
    );
    Ok(ExitCode::SUCCESS)
}

/// `leadscore import`: stores a history (events, JSON Lines) and/or outcomes (CSV rows →
/// `deal.won` / `deal.lost` / `lead.disqualified` events) in the database, scored by the
/// given rules as if they had arrived over HTTP. Everything is validated before anything
/// is stored; ids make a repeated import count nothing twice.
pub fn import(
    file: &Path,
    db: &Path,
    events: Option<&Path>,
    outcomes: Option<&Path>,
    setup: Setup,
) -> Result<ExitCode> {
    use leadscore_runtime::time;
    use leadscore_service::parse_events;
    use serde_json::{json, Value};
    if events.is_none() && outcomes.is_none() {
        anyhow::bail!("nothing to import: give --events FILE and/or --outcomes FILE");
    }
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let now = time::now();
    let mut items: Vec<(String, Value)> = Vec::new();
    if let Some(path) = events {
        use std::io::BufRead;
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bar = crate::progress::reading(path);
        for (i, line) in std::io::BufReader::new(bar.wrap_read(f))
            .lines()
            .enumerate()
        {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let where_ = format!("{}:{}", path.display(), i + 1);
            let v: Value =
                serde_json::from_str(&line).with_context(|| format!("{where_}: invalid JSON"))?;
            items.push((where_, v));
        }
        bar.finish_and_clear();
    }
    if let Some(path) = outcomes {
        for (n, (lead, o, at)) in crate::backtest::read_outcome_rows(path)?
            .into_iter()
            .enumerate()
        {
            let at = time::format(at.unwrap_or(now));
            let v = json!({"id": format!("outcome:{lead}:{}:{at}", o.event_type()),
                "lead": lead, "type": o.event_type(), "at": at});
            items.push((format!("{}:{}", path.display(), n + 2), v));
        }
    }
    let mut incoming = Vec::with_capacity(items.len());
    for (where_, v) in &items {
        let mut one = parse_events(v, now).map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
        incoming.append(&mut one);
    }
    if !db.exists() {
        eprintln!("creating {}", db.display());
    }
    let (accepted, duplicates) = with_store(db, move |store| async move {
        // A backfill: its transitions are history, not news for anyone.
        let service = service(program, store.clone(), setup)?.quiet();
        let (mut accepted, mut duplicates) = (0, 0);
        let bar = crate::progress::counting(incoming.len() as u64, "events");
        bar.set_message("importing");
        let mut rest = incoming;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(1000));
            bar.inc(rest.len() as u64);
            let out = service.ingest(rest).await?;
            accepted += out.accepted;
            duplicates += out.duplicates.len();
            rest = tail;
        }
        bar.finish_and_clear();
        anyhow::Ok((accepted, duplicates))
    })?;
    println!("{accepted} event(s) stored, {duplicates} already stored");
    Ok(ExitCode::SUCCESS)
}

/// `leadscore export`: everything stored about one lead, as JSON (data rights).
pub fn export(file: &Path, lead: &str, db: &Path, keys: KeyPolicy) -> Result<ExitCode> {
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let key = keys.normalise(lead);
    let k = &key;
    let out = with_existing_store(db, move |store| async move {
        let out = Service::new(program, store.clone())
            .with_keys(keys)
            .export(k)
            .await?;
        anyhow::Ok(out)
    })?;
    match out {
        Some(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: nothing is stored for lead `{key}`");
            Ok(ExitCode::from(1))
        }
    }
}

/// `leadscore erase`: erases everything stored about one lead — with the visitor ids
/// linked to it and the keys merged into it — leaving an erasure record without personal
/// data (data rights). A merged key erases the lead it joined. Idempotent.
pub fn erase(lead: &str, db: &Path, keys: KeyPolicy) -> Result<ExitCode> {
    use leadscore_store::{final_key, LeadLog};
    let asked = keys.normalise(lead);
    let k = &asked;
    let (key, e) = with_existing_store(db, move |store| async move {
        let key = final_key(store.as_ref(), k).await?;
        // Its owner's count on the desk first: a crash after leaves a lead to erase again.
        store.release(&key).await?;
        let e = store.erase(&key, leadscore_runtime::time::now()).await?;
        anyhow::Ok((key, e))
    })?;
    if e == leadscore_store::Erased::default() {
        println!("nothing stored for `{asked}`: nothing erased");
    } else {
        let links = match e.links {
            0 => String::new(),
            n => format!(", with {n} key(s) that had joined it (visitors, merged leads)"),
        };
        println!(
            "erased `{key}`: its state, {} event(s) and {} transition(s){links}",
            e.events, e.transitions
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `leadscore merge`: merges lead `from` into lead `into` on the SQLite store (as
/// `POST /leads/{into}/merge` does).
pub fn merge(file: &Path, into: &str, from: &str, db: &Path, setup: Setup) -> Result<ExitCode> {
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let out = with_existing_store(db, move |store| async move {
        let service = service(program, store.clone(), setup)?;
        anyhow::Ok(service.merge(into, from).await)
    })?;
    match out {
        Ok(m) => {
            println!(
                "merged `{}` into `{}`: {} event(s) and {} transition(s) moved; now {} ({})",
                m.merged,
                m.lead,
                m.events,
                m.transitions,
                m.view.as_ref().map_or("?", |v| v.grade.as_str()),
                m.view
                    .as_ref()
                    .map_or("null".to_string(), |v| v.score.to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(MergeError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
