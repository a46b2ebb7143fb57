//! The README's offline demo, run against a `connector-host` program: start
//! `serve --dev` in a working folder, read the development service key it
//! wrote, and log in to `local-insightly` with the dev provider's API key.
//! Used for the binary the tests build and for an installed one.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `serve --dev`; killed when dropped.
pub struct DevServer {
    child: Child,
    /// The host's base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The dev provider's base URL.
    pub provider: String,
    /// The development service key from `.connector-host/dev-api-keys`.
    pub service_key: String,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program serve --dev` in `work` (a SQLite file there, an ephemeral
/// port) and waits until the host and its dev provider say where they listen.
pub fn start(program: &Path, work: &Path) -> DevServer {
    let mut child = Command::new(program)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!(
            "sqlite://{}?mode=rwc",
            work.join("dev.db").display()
        ))
        .env_remove("CONNECTOR_HOST_MASTER_KEYS")
        .env("RUST_LOG", "info")
        .current_dir(work)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let lines = announced_addresses(child.stderr.take().expect("piped stderr"));
    let mut server = DevServer {
        child,
        base: String::new(),
        provider: String::new(),
        service_key: String::new(),
    };
    while server.provider.is_empty() || server.base.is_empty() {
        let (is_provider, value) = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("serve --dev announced where it listens");
        if is_provider {
            server.provider = value;
        } else {
            server.base = format!("http://{value}");
        }
    }
    let dev_keys = std::fs::read_to_string(work.join(".connector-host/dev-api-keys"))
        .expect("--dev wrote .connector-host/dev-api-keys");
    server.service_key = dev_keys
        .lines()
        .find_map(|line| line.strip_prefix("service="))
        .expect("--dev wrote a service key")
        .to_string();
    server
}

/// Reads the program's log and sends `(is_provider, address)` for the lines
/// `dev provider listening on URL` and `listening on http://ADDR`.
fn announced_addresses(stderr: std::process::ChildStderr) -> mpsc::Receiver<(bool, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let found = if let Some(at) = line.find("dev provider listening on ") {
                Some((true, &line[at + "dev provider listening on ".len()..]))
            } else {
                line.find("listening on http://")
                    .map(|at| (false, &line[at + "listening on http://".len()..]))
            };
            if let Some((is_provider, rest)) = found {
                let value = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send((is_provider, value));
            }
        }
    });
    rx
}

impl DevServer {
    /// `GET /v1/connectors` with the service key: the connector ids served.
    pub async fn connector_ids(&self) -> Vec<String> {
        let list: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/v1/connectors", self.base))
            .bearer_auth(&self.service_key)
            .send()
            .await
            .expect("list connectors")
            .json()
            .await
            .expect("a JSON list");
        list["connectors"]
            .as_array()
            .expect("connectors")
            .iter()
            .map(|c| c["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The README's API-key login to `local-insightly` with the dev provider's
    /// key; returns the connection the host answers (status 200 asserted).
    pub async fn api_key_login(&self) -> serde_json::Value {
        let login = serde_json::json!({
            "accountId": "demo", "userId": "me",
            "fields": {"apiKey": "dev-api-key", "apiUrl": self.provider}
        });
        let response = reqwest::Client::new()
            .post(format!(
                "{}/v1/connectors/local-insightly/api-key/login",
                self.base
            ))
            .bearer_auth(&self.service_key)
            .json(&login)
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status().as_u16(), 200, "the API-key login succeeds");
        response.json().await.expect("a JSON connection")
    }
}
