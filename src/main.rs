//! The `leadscore` command line.

mod admin;
mod backtest;
mod cases;
mod commands;
mod console;
mod progress;
mod queue;
mod sample;
mod score;
mod serve;
mod store;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "leadscore", version, about = "Lead scoring as code", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum DiagFormat {
    /// Source excerpts with carets.
    #[default]
    Rich,
    /// One line per problem: file:line:col: error[code]: message.
    Short,
}

#[derive(Subcommand)]
enum Command {
    /// Check rules files: exit 0 when clean, 1 on rule errors, 2 on usage or IO errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How to print problems.
        #[arg(long, value_enum, default_value_t)]
        diagnostics: DiagFormat,
        /// A sample of real events (JSON Lines): warn about event types, attributes and
        /// props the rules read that never occur in it, and its types no rule reads.
        #[arg(long)]
        events: Option<PathBuf>,
    },
    /// Compile a rules file to verified bytecode.
    Compile {
        file: PathBuf,
        /// Where to write the program (e.g. program.lsb).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a readable listing of a rules file's or a compiled program's bytecode.
    Disasm { file: PathBuf },
    /// Run rule test cases: exit 0 when all pass, 1 with a readable diff when any fails.
    Test {
        /// Rules file or compiled program.
        file: PathBuf,
        /// Cases files (TOML).
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        /// Also compare snapshots in this directory: the program's listing
        /// (RULES.disasm.snap) and every case's full result (CASES.scores.snap).
        #[arg(long)]
        snapshots: Option<PathBuf>,
        /// Rewrite the snapshots that differ instead of failing.
        #[arg(long)]
        update: bool,
    },
    /// Score leads offline from events (JSON Lines) and/or attribute rows (CSV).
    Score {
        /// Rules file or compiled program.
        file: PathBuf,
        /// Events, one JSON object per line.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Lead attributes, one row per lead (a header row names the attributes).
        #[arg(long)]
        leads: Option<PathBuf>,
        /// The instant to score at (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ScoreFormat,
    },
    /// Serve the HTTP API (docs/http-api.md) on the embedded SQLite store. Reloads the
    /// rules on SIGHUP or when the file changes; stops gracefully on SIGTERM or Ctrl-C.
    Serve {
        /// Rules file or compiled program.
        file: PathBuf,
        /// The SQLite database (created if missing).
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Service configuration (TOML: forms, secrets); default: $LEADSCORE_CONFIG.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Shadow rules: scored and stored beside the live rules for every event, shown
        /// by GET /leads/{lead}, never causing a transition (loaded at start).
        #[arg(long)]
        shadow: Option<PathBuf>,
        /// An A/B split: rules that score --variant-share of the leads (chosen by a hash of
        /// the lead key, so a lead keeps its arm) instead of FILE (loaded at start).
        #[arg(long, requires = "variant_share")]
        variant: Option<PathBuf>,
        /// The variant's share of leads, in percent (e.g. 10).
        #[arg(long, requires = "variant")]
        variant_share: Option<String>,
    },
    /// Replay a history through one or two rule versions as of an instant and set the
    /// grades they give against what happened to the leads (docs/backtest.md).
    Backtest {
        /// The rules in use and, to compare, the proposed rules (rules files or programs).
        #[arg(required = true, num_args = 1..=2)]
        files: Vec<PathBuf>,
        /// The history: events, one JSON object per line (outcome events included).
        #[arg(long, required_unless_present = "db", conflicts_with = "db")]
        events: Option<PathBuf>,
        /// Or: every event stored in a `leadscore serve` database — to compare the live
        /// rules with a shadow (or any rules) over the stored data.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Outcomes, one row per lead: lead,outcome[,at] (won, lost or disqualified).
        #[arg(long)]
        outcomes: Option<PathBuf>,
        /// Score as of this instant (RFC 3339); default: the last event of the history.
        #[arg(long)]
        as_of: Option<String>,
        /// How many of the biggest movers to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Also write the report as a self-contained HTML page (charts inline, no network).
        #[arg(long)]
        html: Option<PathBuf>,
        /// Report an A/B split too: this percentage of leads (by the same hash as
        /// `serve --variant`) scored by NEW, the rest by OLD; conversion per arm.
        #[arg(long)]
        split: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReportFormat,
    },
    /// Store a history and/or outcomes in the database, scored by FILE as if they had
    /// arrived over HTTP (validated first, all or nothing; repeated imports count nothing
    /// twice).
    Import {
        /// Rules file or compiled program (the rules `serve` runs).
        file: PathBuf,
        /// The SQLite database (created if missing).
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// Events, one JSON object per line.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Outcomes, one row per lead: lead,outcome[,at] (won, lost or disqualified),
        /// stored as deal.won / deal.lost / lead.disqualified events (at: now if empty).
        #[arg(long)]
        outcomes: Option<PathBuf>,
        /// The configuration `serve` runs with (its `[keys]` normalise lead keys).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print everything stored about one lead as JSON (data rights: access).
    Export {
        /// Rules file or compiled program (the rules `serve` runs).
        file: PathBuf,
        /// The lead key.
        lead: String,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// The configuration `serve` runs with (its `[keys]` normalise lead keys).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Erase everything stored about one lead — with the visitor ids linked to it and the
    /// keys merged into it — leaving an erasure record without personal data (data
    /// rights: erasure). A merged key erases the lead it joined. Idempotent.
    Erase {
        /// The lead key.
        lead: String,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// The configuration `serve` runs with (its `[keys]` normalise lead keys).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Merge lead FROM into lead INTO (the same person under two keys): their events
    /// unite, INTO is rebuilt from them, FROM's transitions move over and FROM points to
    /// INTO from then on. Merging again changes nothing.
    Merge {
        /// Rules file or compiled program (the rules `serve` runs).
        file: PathBuf,
        /// The lead that remains.
        into: String,
        /// The lead merged into it.
        from: String,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// The configuration `serve` runs with (its `[keys]` normalise lead keys).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rescore every stored lead with new rules: each is rebuilt from its events, and a
    /// grade change is recorded as a transition with cause "rescore". Safe to interrupt
    /// and run again: leads already on these rules are skipped.
    Rescore {
        /// Rules file or compiled program.
        file: PathBuf,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// Leads per page.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// The configuration `serve` runs with (its `[teams]` for reassignment).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a work queue of the stored leads (docs/desk.md): a view of the configuration
    /// (`--view my_new_a`) or a query (`--query 'grade=A&overdue=true'`), as
    /// `GET /views/{name}` answers it.
    Queue {
        /// Rules file or compiled program (the rules `serve` runs).
        file: PathBuf,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// The configuration `serve` runs with (its `[views]`, `[teams]`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A view of the configuration's `[views]`.
        #[arg(long, conflicts_with = "query")]
        view: Option<String>,
        /// `GET /leads` parameters: owner, grade, tag, pool, created_since, updated_since,
        /// overdue, no_followup_since, followed_up, rising, sort.
        #[arg(long)]
        query: Option<String>,
        /// Who `me` is in the query (an owner's e-mail).
        #[arg(long = "as")]
        reader: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// The instant the queue is read at (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ScoreFormat,
    },
    /// Re-evaluate the leads whose scores change by time alone (inactivity, expiry) and
    /// record their transitions (cause "time"). `serve` does this every minute.
    Sweep {
        /// Rules file or compiled program.
        file: PathBuf,
        /// The SQLite database.
        #[arg(long, default_value = "leadscore.db")]
        db: PathBuf,
        /// The instant to sweep up to (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        /// The configuration `serve` runs with (its `[teams]` and `[desk]`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum ReportFormat {
    /// A readable report.
    #[default]
    Text,
    /// One JSON object (for CI).
    Json,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum ScoreFormat {
    /// A readable table.
    #[default]
    Table,
    /// JSON Lines: one object per lead, sorted by lead key.
    Json,
}

/// The key normalisation of a `serve` configuration (`--config`, else `LEADSCORE_CONFIG`).
fn keys(config: Option<PathBuf>) -> anyhow::Result<leadscore_runtime::keys::KeyPolicy> {
    Ok(setup(config)?.keys)
}

/// A `serve` configuration (`--config`, else `LEADSCORE_CONFIG`).
fn load_config(config: Option<PathBuf>) -> anyhow::Result<leadscore_service::config::Config> {
    let path = config.or_else(|| std::env::var_os("LEADSCORE_CONFIG").map(PathBuf::from));
    leadscore_service::config::Config::load(path.as_deref()).map_err(anyhow::Error::msg)
}

/// What the one-shot commands take from a `serve` configuration (`--config`, else
/// `LEADSCORE_CONFIG`): key normalisation and the sales desk's people.
fn setup(config: Option<PathBuf>) -> anyhow::Result<admin::Setup> {
    let config = load_config(config)?;
    Ok(admin::Setup {
        roster: leadscore_service::Roster::from_config(&config),
        keys: config.keys,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Output piped into `head` and the like: end quietly when the reader goes away, as
    // command-line tools do, instead of failing on the next write. Not for the server,
    // whose sockets must report a closed peer as an error rather than end the process.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve { .. }) {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Check {
            files,
            diagnostics,
            events,
        } => commands::check(&files, diagnostics, events.as_deref()),
        Command::Compile { file, output } => commands::compile(&file, &output),
        Command::Disasm { file } => commands::disasm(&file),
        Command::Test {
            file,
            cases,
            snapshots,
            update,
        } => commands::test(&file, &cases, snapshots.as_deref(), update),
        Command::Score {
            file,
            events,
            leads,
            now,
            format,
        } => commands::score(
            &file,
            events.as_deref(),
            leads.as_deref(),
            now.as_deref(),
            format,
        ),
        Command::Serve {
            file,
            db,
            listen,
            config,
            shadow,
            variant,
            variant_share,
        } => match variant_share
            .as_deref()
            .map(leadscore_runtime::split::parse_percent)
            .transpose()
        {
            Err(e) => Err(anyhow::anyhow!("--variant-share: {e}")),
            Ok(share) => serve::serve(serve::Options {
                file,
                db,
                listen,
                config,
                shadow,
                variant: variant.zip(share),
            }),
        },
        Command::Backtest {
            files,
            events,
            db,
            outcomes,
            as_of,
            top,
            html,
            split,
            format,
        } => commands::backtest(commands::Backtest {
            files: &files,
            history: events
                .as_deref()
                .map(backtest::History::File)
                .or(db.as_deref().map(backtest::History::Db)),
            outcomes: outcomes.as_deref(),
            as_of: as_of.as_deref(),
            top,
            html: html.as_deref(),
            split: split.as_deref(),
            format,
        }),
        Command::Import {
            file,
            db,
            events,
            outcomes,
            config,
        } => setup(config)
            .and_then(|k| admin::import(&file, &db, events.as_deref(), outcomes.as_deref(), k)),
        Command::Export {
            file,
            lead,
            db,
            config,
        } => keys(config).and_then(|k| admin::export(&file, &lead, &db, k)),
        Command::Erase { lead, db, config } => {
            keys(config).and_then(|k| admin::erase(&lead, &db, k))
        }
        Command::Merge {
            file,
            into,
            from,
            db,
            config,
        } => setup(config).and_then(|k| admin::merge(&file, &into, &from, &db, k)),
        Command::Rescore {
            file,
            db,
            batch,
            config,
        } => setup(config).and_then(|k| admin::rescore(&file, &db, batch, k)),
        Command::Queue {
            file,
            db,
            config,
            view,
            query,
            reader,
            limit,
            now,
            format,
        } => load_config(config).and_then(|c| {
            queue::queue(
                &file,
                &db,
                &c,
                queue::Asked {
                    view: view.as_deref(),
                    query: query.as_deref(),
                    reader: reader.as_deref(),
                    limit,
                    now: now.as_deref(),
                    format,
                },
            )
        }),
        Command::Sweep {
            file,
            db,
            now,
            config,
        } => setup(config).and_then(|k| admin::sweep(&file, &db, now.as_deref(), k)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
