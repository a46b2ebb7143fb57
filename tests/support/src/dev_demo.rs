//! The README's offline demo, run against a `connector-host` program: start
//! `serve --dev` in a working folder, read the development service key it
//! wrote, and log in to `local-insightly` with the dev provider's API key.
//! Used for the binary the tests build and for an installed one.

use std::path::Path;

use crate::databases::sqlite_url;
use crate::serve::{DEV_PROVIDER_LISTENING, Serve, Server};

/// A running `serve --dev`; killed when dropped.
pub struct DevServer {
    /// The `serve --dev` process.
    pub server: Server,
    /// The host's base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The dev provider's base URL.
    pub provider: String,
    /// The development service key from `.connector-host/dev-api-keys`.
    pub service_key: String,
}

/// Starts `program serve --dev` in `work` (a SQLite file there, an ephemeral
/// port) and waits until the host and its dev provider say where they listen.
pub fn start(program: &Path, work: &Path) -> DevServer {
    start_with(program, work, |serve| serve)
}

/// [`start`], with `more` adding to the command (an environment variable, a
/// flag) before it starts.
pub fn start_with(program: &Path, work: &Path, more: impl FnOnce(Serve) -> Serve) -> DevServer {
    let serve = Serve::new(program)
        .arg("--dev")
        .database_url(&sqlite_url(&work.join("dev.db")))
        .env_remove("CONNECTOR_HOST_MASTER_KEYS")
        .current_dir(work);
    let mut server = more(serve).start();
    let provider = server.process.announced(DEV_PROVIDER_LISTENING);
    let dev_keys = std::fs::read_to_string(work.join(".connector-host/dev-api-keys"))
        .expect("--dev wrote .connector-host/dev-api-keys");
    let service_key = dev_keys
        .lines()
        .find_map(|line| line.strip_prefix("service="))
        .expect("--dev wrote a service key")
        .to_string();
    DevServer {
        base: server.base.clone(),
        server,
        provider,
        service_key,
    }
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
    /// key, ready to send (a test may add headers, e.g. `x-request-id`).
    pub fn api_key_login_request(&self) -> reqwest::RequestBuilder {
        let login = serde_json::json!({
            "accountId": "demo", "userId": "me",
            "fields": {"apiKey": "dev-api-key", "apiUrl": self.provider}
        });
        reqwest::Client::new()
            .post(format!(
                "{}/v1/connectors/local-insightly/api-key/login",
                self.base
            ))
            .bearer_auth(&self.service_key)
            .json(&login)
    }

    /// [`DevServer::api_key_login_request`], sent; returns the connection the
    /// host answers (status 200 asserted).
    pub async fn api_key_login(&self) -> serde_json::Value {
        let response = self
            .api_key_login_request()
            .send()
            .await
            .expect("login request");
        assert_eq!(
            response.status().as_u16(),
            200,
            "the API-key login succeeds"
        );
        response.json().await.expect("a JSON connection")
    }
}
