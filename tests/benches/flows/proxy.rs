//! The proxy route against a bare forwarder. Sequential keep-alive requests
//! first: `GET /api/v1/me` straight to the provider with the access token
//! (the baseline), the same through the host's `POST …/proxy`, through a
//! bare forwarder (an axum route that parses the same JSON body and forwards
//! the GET with a keep-alive reqwest client: no key check, no database, no
//! policy, no audit; the floor any proxy pays on this machine), and a
//! do-nothing authenticated request to the host (`/v1/whoami`). Then both
//! proxies at concurrency 16, with the host's CPU per proxied request.

use std::time::Instant;

use axum::body::Bytes;
use connector_test_support::bench::p50_us;
use connector_test_support::oauth::{Dance, get_json};

use crate::measure::{Pids, print, run};

/// Sequential rounds measured (after [`WARM_UP`] more).
const CALLS: usize = 2_000;
const WARM_UP: usize = 200;
/// Requests of each concurrent run.
const CONCURRENT_CALLS: usize = 4_000;

/// Everything the proxy runs need.
pub struct Target<'a> {
    pub client: &'a reqwest::Client,
    pub host_url: &'a str,
    pub provider_url: &'a str,
    pub provider_host: &'a str,
    pub key: &'a str,
    pub pids: Pids,
}

/// Measures and prints the `{prefix}_proxy_*` lines.
pub async fn proxy(prefix: &str, target: &Target<'_>) {
    let client = target.client;
    let start = serde_json::json!({"accountId": "bench", "userId": "proxy-user", "hostname": target.provider_host});
    let dance = Dance {
        http: client,
        provider: target.provider_url,
        key: target.key,
    };
    let connected = dance
        .login(target.host_url, "local-regional", &start)
        .await
        .unwrap();
    let id = connected["connection"]["id"].as_str().unwrap();
    let base = format!(
        "{}/v1/accounts/bench/users/proxy-user/connections/{id}",
        target.host_url
    );
    let raw = get_json(client, &format!("{base}/credentials"), target.key).await;
    let token = raw["accessToken"].as_str().unwrap().to_string();
    let me = format!("{}/api/v1/me", target.provider_url);
    let forwarder = format!("{}/forward", start_forwarder(token.clone()));
    let body = serde_json::json!({"method": "GET", "url": me});
    let proxied = format!("{base}/proxy");
    let whoami = format!("{}/v1/whoami", target.host_url);

    let mut samples = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for i in 0..CALLS + WARM_UP {
        for (which, request) in [
            client.get(&me).bearer_auth(&token),
            client.post(&proxied).bearer_auth(target.key).json(&body),
            client.post(&forwarder).json(&body),
            client.get(&whoami).bearer_auth(target.key),
        ]
        .into_iter()
        .enumerate()
        {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            if i >= WARM_UP {
                samples[which].push(started.elapsed());
            }
        }
    }
    let [mut direct, mut through_host, mut forwarded, mut hop] = samples;
    let direct = p50_us(&mut direct);
    let through_host = p50_us(&mut through_host);
    let forwarded = p50_us(&mut forwarded);
    println!("{prefix}_proxy_direct_p50: {direct:.1} us");
    println!("{prefix}_proxy_proxied_p50: {through_host:.1} us");
    println!("{prefix}_proxy_bare_forwarder_p50: {forwarded:.1} us");
    println!(
        "{prefix}_proxy_added_p50: {:.1} us (over the direct request)",
        through_host - direct
    );
    println!(
        "{prefix}_proxy_floor_added_p50: {:.1} us (the bare forwarder over the direct request)",
        forwarded - direct
    );
    println!(
        "{prefix}_proxy_added_over_floor_p50: {:.1} us (target <= 50)",
        through_host - forwarded
    );
    println!(
        "{prefix}_proxy_authenticated_hop_p50: {:.1} us",
        p50_us(&mut hop)
    );

    let (c, url, key, b) = (
        client.clone(),
        proxied.clone(),
        target.key.to_string(),
        body.clone(),
    );
    let host_run = run(CONCURRENT_CALLS, 16, target.pids, move |_| {
        let request = c.post(&url).bearer_auth(&key).json(&b);
        async move { ok(request).await }
    })
    .await;
    let (c, url, b) = (client.clone(), forwarder.clone(), body.clone());
    let bare_run = run(CONCURRENT_CALLS, 16, target.pids, move |_| {
        let request = c.post(&url).json(&b);
        async move { ok(request).await }
    })
    .await;
    println!(
        "{prefix}_proxied_requests_per_second_c16: {:.0} requests/s",
        host_run.per_second
    );
    println!(
        "{prefix}_bare_forwarder_requests_per_second_c16: {:.0} requests/s",
        bare_run.per_second
    );
    print(&format!("{prefix}_proxied_request"), 16, &host_run, None);
}

/// Sends `request`; whether it answered a 2xx and its whole body arrived.
async fn ok(request: reqwest::RequestBuilder) -> bool {
    match request.send().await {
        Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
        _ => false,
    }
}

/// Starts the bare forwarder on its own two-thread runtime in this process;
/// its base URL. It lives until the process ends.
fn start_forwarder(token: String) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route(
                "/forward",
                axum::routing::post(move |body: Bytes| {
                    let (client, token) = (client.clone(), token.clone());
                    async move { forward(&client, &token, &body).await }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", receiver.recv().unwrap())
}

/// Forwards `{"method": "GET", "url": …}` with `token`; the answer's status
/// and body as JSON, like the host's proxy.
async fn forward(
    client: &reqwest::Client,
    token: &str,
    body: &[u8],
) -> axum::Json<serde_json::Value> {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let url = request["url"].as_str().unwrap_or_default();
    let (status, text) = match client.get(url).bearer_auth(token).send().await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(_) => (502, String::new()),
    };
    axum::Json(serde_json::json!({"status": status, "body": text}))
}
