//! # connector-test-support
//!
//! What the connector-host tests and benchmarks share: where the guest
//! components are (built by this crate's `build.rs` into its `OUT_DIR`) and how
//! to load them, the in-process test host ([`harness`]), the database matrix
//! ([`databases`]), spawning `connector-host serve` and waiting for it
//! ([`serve`], [`process`], and [`dev_demo`] for `serve --dev`), the OAuth
//! login dance ([`oauth`]), local servers ([`servers`]), the webhook receiver
//! ([`webhooks`]), bounded waiting ([`wait`]) and the benchmarks' percentiles
//! ([`bench`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod bench;
pub mod databases;
pub mod dev_demo;
pub mod harness;
pub mod oauth;
pub mod process;
pub mod sandbox;
pub mod serve;
pub mod servers;
pub mod wait;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_sandbox::wit::hooks::ConnectionInfo;
use connector_server::registry::{CompileCache, LoadedConnector, load_file};

/// The guest components this crate's `build.rs` built.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

pub use guests::GUESTS_DIR;

/// Path of a guest component by its artifact name (the crate name with `_`),
/// e.g. `versioned_v1` from `tests/guests/` or `local_regional` from `plugins/`.
pub fn guest(name: &str) -> PathBuf {
    let path = guests::ALL
        .iter()
        .find(|(artifact, _)| *artifact == name)
        .map(|(_, path)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no guest named `{name}` was built"));
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

/// The connection a hook gets when none matters: no hostname, no platform
/// user, no additional info.
pub fn connection() -> ConnectionInfo {
    ConnectionInfo {
        hostname: None,
        platform_user_id: None,
        additional_info: vec![],
    }
}
