//! `leadscore queue`: a work queue of the stored leads in the terminal — a named view of
//! the configuration or a query — as `GET /views/{name}` and `GET /leads` answer it.

use crate::commands::load_program_as;
use crate::store::with_existing_store;
use crate::{DiagFormat, ScoreFormat};
use anyhow::{bail, Result};
use leadscore_runtime::time;
use leadscore_service::config::Config;
use leadscore_service::{Queue, Roster, Service};
use std::path::Path;
use std::process::ExitCode;

pub struct Asked<'a> {
    pub view: Option<&'a str>,
    pub query: Option<&'a str>,
    /// Who `me` is.
    pub reader: Option<&'a str>,
    pub limit: usize,
    pub now: Option<&'a str>,
    pub format: ScoreFormat,
}

pub fn queue(file: &Path, db: &Path, config: &Config, a: Asked) -> Result<ExitCode> {
    let Some(program) = load_program_as(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(crate::commands::RULE_ERRORS));
    };
    let now = match a.now {
        Some(s) => time::parse(s)
            .ok_or_else(|| anyhow::anyhow!("--now: `{s}` is not an RFC 3339 timestamp"))?,
        None => time::now(),
    };
    let (query, title) = match (a.view, a.query) {
        (Some(name), None) => match config.views.get(name) {
            Some(v) => (v.query.clone(), v.title.clone()),
            None => {
                let known: Vec<&str> = config.views.keys().map(String::as_str).collect();
                bail!(
                    "the configuration has no view `{name}` (it has: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )
            }
        },
        (None, Some(q)) => (q.to_string(), None),
        _ => bail!("give --view NAME or --query 'grade=A&…'"),
    };
    let pairs = Queue::pairs(&query).map_err(anyhow::Error::msg)?;
    let reader = a.reader.map(|r| r.trim().to_lowercase());
    let mut q = Queue::parse(&pairs, reader.as_deref(), now).map_err(anyhow::Error::msg)?;
    q.list.limit = a.limit.max(1);
    let roster = Roster::from_config(config);
    let keys = config.keys;
    let rows = with_existing_store(db, move |store| async move {
        let service = Service::with_clock(program, store, std::sync::Arc::new(move || now))
            .with_keys(keys)
            .with_roster(roster)
            .map_err(anyhow::Error::msg)?;
        anyhow::Ok(service.queue(&q).await?)
    })?;
    match a.format {
        ScoreFormat::Json => {
            for r in &rows {
                let s = &r.summary;
                println!(
                    "{}",
                    serde_json::json!({"lead": r.lead, "score": s.score, "grade": s.grade,
                        "owner": s.owner, "pool": s.pool, "tags": s.tags,
                        "deadline": s.deadline.map(time::format),
                        "updated_at": time::format(s.updated_at)})
                );
            }
        }
        ScoreFormat::Table => {
            use comfy_table::{presets::NOTHING, Cell, CellAlignment, Table};
            if let Some(t) = title {
                println!("{t}");
            }
            let mut t = Table::new();
            t.load_preset(NOTHING);
            t.set_header(["lead", "score", "grade", "owner", "deadline", "tags"]);
            for r in &rows {
                let s = &r.summary;
                let owner = match (&s.owner, s.pool) {
                    (Some(o), _) => o.clone(),
                    (None, true) => "(pool)".into(),
                    (None, false) => String::new(),
                };
                t.add_row([
                    Cell::new(&r.lead),
                    Cell::new(s.score).set_alignment(CellAlignment::Right),
                    Cell::new(s.grade.as_deref().unwrap_or("")),
                    Cell::new(owner),
                    Cell::new(s.deadline.map(time::format).unwrap_or_default()),
                    Cell::new(s.tags.join(",")),
                ]);
            }
            print!("{}", crate::score::lines(&t));
            println!("{} lead(s)", rows.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
