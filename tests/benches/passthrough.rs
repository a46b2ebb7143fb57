//! `passthrough`: 10 MiB up and 10 MiB down through the pass-through proxy
//! (`ANY …/connections/{id}/proxy/{*path}`) of a `connector-host serve`
//! process, against an upstream on 127.0.0.1 in this process. Prints `name:
//! value unit` lines:
//!
//! - `passthrough_{upload,download}_10mib_throughput`: MiB/s of the best of
//!   [`ROUNDS`] transfers;
//! - `passthrough_{upload,download}_10mib_rss_growth`: the most the serve
//!   process's resident memory grew during a transfer over what it was just
//!   before (its peak, `VmHWM`, reset through `/proc/<pid>/clear_refs`
//!   before each transfer, minus `VmRSS` then). Streaming keeps it bounded
//!   well below the body size; a proxy that buffered the body would grow by
//!   at least 10 MiB.
//!
//! Bounded: [`ROUNDS`] transfers each way, each within the host's own
//! request time limit; every address is on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use connector_authoring::dev_provider::{DevProvider, DevProviderConfig};
use connector_test_support::databases::sqlite_url;
use connector_test_support::serve::{Serve, create_api_key, install_guests};
use futures_util::StreamExt as _;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const API_KEY: &str = "bench-api-key";
/// The body each way.
const SIZE: u64 = 10 << 20;
/// Chunks the bodies are produced in.
const CHUNK: usize = 64 << 10;
/// Transfers each way.
const ROUNDS: usize = 3;

/// A `/proc/<pid>/status` figure in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets the process's peak RSS to its current RSS; returns that RSS (KiB).
fn reset_peak(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    status_kib(pid, "VmRSS:")
}

/// `SIZE` bytes as a stream of `CHUNK`-byte chunks.
fn body_stream() -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let chunk = Bytes::from(vec![b'z'; CHUNK]);
    futures_util::stream::iter(0..SIZE / CHUNK as u64).map(move |_| Ok(chunk.clone()))
}

/// The upstream: `PUT /upload` counts the body it reads (into `uploaded`),
/// `GET /download` streams `SIZE` bytes. Returns its origin.
async fn upstream(uploaded: Arc<AtomicU64>) -> String {
    let app = axum::Router::new()
        .route(
            "/upload",
            axum::routing::put(move |request: Request| {
                let uploaded = uploaded.clone();
                async move {
                    let mut body = request.into_body().into_data_stream();
                    let mut total = 0u64;
                    while let Some(chunk) = body.next().await {
                        total += chunk.unwrap().len() as u64;
                    }
                    uploaded.store(total, Ordering::SeqCst);
                    total.to_string()
                }
            }),
        )
        .route(
            "/download",
            axum::routing::get(|| async {
                axum::response::Response::builder()
                    .header("content-length", SIZE)
                    .body(Body::from_stream(body_stream()))
                    .unwrap()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let provider = DevProvider::start(DevProviderConfig {
        api_keys: vec![API_KEY.into()],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let uploaded = Arc::new(AtomicU64::new(0));
    let origin = upstream(uploaded.clone()).await;

    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    install_guests(&plugins, &["local_insightly"]);
    let config = work.path().join("host.toml");
    std::fs::write(
        &config,
        "[network]\nallow_private_networks = [\"127.0.0.1/32\"]\nrequire_https = false\n",
    )
    .unwrap();
    let database_url = sqlite_url(&work.path().join("bench.db"));
    let key = create_api_key(
        Path::new(BIN),
        &database_url,
        "bench",
        "service",
        &["bench"],
        &[],
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
        .env("RUST_LOG", "warn,connector_host=info")
        .start();
    let pid = host.pid();
    let client = reqwest::Client::new();

    let login = client
        .post(format!(
            "{}/v1/connectors/local-insightly/api-key/login",
            host.base
        ))
        .bearer_auth(&key)
        .json(&json!({"accountId": "bench", "userId": "user-1",
            "fields": {"apiKey": API_KEY, "apiUrl": provider.base_url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let connection: serde_json::Value = login.json().await.unwrap();
    let proxy = format!(
        "{}/v1/accounts/bench/users/user-1/connections/{}/proxy",
        host.base,
        connection["id"].as_str().unwrap()
    );

    let mib = SIZE as f64 / (1 << 20) as f64;
    let (mut best_up, mut peak_up) = (0f64, 0u64);
    let (mut best_down, mut peak_down) = (0f64, 0u64);
    for _ in 0..ROUNDS {
        let before = reset_peak(pid);
        let started = Instant::now();
        let response = client
            .put(format!("{proxy}/upload"))
            .bearer_auth(&key)
            .header("connector-host-origin", &origin)
            .header("content-length", SIZE)
            .body(reqwest::Body::wrap_stream(body_stream()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), SIZE.to_string());
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(uploaded.load(Ordering::SeqCst), SIZE);
        best_up = best_up.max(mib / seconds);
        peak_up = peak_up.max(status_kib(pid, "VmHWM:").saturating_sub(before));

        let before = reset_peak(pid);
        let started = Instant::now();
        let response = client
            .get(format!("{proxy}/download"))
            .bearer_auth(&key)
            .header("connector-host-origin", &origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            received += chunk.unwrap().len() as u64;
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(received, SIZE);
        best_down = best_down.max(mib / seconds);
        peak_down = peak_down.max(status_kib(pid, "VmHWM:").saturating_sub(before));
    }
    let kib_to_mib = |kib: u64| kib as f64 / 1024.0;
    println!("passthrough_body_size: {mib:.0} MiB");
    println!("passthrough_upload_10mib_throughput: {best_up:.1} MiB/s");
    println!(
        "passthrough_upload_10mib_rss_growth: {:.2} MiB",
        kib_to_mib(peak_up)
    );
    println!("passthrough_download_10mib_throughput: {best_down:.1} MiB/s");
    println!(
        "passthrough_download_10mib_rss_growth: {:.2} MiB",
        kib_to_mib(peak_down)
    );
    drop(host);
}
