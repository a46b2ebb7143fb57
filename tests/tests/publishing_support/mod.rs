//! What the publishing tests share: hosts started with `serve` on one
//! database (a fresh PostgreSQL database when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set, as in CI, else one SQLite
//! file), an operator key, the `publish`/`components`/`sign` commands, and
//! reading what a replica serves through its API.

#![allow(dead_code)] // Each test file uses part of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use connector_test_support::harness::database_url;
use connector_test_support::serve::{Serve, Server, create_api_key};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// The id of the `versioned_v1` / `versioned_v2` guests.
pub const VERSIONED: &str = "test-versioned";

/// How long a change may take to reach every replica before a test fails
/// (generous for a loaded machine; replicas normally follow within a second).
pub const PROPAGATION: Duration = Duration::from_secs(20);

/// A work folder, one database, master keys and an operator key: what the
/// replicas of a test share.
pub struct Site {
    pub work: tempfile::TempDir,
    pub database_url: String,
    pub keys: String,
    pub operator: String,
    pub http: reqwest::Client,
}

impl Site {
    /// A site whose hosts read `config` (TOML).
    pub async fn new(config: &str) -> Site {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("plugins")).unwrap();
        std::fs::write(work.path().join("host.toml"), config).unwrap();
        let database_url = database_url(work.path()).await;
        let operator = create_api_key(
            Path::new(BIN),
            &database_url,
            "release-bot",
            "operator",
            &[],
            &[],
        )
        .secret;
        Site {
            keys: connector_server::store::crypto::Keyring::generate_entry("publishing"),
            work,
            database_url,
            operator,
            http: reqwest::Client::new(),
        }
    }

    /// The shared plugins folder.
    pub fn plugins(&self) -> PathBuf {
        self.work.path().join("plugins")
    }

    /// A `serve` replica with its own compile cache.
    pub fn serve(&self, name: &str) -> Server {
        Serve::new(BIN)
            .config(self.work.path().join("host.toml"))
            .plugins_dir(self.plugins())
            .database_url(&self.database_url)
            .cache_dir(self.work.path().join(format!("cache-{name}")))
            .master_keys(&self.keys)
            .start()
    }

    /// Runs `connector-host ARGS` against `host` with the operator key:
    /// (success, stdout, stderr).
    pub fn cli(&self, host: &Server, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(BIN)
            .args(args)
            .env("CONNECTOR_HOST_URL", &host.base)
            .env("CONNECTOR_HOST_API_KEY", &self.operator)
            .output()
            .expect("run connector-host");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `publish FILE` through `host`, asserting it succeeds; its stdout.
    pub fn publish_ok(&self, host: &Server, file: &Path) -> String {
        let (ok, stdout, stderr) = self.cli(host, &["publish", file.to_str().unwrap()]);
        assert!(ok, "publish {} failed: {stderr}", file.display());
        stdout
    }

    /// `GET path` on `host` with the operator key: status and JSON.
    pub async fn get(&self, host: &Server, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", host.base))
            .bearer_auth(&self.operator)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The version and source of `id` that `host` serves, read through its
    /// API (`GET /v1/connectors`).
    pub async fn served(&self, host: &Server, id: &str) -> Option<(String, String)> {
        let (status, list) = self.get(host, "/v1/connectors").await;
        assert_eq!(status, 200, "{list}");
        list["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| {
                (
                    c["version"].as_str().unwrap().to_string(),
                    c["source"].as_str().unwrap().to_string(),
                )
            })
    }

    /// Waits until every host serves `version` of `id` from `source`;
    /// panics naming the replicas that do not within [`PROPAGATION`].
    pub async fn await_everywhere(&self, hosts: &[&Server], id: &str, version: &str, source: &str) {
        let deadline = Instant::now() + PROPAGATION;
        let wanted = Some((version.to_string(), source.to_string()));
        loop {
            let mut lagging = Vec::new();
            for host in hosts {
                let served = self.served(host, id).await;
                if served != wanted {
                    lagging.push(format!("{} serves {served:?}", host.base));
                }
            }
            if lagging.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every replica serves {id} {version} ({source}): {}",
                lagging.join("; ")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The published versions of `id`, newest first: (version, live, pinned,
    /// retired).
    pub async fn versions(&self, host: &Server, id: &str) -> Vec<(String, bool, bool, bool)> {
        let (status, list) = self.get(host, &format!("/v1/components/{id}")).await;
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["version"].as_str().unwrap().to_string(),
                    v["live"].as_bool().unwrap(),
                    v["pinned"].as_bool().unwrap(),
                    !v["retiredAtMs"].is_null(),
                )
            })
            .collect()
    }
}

/// A copy of guest `name` in `dir` (so a signature can sit next to it).
pub fn guest_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(connector_test_support::guest(name), &path).unwrap();
    path
}
