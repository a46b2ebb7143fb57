//! `outbound`: what a guest's HTTP request through the `http` import costs,
//! next to a direct `reqwest` call to the same local server in the same run.
//! Prints `name: value unit` lines.
//!
//! - `direct_reqwest_p50`: a keep-alive `reqwest` GET to a server on 127.0.0.1;
//! - `guest_request_p50`: one hook call (fresh instance) whose guest makes the
//!   same GET through the import (policy, resolver, credential injection, audit);
//! - `hook_only_p50`: the same connector's hook call without a request;
//! - `outbound_added_p50`: guest − direct (includes the isolated hook call);
//! - `outbound_added_excl_hook_p50`: guest − direct − hook only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use connector_sandbox::capabilities::http::{
    CallCredentials, Outbound, OutboundConfig, SystemResolver, TracingOnlyAuditSink,
};
use connector_sandbox::runtime::{CallContext, Runtime, RuntimeLimits};
use connector_sandbox::wit::hooks::ConnectionInfo;
use connector_server::registry::{CompileCache, load_file};
use connector_test_support::bench::p50_us;
use secrecy::SecretString;

const CALLS: usize = 3_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/me", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let direct_client = reqwest::Client::builder().no_proxy().build()?;
    let mut direct = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let started = Instant::now();
        let body = direct_client
            .get(&url)
            .bearer_auth("token")
            .send()
            .await?
            .bytes()
            .await?;
        assert_eq!(&body[..], b"ok");
        if i >= 200 {
            direct.push(started.elapsed());
        }
    }

    // The local server speaks plain http, and the token is injected.
    let config = OutboundConfig {
        allow_private_networks: vec!["127.0.0.1/32".parse()?],
        require_https: false,
        ..OutboundConfig::default()
    };
    let outbound = Outbound::new(
        config,
        Arc::new(SystemResolver),
        Arc::default(),
        Arc::new(TracingOnlyAuditSink),
    )?;
    let runtime = Arc::new(Runtime::with_outbound(RuntimeLimits::default(), outbound)?);
    let guests = std::path::PathBuf::from(connector_test_support::GUESTS_DIR);
    let probe = load_file(
        &runtime,
        &CompileCache::disabled(),
        &guests.join("http_probe.wasm"),
        &BTreeMap::new(),
    )
    .await?;
    let ctx = CallContext {
        credentials: Arc::new(CallCredentials {
            access_token: Some(SecretString::from("token")),
            ..Default::default()
        }),
        ..CallContext::default()
    };
    let request = ConnectionInfo {
        hostname: None,
        platform_user_id: None,
        additional_info: vec![
            ("url".into(), url.clone()),
            ("credential".into(), "access-token".into()),
        ],
    };
    let mut guest = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let started = Instant::now();
        let seen = probe
            .prepared
            .user_info(&ctx, request.clone())
            .await
            .result?;
        if i >= 200 {
            guest.push(started.elapsed());
        }
        assert_eq!(seen.name, "200");
    }
    let mut hook_only = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        probe
            .prepared
            .basic_auth(&ctx, request.clone())
            .await
            .result?;
        hook_only.push(started.elapsed());
    }

    let (direct, guest, hook) = (
        p50_us(&mut direct),
        p50_us(&mut guest),
        p50_us(&mut hook_only),
    );
    println!("direct_reqwest_p50: {direct:.1} us");
    println!("guest_request_p50: {guest:.1} us");
    println!("hook_only_p50: {hook:.1} us");
    println!("outbound_added_p50: {:.1} us", guest - direct);
    println!(
        "outbound_added_excl_hook_p50: {:.1} us",
        guest - direct - hook
    );
    Ok(())
}
