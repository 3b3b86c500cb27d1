//! The `leadscore` command line.

mod admin;
mod backtest;
mod cases;
mod cli;
mod commands;
mod console;
mod progress;
mod queue;
mod sample;
mod score;
mod serve;
mod store;

use clap::{CommandFactory, FromArgMatches};
pub use cli::{Cli, Command, DiagFormat, ReportFormat, ScoreFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// `--version`: the package's version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LEADSCORE_COMMIT"),
    ")"
);
/// The manual page, written at build time (build.rs).
const MAN_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/leadscore.1"));

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
    let matches = Cli::command().version(VERSION).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
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
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "leadscore",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Fmt { files, check } => commands::fmt(&files, check),
        Command::Man => {
            print!("{MAN_PAGE}");
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
