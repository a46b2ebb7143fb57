//! Tooling for connector authors: the `new`, `dev`, `oauth2` and `call`
//! commands of the `connector-host` binary, as library functions.
//!
//! - [`scaffold`]: a new connector crate from a template (`new`), and
//!   [`scaffold_ts`] a TypeScript package (`new --lang ts`);
//! - [`build`]: `cargo build --target wasm32-wasip2` with progress and clear
//!   errors when cargo or the target is missing; for a JavaScript/TypeScript
//!   package, `js` (componentize-js through the SDK in `sdk-js/`);
//! - [`dev`]: build, serve with a local login page, watch, rebuild, reload;
//! - [`oauth2`]: a local OAuth login that keeps a test account's tokens
//!   encrypted on disk, and refreshes them on the next run;
//! - [`call`]: one hook call with its result, logs and outbound requests.
//!
//! Everything here is **for a developer's machine**: connectors may reach
//! `127.0.0.1` (as with `serve --dev`), servers listen on loopback only, and
//! the local state (`.connector-host/` next to the crate) holds test
//! credentials under a generated development key.

pub mod build;
pub mod call;
pub mod cli;
pub mod dev;
mod js;
pub mod oauth2;
mod progress;
pub mod scaffold;
pub mod scaffold_ts;

mod local;

use std::path::PathBuf;

pub use build::{BuildError, ConnectorCrate, Language, build_crate};
pub use local::{
    ConnectorSource, LocalOptions, STATE_DIR, TEST_ACCOUNT, TEST_USER, dev_keyring, secret_env_var,
};
pub use progress::Progress;

/// Why an authoring command failed. Messages name the fix when there is one.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// Building the crate failed (cargo missing, target missing, compile errors).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The connector could not be loaded (the `check` rules).
    #[error("{file}: {message}")]
    Load {
        /// The `.wasm` file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// A flow failed (login, refresh).
    #[error("{0}")]
    Flow(String),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// File-system or network I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else (database, runtime set-up).
    #[error("{0}")]
    Other(String),
}

impl AuthoringError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AuthoringError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<anyhow::Error> for AuthoringError {
    fn from(error: anyhow::Error) -> Self {
        AuthoringError::Other(format!("{error:#}"))
    }
}

impl From<connector_server::flows::FlowError> for AuthoringError {
    fn from(error: connector_server::flows::FlowError) -> Self {
        AuthoringError::Flow(error.to_string())
    }
}

/// Parses `KEY=VALUE` (the `--set` option).
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}
