//! `hook_call`: what one hook call costs, next to a naive wasmtime baseline
//! measured in the same run. Prints `name: value unit` lines.
//!
//! - `hook_call_fresh_p50/p99`: the host's call (fresh store + instance per
//!   call, limits armed) of an example connector's `basic-auth` hook;
//! - `baseline_fresh_p50/p99`: plain `InstancePre` + a fresh `Store` with a
//!   default WASI context per call, default engine config;
//! - `hook_call_reused_p50`: one instance, called repeatedly (not isolated);
//! - `compile_ms`, `load_from_cache_ms`;
//! - `rss_per_connector`: RSS growth with 100 distinct connectors loaded.

use std::sync::Arc;
use std::time::Instant;

use connector_sandbox::runtime::{CallContext, Runtime, RuntimeLimits};
use connector_sandbox::wit::ConnectorPre;
use connector_server::registry::{CompileCache, load};
use connector_test_support::bench::percentile_us;
use connector_test_support::connection;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const CALLS: usize = 5_000;
const CONNECTORS: usize = 100;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Baseline {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Baseline {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let guests = std::path::PathBuf::from(connector_test_support::GUESTS_DIR);
    let bytes = std::fs::read(guests.join("apikey_insightly.wasm"))?;
    let runtime = Arc::new(Runtime::new(RuntimeLimits::default())?);
    let cache_dir = tempfile::tempdir()?;
    let cache = CompileCache::new(cache_dir.path());

    // Compile and cache load.
    let started = Instant::now();
    let component = runtime.compile(&bytes)?;
    println!(
        "compile_ms: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let loaded = load(
        &runtime,
        &cache,
        bytes.clone(),
        "insightly.wasm".into(),
        &Default::default(),
    )
    .await?;
    let started = Instant::now();
    let again = load(
        &runtime,
        &cache,
        bytes.clone(),
        "insightly.wasm".into(),
        &Default::default(),
    )
    .await?;
    assert!(again.from_cache);
    println!(
        "load_from_cache_ms: {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // The host's isolated call.
    let ctx = CallContext::default();
    for _ in 0..200 {
        loaded
            .prepared
            .basic_auth(&ctx, connection())
            .await
            .result?;
    }
    let mut host = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let outcome = loaded.prepared.basic_auth(&ctx, connection()).await;
        host.push(started.elapsed());
        outcome.result?;
    }

    // The naive baseline: default engine, full WASI linked, fresh default context.
    let engine = Engine::new(&Config::new())?;
    let baseline_component = wasmtime::component::Component::new(&engine, &bytes)?;
    let mut linker: Linker<Baseline> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.define_unknown_imports_as_traps(&baseline_component)?;
    let pre = ConnectorPre::new(linker.instantiate_pre(&baseline_component)?)?;
    let fresh_store = || {
        Store::new(
            &engine,
            Baseline {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        )
    };
    let mut baseline = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let started = Instant::now();
        let mut store = fresh_store();
        let instance = pre.instantiate_async(&mut store).await?;
        instance
            .connector_auth_hooks()
            .call_basic_auth(&mut store, &connection())
            .await?
            .ok();
        if i >= 200 {
            baseline.push(started.elapsed());
        }
    }

    // One instance reused (what isolation costs us, for reference).
    let mut store = fresh_store();
    let instance = pre.instantiate_async(&mut store).await?;
    let mut reused = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        instance
            .connector_auth_hooks()
            .call_basic_auth(&mut store, &connection())
            .await?
            .ok();
        reused.push(started.elapsed());
    }

    let (host_p50, host_p99) = (
        percentile_us(&mut host, 0.5),
        percentile_us(&mut host, 0.99),
    );
    let (base_p50, base_p99) = (
        percentile_us(&mut baseline, 0.5),
        percentile_us(&mut baseline, 0.99),
    );
    println!("hook_call_fresh_p50: {host_p50:.1} us");
    println!("hook_call_fresh_p99: {host_p99:.1} us");
    println!("baseline_fresh_p50: {base_p50:.1} us");
    println!("baseline_fresh_p99: {base_p99:.1} us");
    println!(
        "hook_call_vs_baseline_p50: {:.2} ratio",
        host_p50 / base_p50
    );
    println!(
        "hook_call_reused_p50: {:.2} us",
        percentile_us(&mut reused, 0.5)
    );
    println!("pooling_allocator: {} bool", runtime.is_pooling());
    drop((component, baseline_component));

    // Memory: 100 distinct connectors (the manifest id patched per copy, so
    // each has its own hash and compiled code), loaded from the cache.
    let versioned = std::fs::read(guests.join("versioned_v1.wasm"))?;
    let marker = b"\"test-versioned\"";
    let at = versioned
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("manifest id in the component");
    let variants: Vec<Vec<u8>> = (0..CONNECTORS)
        .map(|i| {
            let mut copy = versioned.clone();
            copy[at + 13..at + 15].copy_from_slice(format!("{i:02}").as_bytes());
            copy
        })
        .collect();
    for variant in &variants {
        load(
            &runtime,
            &cache,
            variant.clone(),
            "v.wasm".into(),
            &Default::default(),
        )
        .await?;
    }
    let before = rss_kib();
    let mut kept = Vec::with_capacity(CONNECTORS);
    for variant in &variants {
        kept.push(
            load(
                &runtime,
                &cache,
                variant.clone(),
                "v.wasm".into(),
                &Default::default(),
            )
            .await?,
        );
    }
    for connector in &kept {
        connector
            .prepared
            .user_info(&ctx, connection())
            .await
            .result?;
    }
    let after = rss_kib();
    println!(
        "rss_100_connectors_delta: {:.1} MiB",
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    println!(
        "rss_per_connector: {:.0} KiB",
        (after.saturating_sub(before)) as f64 / CONNECTORS as f64
    );
    Ok(())
}
