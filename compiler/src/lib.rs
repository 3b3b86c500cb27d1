//! The leadscore compiler: resolves and checks a rules file, then lowers it to the
//! runtime's verified bytecode.
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
#[derive(Debug)]
pub struct Compiled {
    pub program: Program,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
    /// The possible range of each score, in declaration order.
    pub bounds: Vec<ScoreBounds>,
}

/// Compiles a rules file. `default_name` names the ruleset when the file has no
/// `ruleset` line. On failure, every diagnostic found (errors and warnings).
pub fn compile(src: &str, default_name: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let file = leadscore_dsl::parse(src)?;
    let (ir, mut diags) = resolve::resolve(&file, src, default_name);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let bounds = analysis::analyse(&ir, &mut diags);
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
        warnings: diags,
        bounds,
    })
}
