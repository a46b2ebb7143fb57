//! `lifecycle`: what using a connection costs. Prints `name: value unit`
//! lines, each next to a baseline measured in the same run.
//!
//! - `direct_request_p50`: a keep-alive GET with the access token straight to
//!   the local provider (the baseline);
//! - `proxied_request_p50`: the same GET through `POST …/connections/{id}/proxy`
//!   (API key check, connection read, credential decryption, allowed-origin
//!   check, audit); `proxy_added_p50` is the difference (target ≤ 100 µs);
//! - `forwarding_floor_added_p50`: what a bare forwarder in this process adds
//!   (one more loopback hop and one more client, nothing else): no proxy can
//!   add less here; `proxy_added_over_floor_p50` is the host's own work;
//! - `bare_hop_p50` / `authenticated_hop_p50`: a request to the host that does
//!   nothing (`/healthz`), and one that only checks the API key (`/v1/whoami`);
//! - `background_refresh_10000`: the background refresher refreshing 10 000
//!   due connections (provider token requests must equal 10 000); the rate of
//!   the logins that created them is printed alongside.
//!
//! `LIFECYCLE_PROXY_ONLY=1` stops after the proxy figures.

use std::sync::Arc;
use std::time::Instant;

use connector_server::access::Role;
use connector_server::config::ApiLimits;
use connector_server::flows::RefresherSettings;
use connector_test_support::bench::p50_us;
use connector_test_support::harness::{Host, Options};
use connector_test_support::oauth;
use serde_json::{Value, json};

const CALLS: usize = 2_000;
const CONNECTIONS: usize = 10_000;

/// Logs `user` of the account `bench` in through `local-regional`; the
/// connection id.
async fn login(host: &Host, user: &str) -> String {
    oauth::login(host, "bench", user).await
}

/// p50 in µs of `CALLS` sequential keep-alive requests (after 200 warm-up
/// ones), each answered `200`.
async fn sample(request: impl Fn() -> reqwest::RequestBuilder) -> f64 {
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let started = Instant::now();
        let response = request().send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.bytes().await.unwrap();
        if i >= 200 {
            samples.push(started.elapsed());
        }
    }
    p50_us(&mut samples)
}

/// The floor of any proxy here: a loopback server, in this process, whose
/// one route forwards `{url, token}` as a bearer GET with a plain keep-alive
/// client and answers the provider's status and body as JSON, the shape the
/// host's proxy answers. Returns its URL.
async fn start_floor_forwarder() -> String {
    async fn forward(
        axum::extract::State(client): axum::extract::State<reqwest::Client>,
        axum::Json(request): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let response = client
            .get(request["url"].as_str().unwrap())
            .bearer_auth(request["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        axum::Json(json!({"status": status, "body": body}))
    }
    let app = axum::Router::new()
        .route("/forward", axum::routing::post(forward))
        .with_state(reqwest::Client::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/forward", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Production-like logging: INFO lines to stderr (one per proxied request).
    tracing_subscriber::fmt()
        .with_env_filter("info,sqlx=warn")
        .with_writer(std::io::stderr)
        .init();
    let host = Arc::new(
        Host::with(Options {
            capture_logs: false,
            // Thousands of calls with one key: measure the proxy, not the
            // per-key rate limit.
            api: ApiLimits {
                requests_per_second_per_key: 1_000_000,
                burst_per_key: 1_000_000,
                ..ApiLimits::default()
            },
            ..Options::default()
        })
        .await,
    );
    let id = login(&host, "proxy-user").await;
    let (_, secret) = host
        .api_keys
        .create_with("bench", Role::Service, &["bench".to_string()], true)
        .await
        .unwrap();
    let trusted = secrecy::ExposeSecret::expose_secret(&secret).to_string();
    let base = format!(
        "{}/v1/accounts/bench/users/proxy-user/connections/{id}",
        host.base
    );
    let raw = oauth::get_json(&host.http, &format!("{base}/credentials"), &trusted).await;
    let token = raw["accessToken"].as_str().unwrap().to_string();
    let me = format!("{}/api/v1/me", host.api_url());
    let client = reqwest::Client::new();
    let floor = start_floor_forwarder().await;
    let body = json!({"method": "GET", "url": me});

    let direct = sample(|| client.get(&me).bearer_auth(&token)).await;
    let proxied = sample(|| {
        client
            .post(format!("{base}/proxy"))
            .bearer_auth(&host.service_key)
            .json(&body)
    })
    .await;
    let forwarded = sample(|| {
        client
            .post(&floor)
            .json(&json!({"url": me, "token": token}))
    })
    .await;
    let bare = sample(|| client.get(format!("{}/healthz", host.base))).await;
    let hop = sample(|| {
        client
            .get(format!("{}/v1/whoami", host.base))
            .bearer_auth(&host.service_key)
    })
    .await;
    println!("direct_request_p50: {direct:.1} us");
    println!("proxied_request_p50: {proxied:.1} us");
    println!(
        "proxy_added_p50: {:.1} us (target <= 100)",
        proxied - direct
    );
    println!(
        "forwarding_floor_added_p50: {:.1} us (a bare forwarder: no key, database, policy or audit)",
        forwarded - direct
    );
    println!(
        "proxy_added_over_floor_p50: {:.1} us (the host's own work)",
        proxied - forwarded
    );
    println!("bare_hop_p50: {bare:.1} us (client -> host -> client, no key)");
    println!("authenticated_hop_p50: {hop:.1} us (client -> host -> client, API key checked)");

    if std::env::var_os("LIFECYCLE_PROXY_ONLY").is_some() {
        // The proxy figures alone (for profiling, e.g. under `perf record`).
        return;
    }
    // 10 000 connections, all due.
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(32));
    let mut logins = tokio::task::JoinSet::new();
    for n in 0..CONNECTIONS {
        let (host, permit) = (
            host.clone(),
            semaphore.clone().acquire_owned().await.unwrap(),
        );
        logins.spawn(async move {
            let _permit = permit;
            login(&host, &format!("user-{n}")).await
        });
    }
    while let Some(done) = logins.join_next().await {
        done.unwrap();
    }
    let login_secs = started.elapsed().as_secs_f64();
    println!(
        "setup_logins_per_sec: {:.0} logins/s (baseline: {CONNECTIONS} OAuth logins in {login_secs:.1} s)",
        CONNECTIONS as f64 / login_secs
    );
    host.database
        .expire_all_connections_for_tests()
        .await
        .unwrap();
    let before = host.provider.stats().refresh_grants;
    let started = Instant::now();
    let run = host
        .flows
        .refresh_due(RefresherSettings {
            batch: 1_000,
            concurrency: 64,
            ..RefresherSettings::default()
        })
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let requests = host.provider.stats().refresh_grants - before;
    println!("background_refresh_10000: {secs:.2} s");
    println!(
        "background_refresh_rate: {:.0} refreshes/s",
        run.refreshed as f64 / secs
    );
    println!("background_refresh_token_requests: {requests} requests");
    assert_eq!(run.due, CONNECTIONS + 1, "{run:?}");
    assert_eq!(run.refreshed, CONNECTIONS + 1, "{run:?}");
    assert_eq!(
        requests as usize,
        CONNECTIONS + 1,
        "one token request per connection"
    );
}
