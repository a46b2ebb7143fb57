//! connector-host: runs third-party auth connectors as sandboxed WebAssembly
//! components.
//!
//! - [`manifest`]: what a connector declares;
//! - [`registry`]: reading, checking, loading and hot-reloading connector files;
//! - [`runtime`]: the wasmtime sandbox and typed hook calls;
//! - [`capabilities`]: the host imports a connector may use;
//! - [`store`]: the database;
//! - [`api`]: the HTTP API, and [`access`]: who may call it;
//! - [`config`]: the host configuration file;
//! - [`authoring`]: the connector author commands (`new`, `dev`, `oauth2`, `call`).
//! - [`events`]: signed webhooks about connection events.

pub mod access;
pub mod api;
pub mod authoring;
pub mod capabilities;
pub mod config;
pub mod dev_provider;
pub mod events;
pub mod flows;
pub mod hook;
pub mod keys;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod store;

/// Where `build.rs` put the compiled guests of `plugins/` (examples and test-only
/// connectors). Used by `serve --dev`, tests and benchmarks of this repository.
pub const GUESTS_DIR: &str = env!("CONNECTOR_HOST_GUESTS_DIR");
/// The example connectors, named `<id>.wasm`: the `serve --dev` plugins folder.
pub const EXAMPLES_DIR: &str = env!("CONNECTOR_HOST_EXAMPLES_DIR");
