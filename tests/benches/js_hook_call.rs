//! `js_hook_call`: what a JavaScript connector costs next to the Rust
//! example in the same run. Prints `name: value unit` lines.
//!
//! - `js_hook_call_fresh_p50/p99` and `rust_hook_call_fresh_p50/p99`: the
//!   host's call (fresh store + instance per call, limits armed) of the
//!   `basic-auth` hook of the TypeScript and the Rust Insightly example;
//! - `js_compile_ms`, `js_load_from_cache_ms`, `js_wasm_size`;
//! - `js_rss_idle_per_connector`: RSS growth when one JS connector is
//!   loaded from the compile cache (after compiling it once, whose memory
//!   stays with the allocator and is left out) and not yet called;
//!   `js_rss_after_calls`: RSS growth after the calls (warm pool slots
//!   touched by the JS heap).

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_sandbox::runtime::{CallContext, Runtime, RuntimeLimits};
use connector_server::registry::{CompileCache, LoadedConnector, load};
use connector_test_support::bench::percentile_us;
use connector_test_support::{connection, guest_bytes};

const CALLS: usize = 1_000;
const WARMUP: usize = 50;
/// JS connectors loaded (from the cache) to measure the idle RSS of one.
const IDLE_CONNECTORS: usize = 4;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// RSS broken down as the kernel counts it: anonymous, file-backed (the
/// compiled code is an mmap of the cache entry's bytes), shared memory (the
/// copy-on-write image of the heap snapshot), in MiB.
fn rss_breakdown() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    format!(
        "anon {:.1} MiB, file {:.1} MiB, shmem {:.1} MiB",
        field("RssAnon:"),
        field("RssFile:"),
        field("RssShmem:")
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// `CALLS` timed `basic-auth` calls after a warm-up.
async fn time_calls(loaded: &LoadedConnector) -> anyhow::Result<Vec<Duration>> {
    let ctx = CallContext::default();
    for _ in 0..WARMUP {
        loaded
            .prepared
            .basic_auth(&ctx, connection())
            .await
            .result?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let outcome = loaded.prepared.basic_auth(&ctx, connection()).await;
        samples.push(started.elapsed());
        outcome.result?;
    }
    Ok(samples)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runtime = Arc::new(Runtime::new(RuntimeLimits::default())?);
    let cache_dir = tempfile::tempdir()?;
    let cache = CompileCache::new(cache_dir.path());
    let js = guest_bytes("ts_local_insightly");
    println!("js_wasm_size: {} bytes", js.len());

    // Compiling fills the cache; what the compiler allocated stays with the
    // allocator, so memory is measured from here on.
    let started = Instant::now();
    let compiled = load(
        &runtime,
        &cache,
        js.clone(),
        "js.wasm".into(),
        &Default::default(),
    )
    .await?;
    println!("js_compile_ms: {:.1} ms", ms(started.elapsed()));
    drop(compiled);

    let rss_before = rss_kib();
    let mut loaded = Vec::with_capacity(IDLE_CONNECTORS);
    for _ in 0..IDLE_CONNECTORS {
        let started = Instant::now();
        let again = load(
            &runtime,
            &cache,
            js.clone(),
            "js.wasm".into(),
            &Default::default(),
        )
        .await?;
        assert!(
            again.from_cache,
            "loads after the first come from the cache"
        );
        if loaded.is_empty() {
            println!("js_load_from_cache_ms: {:.2} ms", ms(started.elapsed()));
        }
        loaded.push(again);
    }
    let rss_loaded = rss_kib();
    let idle = rss_loaded.saturating_sub(rss_before) as f64 / 1024.0 / IDLE_CONNECTORS as f64;
    println!(
        "js_rss_idle_per_connector: {idle:.1} MiB ({})",
        rss_breakdown()
    );

    let mut js_samples = time_calls(&loaded[0]).await?;
    let grown = rss_kib().saturating_sub(rss_loaded) as f64 / 1024.0;
    println!(
        "js_rss_after_calls: {:.1} MiB for the called connector after {} calls ({})",
        idle + grown,
        CALLS + WARMUP,
        rss_breakdown()
    );

    let rust = guest_bytes("local_insightly");
    let loaded_rust = load(
        &runtime,
        &cache,
        rust,
        "rust.wasm".into(),
        &Default::default(),
    )
    .await?;
    let mut rust_samples = time_calls(&loaded_rust).await?;

    println!(
        "js_hook_call_fresh_p50: {:.1} us",
        percentile_us(&mut js_samples, 0.5)
    );
    println!(
        "js_hook_call_fresh_p99: {:.1} us",
        percentile_us(&mut js_samples, 0.99)
    );
    println!(
        "rust_hook_call_fresh_p50: {:.1} us",
        percentile_us(&mut rust_samples, 0.5)
    );
    println!(
        "rust_hook_call_fresh_p99: {:.1} us",
        percentile_us(&mut rust_samples, 0.99)
    );
    Ok(())
}
