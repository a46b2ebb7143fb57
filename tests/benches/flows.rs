//! `flows`: API-key logins/s and OAuth start+callback flows/s through the HTTP
//! API, at concurrency 1, 16 and 64, against the local test provider. The host
//! and the provider run as separate processes (`connector-host serve` and
//! `connector-host dev-provider`), so the host's own CPU time per flow is read
//! exactly from `/proc/<pid>/stat`. Every run is bounded (a fixed number of
//! flows). Then the proxy route against the same provider: its p50 next to
//! the direct request (the baseline) and to a do-nothing authenticated
//! request (the extra hop). Last, the sustained run: OAuth logins, then
//! API-key logins, at concurrency 16 until `BENCH_SUSTAINED_FLOWS` of each
//! (default 100 000, so the tables hold that many OAuth states and
//! connections; at most 30 minutes each), with the rate over the first and
//! the last tenth of each (target: last ≥ 0.9 × first). Prints `name: value
//! unit` lines.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_test_support::bench::{p50_us, percentile_us};
use connector_test_support::databases::sqlite_url;
use connector_test_support::oauth::{Dance, get_json};
use connector_test_support::process::Process;
use connector_test_support::serve::{Serve, create_api_key, install_guests, regional_config};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const API_KEY: &str = "bench-api-key";
const CLIENT_SECRET: &str = "bench-client-secret";

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// The `p` quantile of `samples` in milliseconds.
fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    percentile_us(samples, p) / 1e3
}

struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    host_cpu_us_per_flow: f64,
}

async fn run<F, Fut>(total: usize, concurrency: usize, host_pid: u32, flow: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let flow = Arc::new(flow);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_seconds(host_pid);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (flow, next) = (flow.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                if !flow(i).await {
                    errors += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(host_pid) - cpu_before;
    Run {
        per_second: total as f64 / elapsed,
        p50_ms: percentile_ms(&mut latencies, 0.5),
        p99_ms: percentile_ms(&mut latencies, 0.99),
        errors,
        host_cpu_us_per_flow: cpu / total as f64 * 1e6,
    }
}

fn print(name: &str, concurrency: usize, run: &Run) {
    println!(
        "{name}_c{concurrency}_per_second: {:.0} flows/s",
        run.per_second
    );
    println!("{name}_c{concurrency}_p50: {:.2} ms", run.p50_ms);
    println!("{name}_c{concurrency}_p99: {:.2} ms", run.p99_ms);
    println!("{name}_c{concurrency}_errors: {} count", run.errors);
    println!(
        "{name}_c{concurrency}_host_cpu_per_flow: {:.0} us",
        run.host_cpu_us_per_flow
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let mut provider = Process::spawn(
        Command::new(BIN)
            .args([
                "dev-provider",
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                API_KEY,
            ])
            .env("DEV_PROVIDER_CLIENT_SECRET", CLIENT_SECRET),
    );
    let provider_url = provider.announced("dev provider listening on ");
    let provider_host = provider_url.trim_start_matches("http://").to_string();
    let plugins = work.path().join("plugins");
    install_guests(&plugins, &["local_insightly", "local_regional"]);
    let config = work.path().join("host.toml");
    // One service key drives every flow: its rate limit is raised so that
    // the figures measure the flows, not the limiter (`[api]` defaults
    // allow 200 requests per second per key).
    let unlimited = "[api]\nrequests_per_second_per_key = 1000000\nburst_per_key = 1000000\n";
    std::fs::write(
        &config,
        format!(
            "{}{unlimited}",
            regional_config(&provider_host, "BENCH_CLIENT_SECRET")
        ),
    )
    .unwrap();
    let database_url = sqlite_url(&work.path().join("bench.db"));
    // The platform's service key (every /v1 request is authenticated).
    let service_key = create_api_key(
        Path::new(BIN),
        &database_url,
        "bench",
        "service",
        &["bench"],
        &["--raw-tokens"],
    )
    .secret;
    let host = Serve::new(BIN)
        .config(&config)
        .plugins_dir(&plugins)
        .database_url(&database_url)
        .cache_dir(work.path().join("cache"))
        .master_keys(&connector_server::store::crypto::Keyring::generate_entry(
            "bench",
        ))
        .env("BENCH_CLIENT_SECRET", CLIENT_SECRET)
        .env("RUST_LOG", "warn,connector_host=info")
        .start();
    let host_url = host.base.clone();
    let host_pid = host.pid();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();

    for concurrency in [1, 16, 64] {
        let total = if concurrency == 1 { 500 } else { 3000 };
        let (client, host_url, provider_url, service_key) = (
            client.clone(),
            host_url.clone(),
            provider_url.clone(),
            service_key.clone(),
        );
        let result = run(total, concurrency, host_pid, move |i| {
            let (client, host_url, provider_url, key) = (client.clone(), host_url.clone(), provider_url.clone(), service_key.clone());
            async move {
                let body = serde_json::json!({
                    "accountId": "bench", "userId": format!("k{concurrency}-{i}"),
                    "fields": {"apiKey": API_KEY, "apiUrl": provider_url}
                });
                let url = format!("{host_url}/v1/connectors/local-insightly/api-key/login");
                matches!(client.post(url).bearer_auth(&key).json(&body).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await;
        print("api_key_login", concurrency, &result);
    }

    for concurrency in [1, 16, 64] {
        let total = if concurrency == 1 { 300 } else { 2000 };
        let (client, host_url, provider_url, provider_host, service_key) = (
            client.clone(),
            host_url.clone(),
            provider_url.clone(),
            provider_host.clone(),
            service_key.clone(),
        );
        let result = run(total, concurrency, host_pid, move |i| {
            let (client, host_url, provider_url, provider_host, key) =
                (client.clone(), host_url.clone(), provider_url.clone(), provider_host.clone(), service_key.clone());
            async move {
                let start = serde_json::json!({"accountId": "bench", "userId": format!("o{concurrency}-{i}"), "hostname": provider_host});
                let dance = Dance { http: &client, provider: &provider_url, key: &key };
                dance.login(&host_url, "local-regional", &start).await.is_ok()
            }
        })
        .await;
        print("oauth_flow", concurrency, &result);
    }
    proxy(
        &client,
        &host_url,
        &provider_url,
        &provider_host,
        &service_key,
    )
    .await;

    let total = std::env::var("BENCH_SUSTAINED_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (c, h, p, ph, k) = (
        client.clone(),
        host_url.clone(),
        provider_url.clone(),
        provider_host.clone(),
        service_key.clone(),
    );
    let oauth = sustained(total, move |i| {
        let (client, host_url, provider_url, provider_host, key) =
            (c.clone(), h.clone(), p.clone(), ph.clone(), k.clone());
        async move {
            let start = serde_json::json!({"accountId": "bench", "userId": format!("so-{i}"), "hostname": provider_host});
            let dance = Dance { http: &client, provider: &provider_url, key: &key };
            dance.login(&host_url, "local-regional", &start).await.is_ok()
        }
    })
    .await;
    oauth.print("sustained_oauth_login");
    let (c, h, p, k) = (
        client.clone(),
        host_url.clone(),
        provider_url.clone(),
        service_key.clone(),
    );
    let api_key = sustained(total, move |i| {
        let (client, host_url, provider_url, key) = (c.clone(), h.clone(), p.clone(), k.clone());
        async move {
            let body = serde_json::json!({
                "accountId": "bench", "userId": format!("sk-{i}"),
                "fields": {"apiKey": API_KEY, "apiUrl": provider_url}
            });
            let url = format!("{host_url}/v1/connectors/local-insightly/api-key/login");
            matches!(client.post(url).bearer_auth(&key).json(&body).send().await, Ok(r) if r.status().is_success())
        }
    })
    .await;
    api_key.print("sustained_api_key_login");
    drop(host);
}

/// The concurrency of the sustained run.
const SUSTAINED_CONCURRENCY: usize = 16;
/// The longest a sustained run may take; it stops there with what it did.
const SUSTAINED_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The rate at the start and at the end of a long run.
struct Sustained {
    flows: usize,
    errors: usize,
    first_tenth_per_second: f64,
    last_tenth_per_second: f64,
}

impl Sustained {
    fn print(&self, name: &str) {
        println!("{name}_flows: {} count", self.flows);
        println!("{name}_errors: {} count", self.errors);
        println!(
            "{name}_first_tenth: {:.0} flows/s",
            self.first_tenth_per_second
        );
        println!(
            "{name}_last_tenth: {:.0} flows/s",
            self.last_tenth_per_second
        );
        println!(
            "{name}_last_over_first: {:.2} ratio (target >= 0.9)",
            self.last_tenth_per_second / self.first_tenth_per_second
        );
    }
}

/// Runs `total` flows at [`SUSTAINED_CONCURRENCY`] (fewer if
/// [`SUSTAINED_LIMIT`] passes first) and measures the rate over the first and
/// the last tenth of the successful ones, by their completion times.
async fn sustained<F, Fut>(total: usize, flow: F) -> Sustained
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let flow = Arc::new(flow);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..SUSTAINED_CONCURRENCY {
        let (flow, next) = (flow.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut done, mut errors) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= total || started.elapsed() >= SUSTAINED_LIMIT {
                    break;
                }
                if flow(i).await {
                    done.push(started.elapsed());
                } else {
                    errors += 1;
                }
            }
            (done, errors)
        }));
    }
    let (mut done, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (d, e) = worker.await.unwrap();
        done.extend(d);
        errors += e;
    }
    done.sort();
    let tenth = (done.len() / 10).max(1);
    let rate = |from: Duration, to: Duration| tenth as f64 / (to - from).as_secs_f64().max(1e-9);
    let (first, last) = match done.len() {
        0 | 1 => (0.0, 0.0),
        n => (
            rate(Duration::ZERO, done[tenth - 1]),
            rate(done[n - 1 - tenth.min(n - 1)], done[n - 1]),
        ),
    };
    Sustained {
        flows: done.len(),
        errors,
        first_tenth_per_second: first,
        last_tenth_per_second: last,
    }
}

/// Sequential keep-alive requests: `GET /api/v1/me` straight to the provider
/// with the access token (the baseline), the same through the proxy route,
/// and an authenticated request to the host that does nothing else
/// (`/v1/whoami`: the extra hop). Host and provider are separate processes.
async fn proxy(
    client: &reqwest::Client,
    host_url: &str,
    provider_url: &str,
    provider_host: &str,
    key: &str,
) {
    const CALLS: usize = 2_000;
    let start = serde_json::json!({"accountId": "bench", "userId": "proxy-user", "hostname": provider_host});
    let dance = Dance {
        http: client,
        provider: provider_url,
        key,
    };
    let connected = dance
        .login(host_url, "local-regional", &start)
        .await
        .unwrap();
    let id = connected["connection"]["id"].as_str().unwrap();
    let base = format!("{host_url}/v1/accounts/bench/users/proxy-user/connections/{id}");
    let raw = get_json(client, &format!("{base}/credentials"), key).await;
    let token = raw["accessToken"].as_str().unwrap().to_string();
    let me = format!("{provider_url}/api/v1/me");
    let body = serde_json::json!({"method": "GET", "url": me});
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..CALLS + 200 {
        for (which, request) in [
            client.get(&me).bearer_auth(&token),
            client
                .post(format!("{base}/proxy"))
                .bearer_auth(key)
                .json(&body),
            client.get(format!("{host_url}/v1/whoami")).bearer_auth(key),
        ]
        .into_iter()
        .enumerate()
        {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            if i >= 200 {
                samples[which].push(started.elapsed());
            }
        }
    }
    let [mut direct, mut proxied, mut hop] = samples;
    let (direct, proxied, hop) = (p50_us(&mut direct), p50_us(&mut proxied), p50_us(&mut hop));
    println!("proxy_direct_p50: {direct:.1} us");
    println!("proxy_proxied_p50: {proxied:.1} us");
    println!(
        "proxy_added_p50: {:.1} us (target <= 100)",
        proxied - direct
    );
    println!("proxy_authenticated_hop_p50: {hop:.1} us");
    println!(
        "proxy_work_p50: {:.1} us (added minus the hop)",
        proxied - direct - hop
    );
}
