//! Fair share between connectors: one connector whose calls hang (here: an
//! `http-probe` waiting on a server that never answers) holds at most its own
//! share of the sandbox's slots, so another connector's call still runs at once
//! instead of waiting out its whole deadline.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use connector_sandbox::capabilities::http::CallCredentials;
use connector_sandbox::runtime::{CallContext, RuntimeLimits};
use connector_sandbox::wit::AuthType;
use connector_test_support::load;
use connector_test_support::sandbox::{loopback_runtime, probe_request};
use tokio::sync::mpsc;

/// A server that tells the test about each request and never answers it.
async fn start_hanging_server() -> (String, mpsc::UnboundedReceiver<()>) {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let app = Router::new().fallback(move || {
        let arrived = arrived.clone();
        async move {
            let _ = arrived.send(());
            std::future::pending::<Response>().await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, arrivals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_connector_keeps_only_its_share_of_the_slots() {
    let limits = RuntimeLimits {
        call_timeout_ms: 30_000,
        max_concurrent_calls: 8,
        max_concurrent_calls_per_connector: 2,
        ..RuntimeLimits::default()
    };
    assert_eq!(limits.default_connector_slots(), 2);
    let runtime = loopback_runtime(limits, Default::default(), Default::default());
    let hanging = Arc::new(load(&runtime, "http_probe").await);
    let good = load(&runtime, "versioned_v1").await;
    let (base, mut arrivals) = start_hanging_server().await;

    // Twice as many hanging calls as there are slots in the whole sandbox.
    let mut calls = Vec::new();
    for _ in 0..16 {
        let hanging = hanging.clone();
        let url = format!("{base}/never");
        calls.push(tokio::spawn(async move {
            let info = probe_request(&[("url", &url)]);
            let ctx = CallContext {
                credentials: Arc::new(CallCredentials::default()),
                ..CallContext::default()
            };
            hanging.prepared.user_info(&ctx, info).await
        }));
    }
    // The hanging connector's own share is in flight at the server...
    for _ in 0..2 {
        arrivals.recv().await.expect("a hanging request arrived");
    }
    // ...and no more of its calls get a slot.
    assert!(arrivals.try_recv().is_err(), "only its share runs");

    // The other connector is not kept waiting: its call runs while every
    // hanging call is still hanging (without a share per connector it would
    // get a slot only when the first hanging ones ran out of time).
    let outcome = good.prepared.auth_type(&CallContext::default()).await;
    assert!(
        matches!(outcome.result, Ok(AuthType::ApiKey) | Ok(AuthType::Oauth)),
        "{:?}",
        outcome.result.err()
    );
    assert!(
        calls.iter().all(|call| !call.is_finished()),
        "the good call waited for hanging calls to end"
    );
    for call in calls {
        call.abort();
    }
}

#[test]
fn the_default_share_is_a_quarter_of_the_slots_and_never_more_than_all() {
    let limits = |global, per| RuntimeLimits {
        max_concurrent_calls: global,
        max_concurrent_calls_per_connector: per,
        ..RuntimeLimits::default()
    };
    assert_eq!(limits(128, 0).default_connector_slots(), 32);
    assert_eq!(limits(2, 0).default_connector_slots(), 1);
    assert_eq!(limits(8, 50).default_connector_slots(), 8);
    assert_eq!(limits(8, 3).default_connector_slots(), 3);
}
