//! The sandbox: one wasmtime `Engine` for the process, one `InstancePre` per
//! loaded connector version, a fresh `Store` and instance per hook call.
//!
//! Limits per call: an epoch deadline (CPU, with cooperative yields so a busy
//! guest cannot hog a tokio worker), a `tokio` timeout around the whole call
//! (host awaits do not tick epochs), a memory cap through [`CallLimiter`], a wasm
//! stack cap, and a bound on concurrent instances (a semaphore in front of the
//! pooling allocator's slots).

pub mod bounds;
mod call;
mod error;
pub mod metrics;
mod output;
#[cfg(test)]
mod pool_tests;
mod state;
mod wasi;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};

use crate::capabilities::http::Outbound;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use call::{CallReport, Outcome, Prepared};
pub use error::{CallError, ConnectorRef, describe};
pub use state::{CallContext, CallLimiter, CallState};

/// How often the engine's epoch advances: the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Per-call limits and engine sizing.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeLimits {
    /// Wall-clock limit of one hook call, in milliseconds.
    pub call_timeout_ms: u64,
    /// Linear memory cap of one call, in bytes.
    pub memory_bytes: usize,
    /// Maximum wasm stack, in bytes.
    pub wasm_stack_bytes: usize,
    /// Maximum number of hook calls running at once (more wait their turn).
    pub max_concurrent_calls: u32,
    /// Maximum number of one connector's hook calls running at once, so one
    /// connector with slow or hanging calls cannot take every slot from the
    /// others. `0` means a quarter of `max_concurrent_calls` (at least 1); a
    /// connector's own `[connectors.<id>] max_concurrent_calls` overrides it.
    pub max_concurrent_calls_per_connector: u32,
    /// Log lines a call may emit; more are dropped and counted.
    pub log_lines_per_call: usize,
    /// Log bytes a call may emit.
    pub log_bytes_per_call: usize,
    /// Bytes of stdout/stderr kept per call.
    pub output_bytes_per_call: usize,
    /// Use the pooling allocator (falls back to on-demand if it cannot reserve).
    pub pooling: bool,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            call_timeout_ms: 10_000,
            memory_bytes: 64 << 20,
            wasm_stack_bytes: 512 << 10,
            max_concurrent_calls: 128,
            max_concurrent_calls_per_connector: 0,
            log_lines_per_call: 200,
            log_bytes_per_call: 64 << 10,
            output_bytes_per_call: 16 << 10,
            pooling: true,
        }
    }
}

impl RuntimeLimits {
    /// One connector's share of the slots when it sets none of its own.
    pub fn default_connector_slots(&self) -> u32 {
        match self.max_concurrent_calls_per_connector {
            0 => (self.max_concurrent_calls / 4).max(1),
            n => n.min(self.max_concurrent_calls.max(1)),
        }
    }

    /// The call timeout as a `Duration`.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

/// The engine, the linker with every host capability, and the limits.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    limits: RuntimeLimits,
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    /// Each connector's own slots, by (connector id, size): taken before a
    /// global slot, so a connector waits for its own calls, not for others'.
    connector_permits:
        std::sync::Mutex<std::collections::HashMap<(String, u32), Arc<tokio::sync::Semaphore>>>,
    pub(crate) outbound: Arc<Outbound>,
    pooling: bool,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine (pooling allocator unless it cannot reserve memory, then
    /// on-demand allocation with a warning) and links the capabilities.
    pub fn new(limits: RuntimeLimits) -> anyhow::Result<Self> {
        Self::with_outbound(limits, Outbound::default_for_tests_and_tools())
    }

    /// Like [`Runtime::new`], with the operator's outbound HTTP settings.
    pub fn with_outbound(limits: RuntimeLimits, outbound: Outbound) -> anyhow::Result<Self> {
        let (engine, pooling) = if limits.pooling {
            match Engine::new(&engine_config(&limits, true)) {
                Ok(engine) => (engine, true),
                Err(error) => {
                    tracing::warn!(%error, "pooling allocator unavailable; using on-demand allocation");
                    (Engine::new(&engine_config(&limits, false))?, false)
                }
            }
        } else {
            (Engine::new(&engine_config(&limits, false))?, false)
        };
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker)?;
        link_capabilities(&mut linker)?;
        let permits = Arc::new(tokio::sync::Semaphore::new(
            limits.max_concurrent_calls as usize,
        ));
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            limits,
            permits,
            connector_permits: Default::default(),
            outbound: Arc::new(outbound),
            pooling,
            _ticker: ticker,
        })
    }

    /// The slots of one connector: `size` of them (the runtime's default share
    /// when `None`), shared by every version of the connector.
    pub(crate) fn connector_permits(
        &self,
        connector_id: &str,
        size: Option<u32>,
    ) -> Arc<tokio::sync::Semaphore> {
        let size = size
            .unwrap_or_else(|| self.limits.default_connector_slots())
            .clamp(1, self.limits.max_concurrent_calls.max(1));
        let mut permits = self.connector_permits.lock().expect("permits lock");
        permits
            .entry((connector_id.to_string(), size))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(size as usize)))
            .clone()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The outbound HTTP client and policy.
    pub fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
    }

    /// Hook-call slots in use, and in all (`max_concurrent_calls`).
    pub fn slots(&self) -> (usize, usize) {
        let total = self.limits.max_concurrent_calls as usize;
        (
            total.saturating_sub(self.permits.available_permits()),
            total,
        )
    }

    /// The limits in force.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.limits
    }

    /// True when the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// A hash of everything that makes compiled code valid for this engine; part
    /// of the compile-cache key.
    pub fn engine_fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Compiles a component from its bytes.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        Ok(Component::new(&self.engine, bytes)?)
    }

    /// Links a compiled component against the host capabilities. Fails, naming
    /// the import, when the component needs something the host does not provide.
    pub fn link(
        &self,
        component: &Component,
    ) -> anyhow::Result<crate::generated::ConnectorPre<CallState>> {
        let instance_pre = self.linker.instantiate_pre(component)?;
        Ok(crate::generated::ConnectorPre::new(instance_pre)?)
    }
}

/// Linear memories one component may have.
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables one component may have.
const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// Core instances one component may have.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;

fn engine_config(limits: &RuntimeLimits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.wasm_stack_bytes);
    config.async_stack_size(limits.wasm_stack_bytes + (1 << 20));
    if pooling {
        let slots = limits.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::new();
        // Every call may use the per-component maximum of each resource, and
        // at most `slots` calls run at once (the semaphore): sized so, the pool
        // can never run out, and a call waits for a slot instead of failing.
        pool.total_component_instances(slots);
        pool.total_core_instances(slots * MAX_CORE_INSTANCES_PER_COMPONENT);
        pool.total_memories(slots * MAX_MEMORIES_PER_COMPONENT);
        pool.total_tables(slots * MAX_TABLES_PER_COMPONENT);
        pool.total_stacks(slots);
        pool.max_memory_size(limits.memory_bytes);
        pool.max_memories_per_component(MAX_MEMORIES_PER_COMPONENT);
        pool.max_tables_per_component(MAX_TABLES_PER_COMPONENT);
        pool.max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT);
        // Reuse warm slots without page faults: reset dirty pages in place
        // (found through PAGEMAP_SCAN where the kernel has it) instead of
        // madvise-and-refault, up to a resident cap per slot.
        pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        pool.table_keep_resident(64 << 10);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    // A memory's initial image (a JavaScript engine's pre-initialised heap)
    // is mapped copy-on-write, from the compile-cache entry when the
    // component was loaded from one: a fresh instance copies no bytes and
    // shares every page it does not write. (wasmtime's default, stated.)
    config.memory_init_cow(true);
    config
}

/// The most of a linear-memory pool slot kept resident after a call: the
/// pages a call wrote are reset in place (found with `PAGEMAP_SCAN` where the
/// kernel has it) instead of released, so the next call of the same
/// connector faults none of them in. Measured with `js_hook_call`
/// (`js_warm_slots_resident`): a JavaScript hook call writes about 0.2 MiB
/// of its engine's heap, a Rust one a few pages, so 1 MiB keeps all of it.
pub const MEMORY_KEEP_RESIDENT: usize = 1 << 20;

/// Advances the engine epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    _stop: mpsc::Sender<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                // `recv_timeout` doubles as the tick: it returns `Timeout` every
                // tick and `Disconnected` once the runtime is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch ticker");
        Self { _stop: stop }
    }
}

/// Links every capability of the world with a view into the per-call state.
fn link_capabilities(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use crate::capabilities::{add_types_to_linker, config, http, log};
    add_types_to_linker(linker)?;
    config::add_to_linker(linker, |state: &mut CallState| state.config.view())?;
    log::add_to_linker(linker, |state: &mut CallState| state.log.view())?;
    http::add_to_linker(linker, |state: &mut CallState| {
        http::HttpView::new(&mut state.http, &mut state.log)
    })
}
