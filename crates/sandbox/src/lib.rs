//! # connector-sandbox
//!
//! Runs connector components in wasmtime, each hook call in a fresh, isolated
//! instance with limits, and gives them the only ways out they have:
//!
//! - [`runtime`]: the engine, the per-call store, limits and typed hook calls;
//! - [`capabilities`]: the host imports a connector may use (`http`, `log`,
//!   `config`), each checked and bounded on the host side.
//!
//! - [`wit`]: the WIT types other crates name, re-exported from the private
//!   bindings (the host's one `bindgen!`, from the SDK's `crates/sdk/wit/`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod capabilities;
mod connector_ref;
mod generated;
pub mod runtime;
pub mod wit;

pub use connector_ref::ConnectorRef;
