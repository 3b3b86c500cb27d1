//! leadscore's runtime: the bytecode format and its verifier, the engine that scores leads
//! from a compiled program, and (behind features) the stores, the service, the HTTP API,
//! the notifier and the Lambda entry.
//!
//! **Owns**, by layer: the pure core (bytecode, VM, engine, lead state, the typed views of
//! `view`, offline scoring, limits) — no async, no IO; `store` (the `Store` trait and its
//! memory, SQLite and DynamoDB adapters); `service` (the lead transaction and everything
//! written or read through it); `http` (the deployment configuration, request signing, the
//! router and the notifier); `lambda`.
//!
//! **May depend on**: nothing of the language (no parser, no compiler); each layer only on
//! the ones below it. The compiler links this crate with no features.
//!
//! **Invariants**: a loaded program is verified before the VM runs it; scores are a pure
//! function of program, events and time; every write of a lead is one
//! `service::Service::transact`. See ARCHITECTURE.md.
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
