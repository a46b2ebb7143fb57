//! What a `Store` holds for one hook call: limits, the lazily built WASI context,
//! and the per-call state of each host capability.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::GuestOutput;
use crate::capabilities::{ConfigCapability, HttpCapability, LogCapability};

/// Who a call is for (for logs and audit) and the secrets the host may inject
/// into its outbound requests (never visible to the guest).
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The platform account (tenant) the call is made for.
    pub account_id: Option<String>,
    /// The platform user the call is made for.
    pub user_id: Option<String>,
    /// Credentials the guest may name in `http` requests.
    pub credentials: Arc<crate::capabilities::http::CallCredentials>,
    /// Refuse every outbound request (`not-permitted`): set for the calls the
    /// host makes while loading a connector, before anyone asked for it.
    pub deny_outbound: bool,
}

/// Memory, table and instance caps of one call; remembers whether the guest hit
/// the memory cap so a resulting trap can be reported as out-of-memory.
#[derive(Debug)]
pub struct CallLimiter {
    memory_bytes: usize,
    /// Linear memory bytes across every memory of the call so far.
    memory_total: usize,
    table_elements: usize,
    /// Set when a memory growth was refused.
    pub hit_memory_limit: bool,
}

impl CallLimiter {
    /// Caps linear memory at `memory_bytes` and tables at `table_elements`.
    pub fn new(memory_bytes: usize, table_elements: usize) -> Self {
        Self {
            memory_bytes,
            table_elements,
            memory_total: 0,
            hit_memory_limit: false,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    /// The cap is on the sum of every memory of the call, not per memory.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_total.saturating_sub(current) + desired;
        if total > self.memory_bytes {
            self.hit_memory_limit = true;
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}

/// The data of a per-call `Store`.
pub struct CallState {
    pub(crate) limiter: CallLimiter,
    pub(crate) log: LogCapability,
    pub(crate) config: ConfigCapability,
    pub(crate) http: HttpCapability,
    pub(crate) output: GuestOutput,
    wasi: Option<WasiCtx>,
    table: ResourceTable,
}

impl CallState {
    pub(crate) fn new(
        limiter: CallLimiter,
        log: LogCapability,
        config: Arc<std::collections::BTreeMap<String, String>>,
        http: HttpCapability,
        output_capacity: usize,
    ) -> Self {
        Self {
            limiter,
            log,
            config: ConfigCapability::new(config),
            http,
            output: GuestOutput::new(output_capacity),
            wasi: None,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    /// The WASI context is built on first use: most hook calls never touch WASI,
    /// and when they do they get no preopens, no environment, no arguments, no
    /// network, and stdio that goes to the connector's log.
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let output = &self.output;
        let ctx = self.wasi.get_or_insert_with(|| {
            WasiCtx::builder()
                .stdout(output.clone())
                .stderr(output.clone())
                .build()
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_call() {
        let mut limiter = CallLimiter::new(100, 10);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 70, None).unwrap());
        // A second memory may not take the call over the cap.
        assert!(!limiter.memory_growing(0, 40, None).unwrap());
        assert!(limiter.hit_memory_limit);
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(!limiter.table_growing(0, 11, None).unwrap());
    }
}
