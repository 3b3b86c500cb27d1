//! The leadscore rules language: grammar, syntax tree and diagnostics.
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
mod parser;
pub mod span;

pub use diagnostic::{Diagnostic, Severity};
pub use span::Span;

/// Parses a rules file into its syntax tree, or every syntax error in it.
pub fn parse(src: &str) -> Result<ast::File, Vec<Diagnostic>> {
    parser::parse(src)
}
