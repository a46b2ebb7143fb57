//! Helpers shared by the integration tests: where the guest components are and
//! how to load them.

pub mod harness;
pub mod servers;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use connector_host::registry::{CompileCache, LoadedConnector, load_file};
use connector_host::runtime::{Runtime, RuntimeLimits};

/// Path of a guest built by `host/build.rs` from `plugins/`, e.g. `versioned_v1`.
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(connector_host::GUESTS_DIR).join(format!("{name}.wasm"));
    assert!(path.exists(), "guest {} was not built", path.display());
    path
}

/// The bytes of a guest.
pub fn guest_bytes(name: &str) -> Vec<u8> {
    std::fs::read(guest(name)).expect("read guest")
}

/// A runtime with short limits so misbehaving guests fail fast.
pub fn test_runtime() -> Arc<Runtime> {
    Arc::new(
        Runtime::new(RuntimeLimits {
            call_timeout_ms: 1_000,
            memory_bytes: 32 << 20,
            max_concurrent_calls: 32,
            log_lines_per_call: 50,
            ..RuntimeLimits::default()
        })
        .expect("runtime"),
    )
}

/// Loads a guest with no compile cache.
pub async fn load(runtime: &Arc<Runtime>, name: &str) -> LoadedConnector {
    load_file(
        runtime,
        &CompileCache::disabled(),
        &guest(name),
        &Default::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}
