//! `fairness`: what a well-behaved connector's hook call costs while another
//! connector holds all of its own slots with hanging calls (requests to a
//! server that never answers), next to the same call on an idle sandbox,
//! measured in the same run. Prints `name: value unit` lines.
//!
//! - `good_call_idle_p50/p99`: `auth-type` of `versioned-v1`, nothing else running;
//! - `good_call_beside_hanging_p50/p99`: the same while `http-probe` has 200
//!   calls waiting on a server that never answers (its share of the slots
//!   busy, the rest of its calls queued behind them);
//! - `hanging_calls_in_flight`: how many of those reached the server (its share).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Response;
use connector_sandbox::capabilities::http::CallCredentials;
use connector_sandbox::runtime::{CallContext, RuntimeLimits};
use connector_server::registry::LoadedConnector;
use connector_test_support::bench::percentile_us;
use connector_test_support::load;
use connector_test_support::sandbox::{loopback_runtime, probe_request};
use tokio::sync::mpsc;

const CALLS: usize = 3_000;
const HANGING: usize = 200;

async fn good_calls(good: &LoadedConnector) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let outcome = good.prepared.auth_type(&CallContext::default()).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result.err());
        samples.push(started.elapsed());
    }
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let limits = RuntimeLimits {
        call_timeout_ms: 120_000,
        ..RuntimeLimits::default()
    };
    let share = limits.default_connector_slots() as usize;
    let runtime = loopback_runtime(limits, Default::default(), Default::default());
    let good = load(&runtime, "versioned_v1").await;
    let hanging = Arc::new(load(&runtime, "http_probe").await);

    let mut idle = good_calls(&good).await;

    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let app = Router::new().fallback(move || {
        let arrived = arrived.clone();
        async move {
            let _ = arrived.send(());
            std::future::pending::<Response>().await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/never", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut calls = Vec::new();
    for _ in 0..HANGING {
        let (hanging, url) = (hanging.clone(), url.clone());
        calls.push(tokio::spawn(async move {
            let ctx = CallContext {
                credentials: Arc::new(CallCredentials::default()),
                ..CallContext::default()
            };
            hanging
                .prepared
                .user_info(&ctx, probe_request(&[("url", &url)]))
                .await
        }));
    }
    for _ in 0..share {
        arrivals
            .recv()
            .await
            .expect("a hanging call reached the server");
    }
    let mut beside = good_calls(&good).await;
    let mut in_flight = share;
    while arrivals.try_recv().is_ok() {
        in_flight += 1;
    }
    for call in calls {
        call.abort();
    }

    println!(
        "good_call_idle_p50: {:.1} us",
        percentile_us(&mut idle, 0.5)
    );
    println!(
        "good_call_idle_p99: {:.1} us",
        percentile_us(&mut idle, 0.99)
    );
    println!(
        "good_call_beside_hanging_p50: {:.1} us",
        percentile_us(&mut beside, 0.5)
    );
    println!(
        "good_call_beside_hanging_p99: {:.1} us",
        percentile_us(&mut beside, 0.99)
    );
    println!("hanging_calls_in_flight: {in_flight} calls");
    Ok(())
}
