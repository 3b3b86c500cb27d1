//! The leadscore compiler: resolves and checks a rules file, then lowers it to the
//! runtime's verified bytecode.
//!
//! **Owns** names, types, every check and its diagnostic code, and lowering. **Depends on**
//! the dsl and the runtime's pure core (no features: no IO, no async). **Invariant**: a
//! program it emits passes the runtime's verifier; compiling never panics and runs on a
//! thread with a known stack.
//!
//! ```
//! let out = leadscore_compiler::compile(r#"
//!     set tier1 = ["US", "DE", "JP"]
//!     when country in tier1 add 30
//!     when email.opened add 5 each max 25
//!     grade A when score >= 50
//!     grade C otherwise
//! "#, "example").expect("compiles");
//! assert_eq!(out.program.name, "example");
//! assert_eq!(out.bounds[0].max, 55.0);
//! ```
#![forbid(unsafe_code)]

mod analysis;
mod ir;
mod lower;
mod resolve;

pub use analysis::ScoreBounds;
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::Program;
use sha2::{Digest, Sha256};

/// A compiled program with what `check` reports about it.
/// What a program reads from events, where the rules say so: for `check --events`, which
/// compares it with a sample of real events.
#[derive(Debug, Default)]
pub struct Reads {
    /// Event types the event rules take (folded), each where it is named.
    pub events: Vec<(String, leadscore_dsl::Span)>,
    /// Lead attributes the conditions and points read.
    pub attributes: Vec<(String, leadscore_dsl::Span)>,
    /// Event properties (`where` filters, points from a prop): (event type, prop, span).
    pub props: Vec<(String, String, leadscore_dsl::Span)>,
}

#[derive(Debug)]
pub struct Compiled {
    pub program: Program,
    /// What the rules read from events.
    pub reads: Reads,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
    /// The possible range of each score, in declaration order.
    pub bounds: Vec<ScoreBounds>,
    /// The possible range of the lead's `score` (the total).
    pub total_bounds: (f64, f64),
}

/// The stack every compilation runs on. The parser bounds nesting (E0005) and expression
/// size (E0007), so the recursive passes need far less; this is the known margin.
pub const COMPILER_STACK: usize = 64 << 20;

/// Compiles a rules file. `default_name` names the ruleset when the file has no
/// `ruleset` line. On failure, every diagnostic found (errors and warnings).
///
/// It runs on a thread of its own with a stack of [`COMPILER_STACK`] bytes, whatever the
/// caller's stack (a server's worker thread reloading rules has little), and a panic in
/// it — a bug — is an error diagnostic, never the caller's crash.
pub fn compile(src: &str, default_name: &str) -> Result<Compiled, Vec<Diagnostic>> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("leadscore-compile".into())
            .stack_size(COMPILER_STACK)
            .spawn_scoped(scope, || compile_here(src, default_name));
        match worker.map(|w| w.join()) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(vec![Diagnostic::error(
                "E0000",
                leadscore_dsl::Span::new(0, 0),
                "internal compiler error: the compiler failed on this file",
            )
            .help("please report it with the file")]),
            // No thread to be had: compile here.
            Err(_) => compile_here(src, default_name),
        }
    })
}

fn compile_here(src: &str, default_name: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let partial = leadscore_dsl::parse_partial(src);
    if !partial.diags.is_empty() {
        // Syntax errors: still resolve and check the statements that parsed, and report
        // what they say beside the syntax errors, so one run shows every problem.
        let (_, diags) = resolve::resolve(&partial.file, src, default_name);
        let mut all = partial.diags;
        all.extend(
            diags
                .into_iter()
                .filter(|d| d.is_error() && !about_broken(d, src, &partial.broken)),
        );
        all.sort_by_key(|d| d.span.start);
        return Err(all);
    }
    let file = partial.file;
    let (ir, mut diags) = resolve::resolve(&file, src, default_name);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let bounds = analysis::analyse(&ir, &mut diags);
    let total_bounds = analysis::total_bounds(&ir, &bounds);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let program = match lower::lower(&ir, Sha256::digest(src.as_bytes()).into()) {
        Ok(p) => p,
        Err(mut errs) => {
            errs.extend(diags);
            return Err(errs);
        }
    };
    Ok(Compiled {
        program,
        reads: ir.reads,
        warnings: diags,
        bounds,
        total_bounds,
    })
}

/// Whether a check's error may come from a statement that did not parse — a name declared
/// there (`unknown set \`tier1\``), a grade or score list it would have completed — and so
/// is left out beside the syntax errors rather than reported wrongly.
fn about_broken(d: &Diagnostic, src: &str, broken: &[leadscore_dsl::Span]) -> bool {
    let text: Vec<&str> = broken.iter().map(|s| s.text(src)).collect();
    let mentions = |word: &str| {
        text.iter().any(|t| {
            t.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                .any(|w| w == word)
        })
    };
    // The first name the message quotes.
    let named = d.message.split('`').nth(1);
    if named.is_some_and(mentions) {
        return true;
    }
    // Grade order and completeness, scores a rule must name: a broken `grade` or `score`
    // statement (or one whose keyword is misspelled) would have changed them.
    let statement_words = |t: &&str| {
        t.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let firsts: Vec<String> = text.iter().flat_map(statement_words).collect();
    let near = |kw: &str| {
        firsts
            .iter()
            .any(|w| w == kw || leadscore_dsl::diagnostic::closest(w, [kw]).is_some())
    };
    (d.code.starts_with("E04") && near("grade")) || (d.code == "E0209" && near("score"))
}
