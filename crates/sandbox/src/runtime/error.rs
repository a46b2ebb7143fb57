//! Typed outcomes of a hook call. Every error names the connector and version.

pub use crate::ConnectorRef;
use std::time::Duration;

use crate::generated::ConnectorError;
use connector_abi::hook::Hook;

/// Why a hook call did not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest returned its typed error.
    #[error("connector {connector}: hook {hook} failed: {}", describe(error))]
    Guest {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// The connector's error, as it returned it.
        error: ConnectorError,
    },
    /// The guest trapped (panic, stack overflow, unreachable, …). The instance
    /// is discarded.
    #[error("connector {connector}: hook {hook} trapped: {message}")]
    Trap {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// The trap and, for a panic, the guest's message.
        message: String,
    },
    /// The call ran past its time limit.
    #[error("connector {connector}: hook {hook} timed out after {limit:?}")]
    Timeout {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// The limit.
        limit: Duration,
    },
    /// The guest tried to use more memory than allowed.
    #[error("connector {connector}: hook {hook} ran out of memory (limit {limit_bytes} bytes)")]
    OutOfMemory {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// The limit.
        limit_bytes: usize,
    },
    /// The connector does not implement the hook.
    #[error("connector {connector} does not implement hook {hook}")]
    NotImplemented {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
    },
    /// The guest returned a value over one of the caps of `runtime::bounds`;
    /// nothing of it is kept.
    #[error(
        "connector {connector}: hook {hook} returned `{field}` of {size} (bytes or entries); the limit is {limit}"
    )]
    OutputTooLarge {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// Which field of the result.
        field: String,
        /// Its size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The host could not set up the call (e.g. instantiation failed).
    #[error("connector {connector}: hook {hook} could not run: {message}")]
    Host {
        /// Which connector.
        connector: ConnectorRef,
        /// Which hook.
        hook: Hook,
        /// What failed.
        message: String,
    },
}

impl CallError {
    /// The connector the error is about.
    pub fn connector(&self) -> &ConnectorRef {
        match self {
            CallError::Guest { connector, .. }
            | CallError::Trap { connector, .. }
            | CallError::Timeout { connector, .. }
            | CallError::OutOfMemory { connector, .. }
            | CallError::NotImplemented { connector, .. }
            | CallError::OutputTooLarge { connector, .. }
            | CallError::Host { connector, .. } => connector,
        }
    }

    /// A short stable name for the kind of error (`guest`, `trap`, `timeout`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Guest { .. } => "guest",
            CallError::Trap { .. } => "trap",
            CallError::Timeout { .. } => "timeout",
            CallError::OutOfMemory { .. } => "out_of_memory",
            CallError::NotImplemented { .. } => "not_implemented",
            CallError::OutputTooLarge { .. } => "output_too_large",
            CallError::Host { .. } => "host",
        }
    }
}

/// Renders a guest error for messages.
pub fn describe(error: &ConnectorError) -> String {
    match error {
        ConnectorError::ReauthRequired(m) => format!("re-authentication required: {m}"),
        ConnectorError::Provider(p) => match p.status {
            Some(status) => format!("provider error (HTTP {status}): {}", p.message),
            None => format!("provider error: {}", p.message),
        },
        ConnectorError::BadInput(m) => format!("bad input: {m}"),
        ConnectorError::NotSupported(m) => format!("not supported: {m}"),
        ConnectorError::Internal(m) => format!("internal error: {m}"),
    }
}
