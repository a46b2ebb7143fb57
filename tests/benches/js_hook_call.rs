//! `js_hook_call`: what a JavaScript connector costs next to the Rust
//! example in the same run. Prints `name: value unit` lines.
//!
//! - `js_hook_call_fresh_p50/p99` and `rust_hook_call_fresh_p50/p99`: the
//!   host's call (fresh store + instance per call, limits armed) of the
//!   `basic-auth` hook of the TypeScript and the Rust Insightly example;
//! - `js_auth_type_fresh_p50` and `rust_auth_type_fresh_p50`: the smallest
//!   hook (a constant), i.e. what a fresh instance costs before any work;
//! - `js_vs_rust_p50_ratio`: the JS call over the Rust call, same run;
//! - `js_compile_ms`, `js_load_from_cache_ms`, `js_wasm_size`;
//! - `js_rss_idle_per_connector`: RSS growth when one JS connector is
//!   loaded from the compile cache (after compiling it once, whose memory
//!   stays with the allocator and is left out) and not yet called;
//!   `js_rss_after_calls`: RSS growth after the calls (warm pool slots
//!   touched by the JS heap); each with its target (10 MiB idle, 64 MiB
//!   after 1,000 calls) and whether it was met.

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

/// Target of `js_rss_idle_per_connector`, MiB.
const IDLE_TARGET_MIB: f64 = 10.0;
/// Target of `js_hook_call_fresh_p50`, µs.
const JS_P50_TARGET_US: f64 = 100.0;
/// Target of `js_rss_after_calls`, MiB.
const AFTER_CALLS_TARGET_MIB: f64 = 64.0;

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

/// `CALLS` timed `auth-type` calls (the hook returns a constant): the cost
/// of a fresh instance itself.
async fn time_auth_type(loaded: &LoadedConnector) -> anyhow::Result<Vec<Duration>> {
    let ctx = CallContext::default();
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let outcome = loaded.prepared.auth_type(&ctx).await;
        samples.push(started.elapsed());
        outcome.result?;
    }
    Ok(samples)
}

/// `met` or `missed`, for a figure against its target.
fn verdict(value: f64, target: f64) -> &'static str {
    if value <= target { "met" } else { "missed" }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runtime = Arc::new(Runtime::new(RuntimeLimits::default())?);
    let cache_dir = tempfile::tempdir()?;
    let cache = CompileCache::new(cache_dir.path());
    let js = guest_bytes("ts_local_insightly");
    println!("js_wasm_size: {} bytes", js.len());
    println!(
        "slot_keep_resident: {:.1} MiB (pagemap_scan available: {})",
        connector_sandbox::runtime::MEMORY_KEEP_RESIDENT as f64 / 1048576.0,
        wasmtime::PoolingAllocationConfig::is_pagemap_scan_available()
    );

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
    println!(
        "js_rss_idle_target: {IDLE_TARGET_MIB:.1} MiB ({})",
        verdict(idle, IDLE_TARGET_MIB)
    );

    let mut js_samples = time_calls(&loaded[0]).await?;
    let after_calls = idle + rss_kib().saturating_sub(rss_loaded) as f64 / 1024.0;
    println!(
        "js_rss_after_calls: {after_calls:.1} MiB for the called connector after {} calls ({})",
        CALLS + WARMUP,
        rss_breakdown()
    );
    println!(
        "js_rss_after_calls_target: {AFTER_CALLS_TARGET_MIB:.1} MiB ({})",
        verdict(after_calls, AFTER_CALLS_TARGET_MIB)
    );
    if let Some(pool) = runtime.engine().pooling_allocator_metrics() {
        println!(
            "js_warm_slots_resident: {:.2} MiB in {} warm memory slots",
            pool.unused_memory_bytes_resident() as f64 / 1048576.0,
            pool.unused_warm_memories()
        );
    }
    let mut js_auth_type = time_auth_type(&loaded[0]).await?;

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
    let mut rust_auth_type = time_auth_type(&loaded_rust).await?;

    let js_p50 = percentile_us(&mut js_samples, 0.5);
    println!("js_hook_call_fresh_p50: {js_p50:.1} us");
    println!(
        "js_hook_call_fresh_p99: {:.1} us",
        percentile_us(&mut js_samples, 0.99)
    );
    let rust_p50 = percentile_us(&mut rust_samples, 0.5);
    println!("rust_hook_call_fresh_p50: {rust_p50:.1} us");
    println!(
        "rust_hook_call_fresh_p99: {:.1} us",
        percentile_us(&mut rust_samples, 0.99)
    );
    println!(
        "js_auth_type_fresh_p50: {:.1} us",
        percentile_us(&mut js_auth_type, 0.5)
    );
    println!(
        "rust_auth_type_fresh_p50: {:.1} us",
        percentile_us(&mut rust_auth_type, 0.5)
    );
    println!("js_vs_rust_p50_ratio: {:.1} x", js_p50 / rust_p50);
    println!(
        "js_hook_call_p50_target: {JS_P50_TARGET_US:.0} us ({})",
        verdict(js_p50, JS_P50_TARGET_US)
    );
    Ok(())
}
