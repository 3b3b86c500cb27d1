//! leadscore's runtime: the bytecode format and its verifier, the VM and the engine that
//! scores leads from a compiled program, and the typed views of what it computes.
//!
//! **Owns**: bytecode (format, verifier, disassembler), the VM, the engine (transitions,
//! explanations), lead state, events, the typed views of `view` with their one serde
//! shape, offline scoring (`offline`, the reference every online path is tested
//! against), the sizes every store holds (`limits`), key policy, A/B arms, time.
//!
//! **May depend on**: nothing of the language (no parser, no compiler) and nothing
//! asynchronous or doing IO — no tokio, HTTP or database crate (CI checks the tree). The
//! stores, the service and the HTTP edge are crates above this one.
//!
//! **Invariants**: a loaded program is verified before the VM runs it; scores are a pure
//! function of program, events and time; the VM allocates nothing. See ARCHITECTURE.md.
//!
//! ```
//! use leadscore_runtime::bytecode::{Program, VerifyError};
//! // Any byte string is either a verified program or an error, never a panic.
//! assert!(matches!(Program::from_bytes(b"garbage"), Err(VerifyError::Truncated)));
//! ```
#![forbid(unsafe_code)]

pub mod bytecode;
pub mod engine;
pub mod event;
pub mod keys;
pub mod limits;
pub mod offline;
pub mod split;
pub mod state;
pub mod text;
pub mod time;
pub mod value;
pub mod view;
pub mod vm;
