//! Webhook signature and retry: connection events signed in the Standard
//! Webhooks format, delivered to a real HTTP receiver on 127.0.0.1, from the
//! outbox on a real SQLite file and, when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set (always in CI), on PostgreSQL.
//!
//! On PostgreSQL the outbox is shared with other tests and earlier runs: each
//! test has its own receiver URL (delivery only claims rows recorded for its own
//! URL) and identifies its events by id.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connector_server::config::HostConfig;
use connector_server::events::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, EventKind, Events, VerifyError, WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, WebhookConfig, WebhookSecretSource, verify,
};
use connector_server::store::crypto::Keyring;
use connector_server::store::{
    Connection, ConnectionSecrets, ConnectionStore, Database, NewConnection,
};
use connector_test_support::databases::{databases, unique};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use tokio::sync::mpsc;

/// The configured secret, in the Standard Webhooks form `whsec_<base64 of KEY>`.
const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The HMAC key receivers verify with: the decoded base64 of SECRET.
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const API_KEY: &str = "key-very-secret-api-key";
const ACCESS_TOKEN: &str = "at-very-secret-access-token";
const REFRESH_TOKEN: &str = "rt-very-secret-refresh-token";

/// Every test body runs under this bound.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test did not finish within 120 s");
}

/// One request the receiver got.
#[derive(Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name}"))
            .to_str()
            .unwrap()
    }
    fn event_id(&self) -> String {
        self.header(EVENT_ID_HEADER).to_string()
    }
    fn timestamp(&self) -> i64 {
        self.header(WEBHOOK_TIMESTAMP_HEADER).parse().unwrap()
    }
    /// [`verify`] with this request's headers and body, the receiver's clock at `now`.
    fn verify(&self, key: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(
            key,
            self.header(WEBHOOK_ID_HEADER),
            self.header(WEBHOOK_TIMESTAMP_HEADER),
            self.header(WEBHOOK_SIGNATURE_HEADER),
            &self.body,
            now,
        )
    }
}

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, computed here
/// from the Standard Webhooks definition rather than by the host's code.
fn expected_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answers 500 to the first `fail_first` requests of each event id
    /// (`usize::MAX`: always).
    fail_first: usize,
    /// When set, answers 401 to a request whose signature does not verify
    /// with this key (as a real receiver does).
    verify_with: Option<Vec<u8>>,
    seen: mpsc::UnboundedSender<String>,
}

/// A webhook receiver on 127.0.0.1 with its own unique path.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    seen: mpsc::UnboundedReceiver<String>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        Self::with(fail_first, None).await
    }

    /// A receiver that knows the key `key` only and refuses what it cannot verify.
    async fn verifying(key: &[u8]) -> Self {
        Self::with(0, Some(key.to_vec())).await
    }

    async fn with(fail_first: usize, verify_with: Option<Vec<u8>>) -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            hits: Mutex::new(Vec::new()),
            fail_first,
            verify_with,
            seen: tx,
        });
        async fn hook(
            State(state): State<Arc<ReceiverState>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let id = headers
                .get(EVENT_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let hit = Hit { headers, body };
            let verified = match &state.verify_with {
                Some(key) => hit.verify(key, now()).is_ok(),
                None => true,
            };
            let count = {
                let mut hits = state.hits.lock().unwrap();
                hits.push(hit);
                hits.iter().filter(|h| h.event_id() == id).count()
            };
            let _ = state.seen.send(id);
            if !verified {
                StatusCode::UNAUTHORIZED
            } else if count <= state.fail_first {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
        let path = format!("/hooks/{}", unique("r"));
        let router = Router::new()
            .route(&path, post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url: format!("http://{address}{path}"),
            state,
            seen,
            _server: server,
        }
    }

    fn hits_of(&self, id: &str) -> Vec<Hit> {
        let hits = self.state.hits.lock().unwrap();
        hits.iter()
            .filter(|h| h.event_id() == id)
            .cloned()
            .collect()
    }
}

fn secret_file(dir: &tempfile::TempDir, value: &str) -> WebhookSecretSource {
    let path = dir.path().join(unique("secret"));
    std::fs::write(&path, format!("{value}\n")).unwrap();
    WebhookSecretSource {
        env: None,
        file: Some(path),
    }
}

fn config(url: &str, dir: &tempfile::TempDir) -> WebhookConfig {
    // Backoff far longer than a test: a retry happens only after make_due_for_tests.
    WebhookConfig {
        max_attempts: 5,
        backoff_base_secs: 3600,
        backoff_max_secs: 7200,
        ..WebhookConfig::new(url, secret_file(dir, SECRET))
    }
}

/// The master keys every replica of a test shares (a fixed key, so two
/// `Events` of one test verify each other's outbox rows).
fn keys() -> Arc<Keyring> {
    Arc::new(Keyring::from_spec("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap())
}

/// A real connection with an API key and OAuth tokens stored (encrypted).
async fn connection(database: &Database) -> Connection {
    let store = ConnectionStore::new(database.clone(), keys());
    store
        .save(NewConnection {
            account_id: unique("acct"),
            user_id: "u1".into(),
            connector_id: "regional-crm".into(),
            auth_type: "oauth".into(),
            hostname: Some("eu.regional-crm.example".into()),
            platform_user_id: Some("12345".into()),
            user_name: Some("Ada Lovelace".into()),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![("region".into(), "eu".into())],
            expires_at: Some(1_900_000_000),
            secrets: ConnectionSecrets {
                access_token: Some(SecretString::from(ACCESS_TOKEN)),
                refresh_token: Some(SecretString::from(REFRESH_TOKEN)),
                api_key: Some(SecretString::from(API_KEY)),
            },
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn webhook_signature_headers_and_payload() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let receiver = Receiver::start(0).await;
            let dir = tempfile::tempdir().unwrap();
            let events = Events::new(
                backend.database.clone(),
                keys(),
                Some(config(&receiver.url, &dir)),
            )
            .unwrap();
            let conn = connection(&backend.database).await;
            let mut ids = Vec::new();
            for kind in EventKind::ALL {
                let detail = (kind == EventKind::RefreshFailed).then_some("provider answered 503");
                ids.push(events.emit(kind, &conn, detail).await.unwrap().unwrap());
            }
            assert_eq!(events.deliver_due().await.unwrap(), 5, "{name}");

            for (kind, id) in EventKind::ALL.into_iter().zip(&ids) {
                let hits = receiver.hits_of(id);
                assert_eq!(hits.len(), 1, "{name}: {kind} delivered once");
                let hit = &hits[0];
                assert_eq!(hit.header("content-type"), "application/json");
                assert_eq!(hit.header(EVENT_TYPE_HEADER), kind.as_str());

                // The Standard Webhooks headers: the event id, the attempt's
                // time, one v1 signature made with the key of the whsec_ secret
                // over "<id>.<timestamp>.<raw body>". No other signature header.
                assert_eq!(hit.header(WEBHOOK_ID_HEADER), id.as_str(), "{name}");
                assert_eq!(hit.header(EVENT_ID_HEADER), id.as_str(), "{name}");
                let timestamp = hit.header(WEBHOOK_TIMESTAMP_HEADER);
                assert!(timestamp.bytes().all(|b| b.is_ascii_digit()), "{timestamp}");
                let t = hit.timestamp();
                assert!((now() - t).abs() <= 60, "{name}: {t} is the attempt's time");
                assert_eq!(
                    hit.header(WEBHOOK_SIGNATURE_HEADER),
                    expected_signature(KEY, id, timestamp, &hit.body),
                    "{name}"
                );
                assert!(hit.headers.get("connector-host-signature").is_none());

                // The receiver-side check: the configured key only, the exact
                // id, timestamp and body, within 5 minutes.
                assert_eq!(hit.verify(KEY, now()), Ok(()), "{name}");
                assert_eq!(hit.verify(KEY, t + 300), Ok(()));
                assert_eq!(hit.verify(KEY, t - 300), Ok(()));
                assert_eq!(
                    hit.verify(KEY, t + 301),
                    Err(VerifyError::TimestampOutOfTolerance)
                );
                assert_eq!(
                    hit.verify(SECRET.as_bytes(), t),
                    Err(VerifyError::NoMatchingSignature),
                    "{name}: the key is the decoded base64, not the text of the secret"
                );
                assert_eq!(
                    hit.verify(b"0123456789abcdef0123456789abcdeF", t),
                    Err(VerifyError::NoMatchingSignature)
                );
                let signature = hit.header(WEBHOOK_SIGNATURE_HEADER);
                for i in [0, hit.body.len() / 2, hit.body.len() - 1] {
                    let mut altered = hit.body.to_vec();
                    altered[i] ^= 0x01;
                    assert_eq!(
                        verify(KEY, id, timestamp, signature, &altered, t),
                        Err(VerifyError::NoMatchingSignature),
                        "{name}: body altered at byte {i}"
                    );
                }
                let other_id = ids.iter().find(|other| *other != id).unwrap();
                assert_eq!(
                    verify(KEY, other_id, timestamp, signature, &hit.body, t),
                    Err(VerifyError::NoMatchingSignature),
                    "{name}: the id is signed"
                );
                let moved = (t + 1).to_string();
                assert_eq!(
                    verify(KEY, id, &moved, signature, &hit.body, t),
                    Err(VerifyError::NoMatchingSignature),
                    "{name}: the timestamp is signed"
                );

                // The documented payload, and nothing secret.
                let text = std::str::from_utf8(&hit.body).unwrap();
                for secret in [
                    API_KEY,
                    ACCESS_TOKEN,
                    REFRESH_TOKEN,
                    SECRET,
                    "0123456789abcdef",
                ] {
                    assert!(!text.contains(secret), "{name}: no secret in the payload");
                }
                let payload: serde_json::Value = serde_json::from_str(text).unwrap();
                let mut keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                assert_eq!(keys, ["connection", "createdAt", "detail", "id", "type"]);
                assert_eq!(payload["id"], id.as_str());
                assert_eq!(payload["type"], kind.as_str());
                assert!(payload["createdAt"].as_i64().unwrap() > 1_600_000_000);
                assert_eq!(
                    payload["connection"],
                    serde_json::json!({
                        "id": conn.id,
                        "accountId": conn.account_id,
                        "userId": "u1",
                        "connectorId": "regional-crm",
                        "status": "active",
                        "expiresAt": 1_900_000_000,
                    }),
                    "{name}"
                );
                if kind == EventKind::RefreshFailed {
                    assert_eq!(payload["detail"], "provider answered 503");
                } else {
                    assert!(payload["detail"].is_null());
                }

                let status = events.status(id).await.unwrap().unwrap();
                assert_eq!(status.attempts, 1, "{name}");
                assert!(status.delivered_at.is_some() && status.failed_at.is_none());
                assert_eq!(status.last_status, Some(204));
            }
            // Delivered events are not sent again.
            events.make_due_for_tests().await;
            assert_eq!(events.deliver_due().await.unwrap(), 0, "{name}");
        }
    })
    .await;
}

/// A secret being rotated out, in the raw form (any value without the `whsec_`
/// prefix: its bytes are the key), as hosts were configured before.
const OLD_SECRET: &str = "old-raw-secret-0123456789";

#[tokio::test]
async fn during_a_rotation_receivers_knowing_either_secret_verify() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let dir = tempfile::tempdir().unwrap();
            // Receivers answer 401 to what they cannot verify.
            let knows_old = Receiver::verifying(OLD_SECRET.as_bytes()).await;
            let knows_new = Receiver::verifying(KEY).await;
            let conn = connection(&backend.database).await;
            let rotating = |url: &str| WebhookConfig {
                previous_secret: Some(secret_file(&dir, OLD_SECRET)),
                ..config(url, &dir)
            };
            for (receiver, knows) in [(&knows_old, "old"), (&knows_new, "new")] {
                let events = Events::new(
                    backend.database.clone(),
                    keys(),
                    Some(rotating(&receiver.url)),
                )
                .unwrap();
                let id = events
                    .emit(EventKind::ConnectionCreated, &conn, None)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
                let status = events.status(&id).await.unwrap().unwrap();
                assert_eq!(
                    status.last_status,
                    Some(204),
                    "{name}: the receiver knowing the {knows} secret verified"
                );
                assert!(status.delivered_at.is_some(), "{name}");
                // Two signatures, the current secret's first.
                let hit = &receiver.hits_of(&id)[0];
                let timestamp = hit.header(WEBHOOK_TIMESTAMP_HEADER);
                assert_eq!(
                    hit.header(WEBHOOK_SIGNATURE_HEADER),
                    format!(
                        "{} {}",
                        expected_signature(KEY, &id, timestamp, &hit.body),
                        expected_signature(OLD_SECRET.as_bytes(), &id, timestamp, &hit.body)
                    ),
                    "{name}"
                );
                assert_eq!(hit.verify(KEY, now()), Ok(()));
                assert_eq!(hit.verify(OLD_SECRET.as_bytes(), now()), Ok(()));
            }

            // Once previous_secret is removed, only the new secret verifies.
            for (receiver, expected) in [(&knows_old, 401), (&knows_new, 204)] {
                let events = Events::new(
                    backend.database.clone(),
                    keys(),
                    Some(config(&receiver.url, &dir)),
                )
                .unwrap();
                let id = events
                    .emit(EventKind::Revoked, &conn, None)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
                let status = events.status(&id).await.unwrap().unwrap();
                assert_eq!(status.last_status, Some(expected), "{name}");
                let hit = &receiver.hits_of(&id)[0];
                assert!(!hit.header(WEBHOOK_SIGNATURE_HEADER).contains(' '));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn webhook_retry_until_delivered_at_least_once() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let receiver = Receiver::start(2).await;
            let dir = tempfile::tempdir().unwrap();
            let events = Events::new(
                backend.database.clone(),
                keys(),
                Some(config(&receiver.url, &dir)),
            )
            .unwrap();
            let conn = connection(&backend.database).await;
            let id = events
                .emit(EventKind::NeedsReauth, &conn, Some("invalid_grant"))
                .await
                .unwrap()
                .unwrap();

            assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
            let status = events.status(&id).await.unwrap().unwrap();
            assert_eq!(status.attempts, 1);
            assert_eq!(status.last_status, Some(500));
            assert!(status.last_error.as_deref().unwrap().contains("500"));
            assert!(status.delivered_at.is_none() && status.failed_at.is_none());
            // Backed off: not due again before make_due_for_tests (≥ 30 min).
            assert!(status.next_attempt_at > payload_created_at(&receiver, &id));
            assert_eq!(
                events.deliver_due().await.unwrap(),
                0,
                "{name}: backing off"
            );

            events.make_due_for_tests().await;
            assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
            assert_eq!(events.status(&id).await.unwrap().unwrap().attempts, 2);
            events.make_due_for_tests().await;
            assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");

            let status = events.status(&id).await.unwrap().unwrap();
            assert_eq!(status.attempts, 3, "{name}");
            assert!(status.delivered_at.is_some() && status.failed_at.is_none());
            assert_eq!(status.last_status, Some(204));
            assert_eq!(status.last_error, None);

            // The same event (same id, same body), signed anew each attempt.
            let hits = receiver.hits_of(&id);
            assert_eq!(hits.len(), 3, "{name}: at least once, here three times");
            for hit in &hits {
                assert_eq!(hit.body, hits[0].body);
                assert_eq!(hit.header(WEBHOOK_ID_HEADER), id);
                assert_eq!(hit.verify(KEY, hit.timestamp()), Ok(()), "{name}");
            }
            events.make_due_for_tests().await;
            assert_eq!(
                events.deliver_due().await.unwrap(),
                0,
                "{name}: delivered once"
            );
            assert_eq!(receiver.hits_of(&id).len(), 3);
        }
    })
    .await;
}

fn payload_created_at(receiver: &Receiver, id: &str) -> i64 {
    let hit = &receiver.hits_of(id)[0];
    let payload: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    payload["createdAt"].as_i64().unwrap()
}

#[tokio::test]
async fn two_replicas_never_claim_the_same_attempt() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            // Each event fails once, then succeeds: two attempts each.
            let receiver = Receiver::start(1).await;
            let dir = tempfile::tempdir().unwrap();
            let settings = config(&receiver.url, &dir);
            let replica_a =
                Events::new(backend.database.clone(), keys(), Some(settings.clone())).unwrap();
            // The second replica has its own connection pool.
            let other_pool = Database::connect(&backend.url).await.unwrap();
            let replica_b = Events::new(other_pool, keys(), Some(settings)).unwrap();

            let conn = connection(&backend.database).await;
            let mut ids = Vec::new();
            for i in 0..24 {
                let events = if i % 2 == 0 { &replica_a } else { &replica_b };
                let id = events
                    .emit(EventKind::Recovered, &conn, None)
                    .await
                    .unwrap();
                ids.push(id.unwrap());
            }

            let mut passes = 0;
            let mut attempted = 0;
            loop {
                let (a, b) = tokio::join!(replica_a.deliver_due(), replica_b.deliver_due());
                attempted += a.unwrap() + b.unwrap();
                let mut done = 0;
                for id in &ids {
                    if replica_a
                        .status(id)
                        .await
                        .unwrap()
                        .unwrap()
                        .delivered_at
                        .is_some()
                    {
                        done += 1;
                    }
                }
                if done == ids.len() {
                    break;
                }
                passes += 1;
                assert!(passes < 20, "{name}: not delivered after {passes} passes");
                replica_a.make_due_for_tests().await;
            }

            assert_eq!(attempted, 2 * ids.len(), "{name}: two attempts per event");
            for id in &ids {
                assert_eq!(
                    receiver.hits_of(id).len(),
                    2,
                    "{name}: {id} sent once per attempt"
                );
                assert_eq!(replica_b.status(id).await.unwrap().unwrap().attempts, 2);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn exhausted_attempts_mark_the_event_failed() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let receiver = Receiver::start(usize::MAX).await;
            let dir = tempfile::tempdir().unwrap();
            let settings = WebhookConfig {
                max_attempts: 2,
                ..config(&receiver.url, &dir)
            };
            let events = Events::new(backend.database.clone(), keys(), Some(settings)).unwrap();
            let conn = connection(&backend.database).await;
            let id = events
                .emit(EventKind::Revoked, &conn, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(events.deliver_due().await.unwrap(), 1);
            events.make_due_for_tests().await;
            assert_eq!(events.deliver_due().await.unwrap(), 1);

            let status = events.status(&id).await.unwrap().unwrap();
            assert_eq!(status.attempts, 2, "{name}");
            assert!(status.failed_at.is_some(), "{name}: marked failed");
            assert!(status.delivered_at.is_none());
            assert_eq!(status.last_status, Some(500));

            // Not retried any more; the row is kept.
            events.make_due_for_tests().await;
            assert_eq!(events.deliver_due().await.unwrap(), 0, "{name}");
            assert_eq!(receiver.hits_of(&id).len(), 2);
            assert_eq!(events.status(&id).await.unwrap().unwrap().attempts, 2);
        }
    })
    .await;
}

#[tokio::test]
async fn unreachable_receiver_is_retried_and_the_error_names_no_secret() {
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            // A port nothing listens on (bound, then closed).
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!(
                "http://{}/hooks/{}?token=receiver-url-token",
                listener.local_addr().unwrap(),
                unique("gone")
            );
            drop(listener);
            let dir = tempfile::tempdir().unwrap();
            let events =
                Events::new(backend.database.clone(), keys(), Some(config(&url, &dir))).unwrap();
            let conn = connection(&backend.database).await;
            let id = events
                .emit(EventKind::ConnectionCreated, &conn, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
            let status = events.status(&id).await.unwrap().unwrap();
            let error = status.last_error.unwrap();
            assert!(status.delivered_at.is_none() && status.failed_at.is_none());
            assert_eq!(status.last_status, None);
            assert!(
                !error.contains(SECRET) && !error.contains("receiver-url-token"),
                "{error}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_delivery_loop_is_woken_by_emit() {
    bounded(async {
        // SQLite only: the loop also takes over pending events recorded for
        // other URLs, which on the shared PostgreSQL database would be other
        // tests' events.
        let backend = databases().await.remove(0);
        let mut receiver = Receiver::start(0).await;
        let dir = tempfile::tempdir().unwrap();
        let events = Events::new(
            backend.database.clone(),
            keys(),
            Some(config(&receiver.url, &dir)),
        )
        .unwrap();
        let conn = connection(&backend.database).await;
        // Recorded for a URL the operator since replaced: the loop moves it.
        let old_url = format!("{}-old", receiver.url);
        let old = Events::new(
            backend.database.clone(),
            keys(),
            Some(config(&old_url, &dir)),
        )
        .unwrap();
        let moved = old
            .emit(EventKind::Recovered, &conn, None)
            .await
            .unwrap()
            .unwrap();

        let delivery = events.start_delivery();
        let first = events
            .emit(EventKind::ConnectionCreated, &conn, None)
            .await
            .unwrap()
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(receiver.seen.recv().await.unwrap());
        }
        seen.sort();
        let mut expected = vec![first.clone(), moved];
        expected.sort();
        assert_eq!(seen, expected);
        // Woken again by the next emit (the poll interval is seconds away).
        let second = events
            .emit(EventKind::RefreshFailed, &conn, Some("timeout"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(receiver.seen.recv().await.unwrap(), second);
        delivery.abort();
    })
    .await;
}

#[tokio::test]
async fn disabled_webhooks_emit_nothing_and_never_fail() {
    bounded(async {
        for backend in databases().await {
            let events = Events::new(backend.database.clone(), keys(), None).unwrap();
            assert!(!events.enabled());
            let conn = connection(&backend.database).await;
            for kind in EventKind::ALL {
                assert_eq!(events.emit(kind, &conn, Some("x")).await.unwrap(), None);
            }
            assert_eq!(events.deliver_due().await.unwrap(), 0);
            events.make_due_for_tests().await;
            events.start_delivery().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn config_errors_name_the_field() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("whsec");
        std::fs::write(&file, "s3cret\n").unwrap();
        let table = |body: &str| {
            let text = format!(
                "[webhooks]\n{body}\nsecret = {{ file = {:?} }}\n",
                file.display().to_string()
            );
            toml::from_str::<HostConfig>(&text)
        };

        // Defaults.
        let config = table("url = \"https://platform.example/hooks\"").unwrap();
        config.validate().unwrap();
        let webhooks = config.webhooks.clone().unwrap();
        assert_eq!(
            (
                webhooks.max_attempts,
                webhooks.backoff_base_secs,
                webhooks.backoff_max_secs,
                webhooks.timeout_secs
            ),
            (12, 5, 3600, 10)
        );
        assert!(toml::from_str::<HostConfig>("").unwrap().webhooks.is_none());

        for (body, field) in [
            ("url = \"ftp://platform.example/hooks\"", "webhooks.url"),
            ("url = \"/hooks\"", "webhooks.url"),
            ("url = \"not a url\"", "webhooks.url"),
            (
                "url = \"https://a.example\"\nmax_attempts = 0",
                "webhooks.max_attempts",
            ),
            (
                "url = \"https://a.example\"\nbackoff_base_secs = 0",
                "webhooks.backoff_base_secs",
            ),
            (
                "url = \"https://a.example\"\nbackoff_base_secs = 60\nbackoff_max_secs = 10",
                "webhooks.backoff_max_secs",
            ),
            (
                "url = \"https://a.example\"\ntimeout_secs = 0",
                "webhooks.timeout_secs",
            ),
        ] {
            let config = table(body).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(field), "{body}: {error}");
        }
        let error = table("url = \"https://a.example\"\nretries = 3")
            .unwrap_err()
            .to_string();
        assert!(error.contains("retries"), "{error}");

        // The secret is read when Events is built; errors name webhooks.secret
        // and never a value.
        let database = databases().await.remove(0);
        let missing_env = WebhookConfig::new(
            "https://a.example/hooks",
            WebhookSecretSource {
                env: Some("CONNECTOR_HOST_TEST_WEBHOOK_SECRET_UNSET".into()),
                file: None,
            },
        );
        let missing_file = WebhookConfig::new(
            "https://a.example/hooks",
            WebhookSecretSource {
                env: None,
                file: Some(dir.path().join("absent")),
            },
        );
        let neither = WebhookConfig::new("https://a.example/hooks", WebhookSecretSource::default());
        let both = WebhookConfig::new(
            "https://a.example/hooks",
            WebhookSecretSource {
                env: Some("X".into()),
                file: Some(file.clone()),
            },
        );
        let empty_file = dir.path().join("empty");
        std::fs::write(&empty_file, "\n").unwrap();
        let empty = WebhookConfig::new(
            "https://a.example/hooks",
            WebhookSecretSource {
                env: None,
                file: Some(empty_file),
            },
        );
        let not_base64 = WebhookConfig::new(
            "https://a.example/hooks",
            secret_file(&dir, "whsec_s3cret-not-base64!"),
        );
        let no_key = WebhookConfig::new("https://a.example/hooks", secret_file(&dir, "whsec_"));
        for config in [
            missing_env,
            missing_file,
            neither,
            both,
            empty,
            not_base64,
            no_key,
        ] {
            let error = Events::new(database.database.clone(), keys(), Some(config))
                .expect_err("refused")
                .to_string();
            assert!(error.starts_with("webhooks.secret"), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }

        // previous_secret is read the same way; its errors name it. The same
        // key as the secret (here the raw form of the whsec_ secret) is refused.
        let config = toml::from_str::<HostConfig>(&format!(
            "[webhooks]\nurl = \"https://a.example/hooks\"\nsecret = {{ file = {path:?} }}\n\
             previous_secret = {{ env = \"CONNECTOR_HOST_TEST_WEBHOOK_SECRET_UNSET\" }}\n",
            path = file.display().to_string()
        ))
        .unwrap();
        config.validate().unwrap();
        let previous = config.webhooks.unwrap().previous_secret.unwrap();
        assert_eq!(
            previous.env.as_deref(),
            Some("CONNECTOR_HOST_TEST_WEBHOOK_SECRET_UNSET")
        );
        let rotating = |previous: WebhookSecretSource| WebhookConfig {
            previous_secret: Some(previous),
            ..WebhookConfig::new("https://a.example/hooks", secret_file(&dir, SECRET))
        };
        for previous in [
            previous,
            WebhookSecretSource::default(),
            secret_file(&dir, "whsec_s3cret-not-base64!"),
            secret_file(&dir, std::str::from_utf8(KEY).unwrap()),
            secret_file(&dir, SECRET),
        ] {
            let error = Events::new(database.database.clone(), keys(), Some(rotating(previous)))
                .expect_err("refused")
                .to_string();
            assert!(error.starts_with("webhooks.previous_secret"), "{error}");
            assert!(!error.contains("s3cret") && !error.contains("0123456789abcdef"));
        }
        Events::new(
            database.database.clone(),
            keys(),
            Some(rotating(secret_file(&dir, OLD_SECRET))),
        )
        .unwrap();
        let bad_url = WebhookConfig::new("mailto:ops@example.com", secret_file(&dir, SECRET));
        let error = Events::new(database.database.clone(), keys(), Some(bad_url))
            .expect_err("refused")
            .to_string();
        assert!(
            error.starts_with("webhooks.url") && !error.contains(SECRET),
            "{error}"
        );
        let names: Vec<_> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(
            names,
            [
                "connection.created",
                "connection.refresh_failed",
                "connection.recovered",
                "connection.needs_reauth",
                "connection.revoked"
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    })
    .await;
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    bounded(async {
        let backend = databases().await.remove(0);
        let dir = tempfile::tempdir().unwrap();
        let events = Events::new(
            backend.database.clone(),
            keys(),
            Some(config("https://platform.example/hooks", &dir)),
        )
        .unwrap();
        let debug = format!("{events:?}");
        assert!(
            debug.contains("platform.example")
                && !debug.contains(SECRET)
                && !debug.contains("0123456789abcdef")
                && !debug.contains("48, 49, 50"),
            "{debug}"
        );
    })
    .await;
}

/// The two tests below write outbox rows without a MAC into the shared
/// database, and the upgrade MACs every such pending row: one at a time.
static MAC_LESS_ROWS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a database writer would like the host to sign and send.
const FORGED_PAYLOAD: &str =
    r#"{"id":"forged","type":"connection.revoked","connection":{"id":"someone-else"}}"#;

#[tokio::test]
async fn a_database_writer_cannot_make_the_host_sign_a_forged_event() {
    let _one_at_a_time = MAC_LESS_ROWS.lock().await;
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let database = &backend.database;
            let receiver = Receiver::start(0).await;
            let dir = tempfile::tempdir().unwrap();
            let events = Events::new(database.clone(), keys(), Some(config(&receiver.url, &dir)))
                .unwrap();
            let conn = connection(database).await;
            let genuine = events
                .emit(EventKind::ConnectionCreated, &conn, None)
                .await
                .unwrap()
                .unwrap();
            let altered = events
                .emit(EventKind::Recovered, &conn, None)
                .await
                .unwrap()
                .unwrap();
            // A row with no MAC, a row carrying the genuine row's MAC, and a
            // genuine row whose payload was rewritten.
            let copy = |id: &str, mac: &str| {
                format!(
                    "INSERT INTO webhook_outbox (id, event_type, url, payload, attempts, next_attempt_at, created_at, mac)
                     SELECT '{id}', event_type, url, $1, 0, next_attempt_at, created_at, {mac}
                     FROM webhook_outbox WHERE id = $2"
                )
            };
            // Unique ids: the PostgreSQL database outlives a test run.
            let (no_mac, copied_mac) = (unique("forged-no-mac"), unique("forged-copied-mac"));
            for sql in [copy(&no_mac, "NULL"), copy(&copied_mac, "mac")] {
                let inserted = database
                    .execute_for_tests(&sql, &[FORGED_PAYLOAD, &genuine])
                    .await
                    .unwrap();
                assert_eq!(inserted, 1, "{name}");
            }
            database
                .execute_for_tests(
                    "UPDATE webhook_outbox SET payload = $1 WHERE id = $2",
                    &[FORGED_PAYLOAD, &altered],
                )
                .await
                .unwrap();

            assert_eq!(events.deliver_due().await.unwrap(), 4, "{name}");
            assert_eq!(receiver.hits_of(&genuine).len(), 1, "{name}: the genuine event is sent");
            let sent = receiver.state.hits.lock().unwrap().len();
            assert_eq!(sent, 1, "{name}: nothing else reached the receiver");
            for id in [no_mac.as_str(), copied_mac.as_str(), altered.as_str()] {
                let status = events.status(id).await.unwrap().unwrap();
                assert!(status.failed_at.is_some(), "{name}: {id} is marked failed");
                let error = status.last_error.unwrap_or_default();
                assert!(error.contains("integrity"), "{name}: {id}: {error}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn rows_pending_at_the_upgrade_get_their_mac_and_are_sent() {
    let _one_at_a_time = MAC_LESS_ROWS.lock().await;
    bounded(async {
        for backend in databases().await {
            let name = backend.name;
            let database = &backend.database;
            let receiver = Receiver::start(0).await;
            let dir = tempfile::tempdir().unwrap();
            let events =
                Events::new(database.clone(), keys(), Some(config(&receiver.url, &dir))).unwrap();
            let conn = connection(database).await;
            let id = events
                .emit(EventKind::ConnectionCreated, &conn, None)
                .await
                .unwrap()
                .unwrap();
            // As a host before migration 0010 left it: no MAC.
            database
                .execute_for_tests("UPDATE webhook_outbox SET mac = NULL WHERE id = $1", &[&id])
                .await
                .unwrap();
            let upgraded = Events::mac_pending_rows(database, &keys()).await.unwrap();
            assert!(upgraded >= 1, "{name}");
            assert_eq!(events.deliver_due().await.unwrap(), 1, "{name}");
            assert_eq!(receiver.hits_of(&id).len(), 1, "{name}");
            assert!(
                events
                    .status(&id)
                    .await
                    .unwrap()
                    .unwrap()
                    .delivered_at
                    .is_some()
            );
        }
    })
    .await;
}
