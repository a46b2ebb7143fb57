//! The host capabilities a connector imports: one module per WIT interface.
//!
//! A connector has no other way out of the sandbox: no filesystem, no
//! environment, no sockets (see `runtime::wasi` for the WASI subset that Rust's
//! standard library needs).

mod config;
pub mod http;
mod log;

pub use config::ConfigCapability;
pub use http::HttpCapability;
pub use log::{LogCapability, LogLevel, LogLine};

use crate::runtime::CallState;
use crate::runtime::generated::connector::auth::types;

impl types::Host for CallState {}
