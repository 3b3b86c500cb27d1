//! leadscore's runtime: the bytecode format and its verifier, and (with the scoring
//! engine) everything needed to score leads from a compiled program.
//!
//! ```
//! use leadscore_runtime::bytecode::{Program, VerifyError};
//! // Any byte string is either a verified program or an error, never a panic.
//! assert!(matches!(Program::from_bytes(b"garbage"), Err(VerifyError::Truncated)));
//! ```
#![forbid(unsafe_code)]

pub mod bytecode;
#[cfg(feature = "http")]
pub mod config;
pub mod engine;
pub mod event;
#[cfg(feature = "http")]
pub mod http;
pub mod keys;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limits;
#[cfg(feature = "http")]
pub mod notify;
pub mod offline;
#[cfg(feature = "store")]
pub mod service;
#[cfg(feature = "http")]
pub mod signing;
pub mod split;
pub mod state;
#[cfg(feature = "store")]
pub mod store;
pub mod text;
pub mod time;
pub mod value;
pub mod view;
pub mod vm;
