//! A webhook receiver on 127.0.0.1 for the event tests: it checks every
//! signature and keeps the events it received.

use std::sync::{Arc, Mutex};

use connector_server::events::{
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, WebhookConfig,
    WebhookSecretSource, verify,
};
use serde_json::Value;

use crate::harness::{Host, Options};

/// The secret the receiver verifies signatures with.
const SECRET: &str = "whsec-lifecycle-test";

/// A running receiver; give [`Receiver::config`] to the host.
pub struct Receiver {
    url: String,
    events: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
    secret_file: std::path::PathBuf,
}

/// Starts a receiver whose one route answers `204` to correctly signed
/// events (and fails the test on any other).
pub async fn receiver() -> Receiver {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let header = |name: &str| headers[name].to_str().unwrap();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    verify(
                        SECRET.as_bytes(),
                        header(WEBHOOK_ID_HEADER),
                        header(WEBHOOK_TIMESTAMP_HEADER),
                        header(WEBHOOK_SIGNATURE_HEADER),
                        &body,
                        now,
                    )
                    .unwrap();
                    seen.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url,
        events,
        _dir: dir,
        secret_file,
    }
}

/// A receiver, and a host (default options otherwise) that sends it its
/// connection events.
pub async fn host_with_receiver() -> (Host, Receiver) {
    let hooks = receiver().await;
    let host = Host::with(Options {
        webhooks: Some(hooks.config()),
        ..Options::default()
    })
    .await;
    (host, hooks)
}

impl Receiver {
    /// The host's webhook settings for this receiver.
    pub fn config(&self) -> WebhookConfig {
        WebhookConfig::new(
            self.url.clone(),
            WebhookSecretSource {
                env: None,
                file: Some(self.secret_file.clone()),
            },
        )
    }

    /// Delivers what is due and returns the type of every event received so far.
    pub async fn received(&self, host: &Host) -> Vec<String> {
        self.events(host)
            .await
            .iter()
            .map(|event| event["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// Delivers what is due and returns every event received so far.
    pub async fn events(&self, host: &Host) -> Vec<Value> {
        host.events.deliver_due().await.unwrap();
        self.events.lock().unwrap().clone()
    }
}
