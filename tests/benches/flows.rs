//! `flows`: the host's CPU time per flow through the HTTP API. The host and
//! the provider run as separate processes (`connector-host serve` and
//! `connector-host dev-provider`), so each one's CPU time is read exactly
//! from `/proc/<pid>/stat` and printed side by side.
//!
//! For SQLite, and for PostgreSQL beside it when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` names a server (a fresh database),
//! lines prefixed `sqlite_` / `postgres_`:
//!
//! - API-key login and OAuth start + callback at concurrency 1, 16 and 64;
//!   validate, logout and validate with refresh at 16 (the refresh one
//!   against a second provider whose tokens live 120 s, inside the
//!   connector's 300 s refresh margin, so every validation refreshes first);
//!   each with its rate, p50, p99, errors, host and provider CPU per flow;
//! - the host's resident memory idle (`VmRSS` after start-up) and its peak
//!   during the concurrency-64 runs (`VmHWM`, reset before them);
//! - the proxy route against a bare forwarder (`flows/proxy.rs`).
//!
//! Every run is bounded (a fixed number of flows). `BENCH_SUSTAINED_FLOWS=N`
//! adds the sustained run on SQLite: N OAuth logins, then N API-key logins,
//! at concurrency 16 (at most 30 minutes each), with the rate over the first
//! and the last tenth of each (target: last ≥ 0.9 × first). Prints `name:
//! value unit` lines.

#[path = "flows/measure.rs"]
mod measure;
#[path = "flows/proxy.rs"]
mod proxy;
#[path = "flows/sustained.rs"]
mod sustained;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use connector_server::store::Database;
use connector_test_support::databases::sqlite_url;
use connector_test_support::harness::POSTGRES_ENV;
use connector_test_support::oauth::Dance;
use connector_test_support::process::Process;
use connector_test_support::serve::{Serve, create_api_key, install_guests, regional_config};

use measure::{Pids, print, reset_peak, run, status_mib};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const API_KEY: &str = "bench-api-key";
const CLIENT_SECRET: &str = "bench-client-secret";
/// Flows of each concurrency-16 and -64 run.
const FLOWS: usize = 2_000;
/// Connections of the validate-with-refresh run (each validated in turn).
const REFRESH_CONNECTIONS: usize = 200;

/// A provider process and where it listens.
struct Provider {
    process: Process,
    url: String,
    host: String,
}

impl Provider {
    fn start(token_lifetime_secs: u64) -> Provider {
        let mut process = Process::spawn(
            Command::new(BIN)
                .args([
                    "dev-provider",
                    "--listen",
                    "127.0.0.1:0",
                    "--api-key",
                    API_KEY,
                ])
                .arg(format!(
                    "--access-token-lifetime-secs={token_lifetime_secs}"
                ))
                .env("DEV_PROVIDER_CLIENT_SECRET", CLIENT_SECRET),
        );
        let url = process.announced("dev provider listening on ");
        let host = url.trim_start_matches("http://").to_string();
        Provider { process, url, host }
    }
}

/// What every run against one host shares.
#[derive(Clone)]
struct Bench {
    client: reqwest::Client,
    host_url: String,
    key: String,
    provider_url: String,
    provider_host: String,
}

impl Bench {
    fn dance(&self) -> Dance<'_> {
        Dance {
            http: &self.client,
            provider: &self.provider_url,
            key: &self.key,
        }
    }

    async fn api_key_login(&self, user: String) -> bool {
        let body = serde_json::json!({
            "accountId": "bench", "userId": user,
            "fields": {"apiKey": API_KEY, "apiUrl": self.provider_url}
        });
        let url = format!(
            "{}/v1/connectors/local-insightly/api-key/login",
            self.host_url
        );
        let sent = self.client.post(url).bearer_auth(&self.key).json(&body);
        matches!(sent.send().await, Ok(r) if r.status().is_success())
    }

    /// OAuth start + callback at `provider_host`; the new connection's id.
    async fn oauth_login(&self, user: &str, provider_host: &str) -> Option<String> {
        let start =
            serde_json::json!({"accountId": "bench", "userId": user, "hostname": provider_host});
        let connected = self
            .dance()
            .login(&self.host_url, "local-regional", &start)
            .await
            .ok()?;
        Some(connected["connection"]["id"].as_str()?.to_string())
    }

    /// `POST …/connections/{id}/{action}` (validate, logout).
    async fn connection_action(&self, user: &str, id: &str, action: &str) -> bool {
        let url = format!(
            "{}/v1/accounts/bench/users/{user}/connections/{id}/{action}",
            self.host_url
        );
        let sent = self.client.post(url).bearer_auth(&self.key);
        matches!(sent.send().await, Ok(r) if r.status().is_success())
    }

    /// The host's count of successful token refreshes (`/metrics`).
    async fn refreshes(&self) -> f64 {
        let url = format!("{}/metrics", self.host_url);
        let text = match self.client.get(url).bearer_auth(&self.key).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| {
                l.starts_with("connector_host_token_refreshes_total{") && l.contains("\"ok\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let provider = Provider::start(3600);
    // Tokens of 120 s are within the connector's 300 s refresh margin from
    // the start: every validation against this provider refreshes first.
    let short_provider = Provider::start(120);
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
            regional_config(&provider.host, "BENCH_CLIENT_SECRET")
        ),
    )
    .unwrap();
    let mut backends = vec![("sqlite", sqlite_url(&work.path().join("bench.db")))];
    if let Ok(server) = std::env::var(POSTGRES_ENV) {
        let url = Database::fresh_postgres_for_tests(&server)
            .await
            .expect("PostgreSQL reachable at CONNECTOR_HOST_TEST_POSTGRES_URL");
        backends.push(("postgres", url));
    }
    for (name, database_url) in backends {
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
        let bench = Bench {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(128)
                .build()
                .unwrap(),
            host_url: host.base.clone(),
            key: service_key,
            provider_url: provider.url.clone(),
            provider_host: provider.host.clone(),
        };
        let pids = Pids {
            host: host.pid(),
            provider: provider.process.id(),
        };
        println!(
            "{name}_host_rss_idle: {:.1} MiB (target <= 30)",
            status_mib(pids.host, "VmRSS")
        );
        flows(name, &bench, pids, &short_provider).await;
        proxy::proxy(
            name,
            &proxy::Target {
                client: &bench.client,
                host_url: &bench.host_url,
                provider_url: &bench.provider_url,
                provider_host: &bench.provider_host,
                key: &bench.key,
                pids,
            },
        )
        .await;
        println!(
            "{name}_host_rss_after_runs: {:.1} MiB",
            status_mib(pids.host, "VmRSS")
        );
        if name == "sqlite"
            && let Some(total) = std::env::var("BENCH_SUSTAINED_FLOWS")
                .ok()
                .and_then(|v| v.parse().ok())
        {
            sustained_runs(&bench, total).await;
        }
        drop(host);
    }
}

/// The five flows; `{prefix}_…` lines.
async fn flows(prefix: &str, bench: &Bench, pids: Pids, short_provider: &Provider) {
    let mut peak_mib: f64 = 0.0;
    for concurrency in [1, 16, 64] {
        let total = if concurrency == 1 { 300 } else { FLOWS };
        if concurrency == 64 {
            reset_peak(pids.host);
        }
        let b = bench.clone();
        let result = run(total, concurrency, pids, move |i| {
            let b = b.clone();
            async move { b.api_key_login(format!("k{concurrency}-{i}")).await }
        })
        .await;
        if concurrency == 64 {
            peak_mib = peak_mib.max(status_mib(pids.host, "VmHWM"));
        }
        print(
            &format!("{prefix}_api_key_login"),
            concurrency,
            &result,
            (concurrency == 16).then_some(0.25),
        );
    }

    // The connections of the concurrency-16 OAuth run, validated and then
    // logged out below.
    let created = Arc::new(Mutex::new(Vec::new()));
    for concurrency in [1, 16, 64] {
        let total = if concurrency == 1 { 300 } else { FLOWS };
        if concurrency == 64 {
            reset_peak(pids.host);
        }
        let (b, created) = (bench.clone(), created.clone());
        let result = run(total, concurrency, pids, move |i| {
            let (b, created) = (b.clone(), created.clone());
            async move {
                let user = format!("o{concurrency}-{i}");
                let Some(id) = b.oauth_login(&user, &b.provider_host).await else {
                    return false;
                };
                if concurrency == 16 {
                    created.lock().unwrap().push((user, id));
                }
                true
            }
        })
        .await;
        if concurrency == 64 {
            peak_mib = peak_mib.max(status_mib(pids.host, "VmHWM"));
        }
        print(
            &format!("{prefix}_oauth_start_callback"),
            concurrency,
            &result,
            (concurrency == 16).then_some(0.5),
        );
    }
    println!("{prefix}_host_rss_peak_c64: {peak_mib:.1} MiB (target <= 100)");

    let connections = Arc::new(created.lock().unwrap().clone());
    for (action, target) in [("validate", 0.15), ("logout", 0.25)] {
        let (b, c) = (bench.clone(), connections.clone());
        let result = run(connections.len(), 16, pids, move |i| {
            let (b, c) = (b.clone(), c.clone());
            async move {
                let (user, id) = &c[i];
                b.connection_action(user, id, action).await
            }
        })
        .await;
        print(&format!("{prefix}_{action}"), 16, &result, Some(target));
    }

    validate_with_refresh(prefix, bench, pids, short_provider).await;
}

/// Validations that each refresh the token first: [`REFRESH_CONNECTIONS`]
/// connections at `short_provider`, validated in turn [`FLOWS`] times.
async fn validate_with_refresh(prefix: &str, bench: &Bench, pids: Pids, short_provider: &Provider) {
    // The user approves at the short-lived provider, which issued the code.
    let at_short = Bench {
        provider_url: short_provider.url.clone(),
        provider_host: short_provider.host.clone(),
        ..bench.clone()
    };
    let mut connections = Vec::new();
    for i in 0..REFRESH_CONNECTIONS {
        let user = format!("r-{i}");
        let start = serde_json::json!({"accountId": "bench", "userId": user, "hostname": short_provider.host});
        match at_short
            .dance()
            .login(&at_short.host_url, "local-regional", &start)
            .await
        {
            Ok(connected) => {
                let id = connected["connection"]["id"].as_str().unwrap_or_default();
                connections.push((user, id.to_string()));
            }
            Err(error) => {
                // Printed, not hidden: the other figures are still measured.
                println!(
                    "{prefix}_validate_with_refresh_c16: not measured (a login at the short-lived provider failed: {error})"
                );
                return;
            }
        }
    }
    let connections = Arc::new(connections);
    let refreshes_before = bench.refreshes().await;
    let (b, c) = (bench.clone(), connections.clone());
    let pids = Pids {
        provider: short_provider.process.id(),
        ..pids
    };
    let result = run(FLOWS, 16, pids, move |i| {
        let (b, c) = (b.clone(), c.clone());
        async move {
            let (user, id) = &c[i % c.len()];
            b.connection_action(user, id, "validate").await
        }
    })
    .await;
    print(
        &format!("{prefix}_validate_with_refresh"),
        16,
        &result,
        Some(0.4),
    );
    println!(
        "{prefix}_validate_with_refresh_c16_refreshes: {:.0} count (of {FLOWS} validations)",
        bench.refreshes().await - refreshes_before
    );
}

/// The sustained run (`BENCH_SUSTAINED_FLOWS`).
async fn sustained_runs(bench: &Bench, total: usize) {
    let b = bench.clone();
    let oauth = sustained::sustained(total, move |i| {
        let b = b.clone();
        async move {
            b.oauth_login(&format!("so-{i}"), &b.provider_host)
                .await
                .is_some()
        }
    })
    .await;
    oauth.print("sustained_oauth_login");
    let b = bench.clone();
    let api_key = sustained::sustained(total, move |i| {
        let b = b.clone();
        async move { b.api_key_login(format!("sk-{i}")).await }
    })
    .await;
    api_key.print("sustained_api_key_login");
}
