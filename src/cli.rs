// The command line's definition alone (clap), so that build.rs can include it to write
// the manual page at build time: nothing here may name the rest of the crate.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "leadscore", version, about = "Lead scoring as code", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum DiagFormat {
    /// Source excerpts with carets.
    #[default]
    Rich,
    /// One line per problem: file:line:col: error[code]: message.
    Short,
    /// One JSON object per problem on stdout, for CI annotations and editors
    /// (docs/authoring.md).
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Rewrite rules files in the one canonical layout (docs/authoring.md); with --check,
    /// change nothing and exit 1 naming each file that is not formatted (for CI).
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only check: print a diff for each file that would change.
        #[arg(long)]
        check: bool,
    },
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), as built with the binary.
    Man,
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
