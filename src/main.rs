//! The `leadscore` command line.

mod commands;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, diagnostics } => commands::check(&files, diagnostics),
        Command::Compile { file, output } => commands::compile(&file, &output),
        Command::Disasm { file } => commands::disasm(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
