//! The host's one `bindgen!` of the `connector` world.
//!
//! Exports are async (every call runs on a fiber so the epoch callback can yield
//! to tokio); of the imports only `http.send` is async. The module is private:
//! `crate::wit` re-exports, by name, what other crates use.

// The generated methods carry the WIT's own docs, or none.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "connector",
    // No `tracing` flag: it would log guest arguments (log lines, config values)
    // outside the per-call log budget.
    imports: { "connector:auth/http.send": async },
    exports: { default: async },
});

pub use connector::auth::types::{AuthType, ConnectorError};
pub use exports::connector::auth::hooks;
