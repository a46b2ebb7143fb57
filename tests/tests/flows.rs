//! The connection flows end to end through the HTTP API: an in-process host and
//! the local test provider, both on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use connector_host::api::{AppState, router};
use connector_host::capabilities::http::{
    HostSecret, MemoryAuditSink, Outbound, OutboundConfig, SystemResolver,
};
use connector_host::config::ConnectorSettings;
use connector_host::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_host::flows::Flows;
use connector_host::registry::{CompileCache, Registry};
use connector_host::runtime::{Runtime, RuntimeLimits};
use connector_host::store::crypto::Keyring;
use connector_host::store::{ConnectionStore, Database};
use connector_host_tests::guest;
use secrecy::SecretString;
use serde_json::{Value, json};

const API_KEY: &str = "ik-5d1f-insightly-secret";
const CLIENT_SECRET: &str = "cs-regional-secret";

/// Every log line the host writes during these tests (one subscriber per
/// test binary).
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,connector_host=trace,connector=trace")
            .with_writer(move || Capture(sink.clone()))
            .init();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Host {
    base: String,
    http: reqwest::Client,
    provider: DevProvider,
    audit: Arc<MemoryAuditSink>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn host() -> Host {
    captured_logs();
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "regional-public-client".into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec!["https://apps.example.com/oauth/callback".into()],
        }],
        api_keys: vec![API_KEY.into()],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let plugins = tempfile::tempdir().unwrap();
    for name in ["local_insightly", "local_regional"] {
        std::fs::copy(guest(name), plugins.path().join(format!("{name}.wasm"))).unwrap();
    }
    let audit = Arc::new(MemoryAuditSink::default());
    let secret = HostSecret {
        value: SecretString::from(CLIENT_SECRET),
        connectors: ["local-regional".to_string()].into(),
    };
    let outbound = Outbound::new(
        OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
            ..OutboundConfig::default()
        },
        Arc::new(SystemResolver),
        Arc::new(BTreeMap::from([(
            "regional-crm-client-secret".to_string(),
            secret,
        )])),
        audit.clone(),
    )
    .unwrap();
    let runtime = Arc::new(Runtime::with_outbound(RuntimeLimits::default(), outbound).unwrap());
    let provider_host = provider
        .base_url()
        .trim_start_matches("http://")
        .to_string();
    let regional = ConnectorSettings {
        config: BTreeMap::from([
            ("scheme".into(), "http".into()),
            ("default-hostname".into(), provider_host),
        ]),
        ..ConnectorSettings::default()
    };
    let settings = BTreeMap::from([("local-regional".to_string(), regional)]);
    let registry = Arc::new(Registry::new(
        runtime,
        plugins.path(),
        CompileCache::disabled(),
        settings,
    ));
    assert_eq!(registry.sync().await.loaded.len(), 2);

    let work = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        work.path().join("host.db").display()
    );
    let database = Database::connect(&url).await.unwrap();
    let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
    let connections = ConnectionStore::new(database.clone(), keys);
    let flows = Flows::new(registry.clone(), connections.clone());
    let app = router(AppState {
        registry,
        database,
        connections,
        flows,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Host {
        base,
        http: reqwest::Client::new(),
        provider,
        audit,
        _dirs: (plugins, work),
    }
}

impl Host {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_no_secret(&text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_no_secret(&text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn api_url(&self) -> String {
        self.provider.base_url()
    }
}

fn assert_no_secret(text: &str) {
    for secret in [API_KEY, CLIENT_SECRET] {
        assert!(
            !text.contains(secret),
            "a secret appeared in an API body: {text}"
        );
    }
}

fn assert_no_secret_in_logs() {
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "logs were captured");
    for secret in [API_KEY, CLIENT_SECRET] {
        assert!(!logs.contains(secret), "a secret appeared in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_login_validation_refresh_and_logout() {
    let host = host().await;
    let (status, page) = host.get("/v1/connectors/local-insightly/auth-page").await;
    assert_eq!(status, 200);
    assert_eq!(page["authType"], "apiKey");
    let consts: Vec<&str> = page["apiKey"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["const"].as_str().unwrap())
        .collect();
    assert_eq!(consts, ["insightlyGetApiKey", "apiKey", "apiUrl"]);

    let login = json!({
        "accountId": "acct-1", "userId": "user-1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, connection) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(connection["platformUserId"], "12345");
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert_eq!(connection["status"], "active");
    assert_eq!(connection["hasApiKey"], true);
    let id = connection["id"].as_str().unwrap().to_string();

    // The key reached the provider as Basic auth, injected by the host; the
    // audit names the credential kind only.
    let events = host.audit.events();
    let users_me = events
        .iter()
        .find(|e| e.path.as_deref() == Some("/v3.1/Users/Me"))
        .unwrap();
    assert_eq!(
        (users_me.status, users_me.credential.as_deref()),
        (Some(200), Some("api-key"))
    );

    let (status, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!((status, listed.as_array().unwrap().len()), (200, 1));
    let (status, _) = host
        .get(&format!("/v1/accounts/acct-2/connections/{id}"))
        .await;
    assert_eq!(status, 404, "another account cannot read it");

    let (status, validation) = host
        .post(
            &format!("/v1/accounts/acct-1/connections/{id}/validate"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    let (status, refreshed) = host
        .post(
            &format!("/v1/accounts/acct-1/connections/{id}/refresh-user-info"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, refreshed["userName"].as_str()),
        (200, Some("Ada Lovelace")),
        "{refreshed}"
    );

    let (status, logout) = host
        .post(
            &format!("/v1/accounts/acct-1/connections/{id}/logout"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["connection"]["status"], "revoked");
    assert_eq!(logout["connection"]["hasApiKey"], false);
    let (status, error) = host
        .post(
            &format!("/v1/accounts/acct-1/connections/{id}/validate"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable"))
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_login_rejects_bad_input_and_saves_nothing() {
    let host = host().await;
    let url = host.api_url();
    let cases = [
        (
            json!({"apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": API_KEY}),
            400,
            "invalid_field",
            Some("fields.apiUrl"),
        ),
        (
            json!({"apiKey": API_KEY, "apiUrl": url, "tenant": "x"}),
            400,
            "invalid_field",
            Some("fields.tenant"),
        ),
        (
            json!({"apiKey": 42, "apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": "   ", "apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": "wrong-key", "apiUrl": url}),
            401,
            "invalid_credentials",
            None,
        ),
        (
            json!({"apiKey": API_KEY, "apiUrl": "https://evil.example"}),
            502,
            "provider_error",
            None,
        ),
    ];
    for (fields, status, code, field) in cases {
        let body = json!({"accountId": "acct-1", "userId": "user-1", "fields": fields});
        let (got, error) = host
            .post("/v1/connectors/local-insightly/api-key/login", body)
            .await;
        assert_eq!(
            (got, error["code"].as_str()),
            (status, Some(code)),
            "{fields}: {error}"
        );
        assert_eq!(error["field"].as_str(), field, "{fields}: {error}");
    }
    let (status, error) = host
        .post(
            "/v1/connectors/local-insightly/api-key/login",
            json!({"accountId": "a"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (status, error) = host
        .post(
            "/v1/connectors/local-regional/api-key/login",
            json!({"accountId": "a", "userId": "u", "fields": {}}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("wrong_auth_type"))
    );
    let (status, error) = host
        .post(
            "/v1/connectors/nope/api-key/login",
            json!({"accountId": "a", "userId": "u", "fields": {}}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("unknown_connector"))
    );

    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]), "nothing is saved when a login fails");
    assert_no_secret_in_logs();
}
