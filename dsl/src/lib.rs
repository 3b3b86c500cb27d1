//! The leadscore rules language: grammar, syntax tree and diagnostics.
//!
//! **Owns** the text: the grammar (pest, private to `parser`), the AST with byte spans, and
//! diagnostics as data with their one renderer. **Depends on** pest and ariadne only — not
//! on the compiler or the runtime. **Invariant**: any string parses to a tree or located
//! diagnostics, never a panic (dsl/tests/grammar.rs).
//!
//! ```
//! let file = leadscore_dsl::parse(r#"
//!     set tier1 = ["US", "DE"]
//!     when country in tier1 add 30
//!     grade A when score >= 30
//!     grade C otherwise
//! "#).expect("parses");
//! assert_eq!(file.items.len(), 4);
//! ```
//!
//! pest stays behind [`parse`]; nothing of it is public.
#![forbid(unsafe_code)]

pub mod ast;
pub mod diagnostic;
pub mod format;
mod parser;
pub mod span;

pub use diagnostic::{Diagnostic, Severity};
pub use span::Span;

/// Parses a rules file into its syntax tree, or every syntax error in it.
pub fn parse(src: &str) -> Result<ast::File, Vec<Diagnostic>> {
    parser::parse(src)
}

pub use parser::Partial;

/// Parses what it can of a rules file: the statements that parse (a syntax error costs only
/// the statement it is in), every syntax error, and where the broken statements are — so
/// the checks of the statements that did parse can still be reported with the errors.
pub fn parse_partial(src: &str) -> Partial {
    parser::parse_partial(src)
}
