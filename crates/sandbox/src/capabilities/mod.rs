//! The host capabilities a connector imports: one module per WIT interface.
//!
//! Each is shaped like wasmtime's `wasi-config`: a context the store's data
//! holds (`*Capability`), a view the import works through (`*View`), and an
//! `add_to_linker(linker, fn(&mut T) -> View)`; the runtime links them with
//! functions from its per-call state, so no capability knows that state.
//!
//! A connector has no other way out of the sandbox: no filesystem, no
//! environment, no sockets (see `runtime::wasi` for the WASI subset that Rust's
//! standard library needs).

pub mod config;
pub mod http;
pub mod log;

pub use config::{ConfigCapability, ConfigView};
pub use http::{HttpCapability, HttpView};
pub use log::{LogCapability, LogLevel, LogLine, LogView};

use wasmtime::component::{HasData, Linker};

use crate::generated::connector::auth::types;

/// Links `connector:auth/types` (types only: nothing of the host's state).
pub fn add_types_to_linker<T: Send + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, NoState>(linker, |_| NoState)
}

/// The `types` interface has no functions, so it needs no state.
struct NoState;

impl types::Host for NoState {}

impl HasData for NoState {
    type Data<'a> = NoState;
}
