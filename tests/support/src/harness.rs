//! An in-process host serving the HTTP API on 127.0.0.1, with the local test
//! provider, the `local-*` example connectors and the test connectors of the
//! flow, admin and access tests, on a fresh SQLite file. Requests carry a
//! service key for every account unless a test picks another key.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_sandbox::capabilities::http::{HostSecret, MemoryAuditSink, OutboundConfig};
use connector_server::access::Role;
use connector_server::builder::ServerBuilder;
use connector_server::config::ConnectorSettings;
use connector_server::flows::Flows;
use connector_server::registry::CompileCache;
use connector_server::store::crypto::Keyring;
use connector_server::store::{
    ApiKeyStore, ConnectionStore, Database, ManagedStore, OAuthStateStore,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::guest;

/// The API key the provider accepts (`local-insightly`, `test-managed-apikey`).
pub const API_KEY: &str = "ik-5d1f-insightly-secret";
/// The client secret of the provider's shared clients.
pub const CLIENT_SECRET: &str = "cs-regional-secret";
/// The OAuth application tenant `acct-1` registers (admin-managed OAuth).
pub const TENANT_CLIENT_ID: &str = "tenant-acct-1-client";
/// Its secret.
pub const TENANT_CLIENT_SECRET: &str = "cs-tenant-acct-1-secret";

/// Every log line the host writes in this test binary (one subscriber per
/// process).
pub fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(
                "info,connector_host=trace,connector_server=trace,connector_sandbox=trace,\
                 connector_authoring=trace,connector=trace",
            )
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

/// Fails when a secret of the harness appears in `text`.
pub fn assert_no_secret(text: &str) {
    for secret in [API_KEY, CLIENT_SECRET, TENANT_CLIENT_SECRET] {
        assert!(
            !text.contains(secret),
            "a secret appeared in an API body: {text}"
        );
    }
}

/// Fails when a secret of the harness appears in the captured logs.
pub fn assert_no_secret_in_logs() {
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "logs were captured");
    for secret in [API_KEY, CLIENT_SECRET, TENANT_CLIENT_SECRET] {
        assert!(!logs.contains(secret), "a secret appeared in the logs");
    }
}

/// How to build a [`Host`].
pub struct Options {
    /// The hostname `local-regional` uses (the provider's address when `None`).
    pub regional_host: Option<String>,
    /// Lifetime of the provider's access tokens (0: born expired).
    pub token_lifetime_secs: u64,
    /// Refresh lease lifetime (the host's default when `None`).
    pub lease_ttl_ms: Option<i64>,
    /// `[refresh] max_wait_ms`: how long a caller waits for another
    /// holder's refresh (the host's default when `None`).
    pub refresh_max_wait_ms: Option<u64>,
    /// Webhooks for connection events (none when `None`).
    pub webhooks: Option<connector_server::events::WebhookConfig>,
    /// Where `test-refresh-paths` sends refreshes (the provider's token
    /// endpoint when `None`).
    pub refresh_paths_url: Option<String>,
    /// Capture the host's logs at trace level (tests check them for secrets);
    /// benchmarks turn it off.
    pub capture_logs: bool,
    /// The HTTP API's limits (`[api]`).
    pub api: connector_server::config::ApiLimits,
    /// `[network] require_https`. Off by default here: the local provider
    /// speaks plain http, so the host's token requests and the connectors'
    /// injected credentials go to it in clear.
    pub require_https: bool,
    /// The public URL the provider names its issuers under
    /// (`DevProviderConfig::public_url`; its own address when `None`).
    /// `test-issuer-realm` declares the issuer `{REALM_PUBLIC_URL}/realms/acme`.
    pub provider_public_url: Option<String>,
    /// `test-issuer-realm`'s `client-auth-location` config: what its
    /// `overriding-oauth-option` asks for (nothing when `None`: the default).
    pub realm_client_auth: Option<&'static str>,
    /// `test-issuer-realm`'s `extra-headers` config (lines of `name: value`):
    /// the extra token-request headers its `overriding-oauth-option` asks for.
    pub realm_extra_headers: Option<&'static str>,
    /// The client secret the host holds for `test-client-credentials`
    /// (`cc-client-secret`; the provider's, [`CLIENT_SECRET`], when `None`).
    pub client_credentials_secret: Option<&'static str>,
    /// Guests served in place of others, as (served guest, replaced guest of
    /// [`CONNECTORS`]), e.g. `("ts_local_insightly", "local_insightly")`: the
    /// TypeScript twin under the same connector id, settings and secrets.
    pub substitutes: Vec<(&'static str, &'static str)>,
    /// A compile cache shared by the hosts of a test run (none when `None`),
    /// so a large component (a JavaScript engine) is compiled once.
    pub compile_cache: Option<std::path::PathBuf>,
}

/// The public URL under which `test-issuer-realm`'s manifest names its issuer
/// (`https://sso.example.test/realms/acme`); pass it as
/// [`Options::provider_public_url`] to log in with that connector.
pub const REALM_PUBLIC_URL: &str = "https://sso.example.test";

/// The realms the test provider serves beside its root issuer, on the same
/// origin: `acme` (`test-issuer-realm`'s) and a sibling, `other`.
pub const REALMS: [&str; 2] = ["acme", "other"];

impl Default for Options {
    fn default() -> Self {
        Self {
            regional_host: None,
            token_lifetime_secs: 3600,
            lease_ttl_ms: None,
            refresh_max_wait_ms: None,
            webhooks: None,
            refresh_paths_url: None,
            capture_logs: true,
            api: Default::default(),
            require_https: false,
            provider_public_url: None,
            realm_client_auth: None,
            realm_extra_headers: None,
            client_credentials_secret: None,
            substitutes: Vec::new(),
            compile_cache: None,
        }
    }
}

/// A running host and what tests need to look inside it.
pub struct Host {
    /// `http://127.0.0.1:port` of the API.
    pub base: String,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    /// The local provider.
    pub provider: DevProvider,
    /// The outbound audit.
    pub audit: Arc<MemoryAuditSink>,
    /// Pending OAuth authorizations.
    pub states: OAuthStateStore,
    /// The database.
    pub database: Database,
    /// The API keys.
    pub api_keys: ApiKeyStore,
    /// Connections.
    pub connections: ConnectionStore,
    /// Managed credentials.
    pub managed: ManagedStore,
    /// A service key for every account, used by [`Host::post`] and [`Host::get`].
    pub service_key: String,
    /// The flows (for the background refresher).
    pub flows: Flows,
    /// The events publisher.
    pub events: connector_server::events::Events,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Guests every host serves.
pub const CONNECTORS: [&str; 9] = [
    "local_insightly",
    "local_regional",
    "oauth_basic",
    "managed_oauth",
    "managed_apikey",
    "refresh_paths",
    "secret_fields",
    "issuer_realm",
    "client_credentials",
];

impl Host {
    /// A host with default options.
    pub async fn start() -> Host {
        Self::with(Options::default()).await
    }

    /// A host built with `options`.
    pub async fn with(options: Options) -> Host {
        if options.capture_logs {
            captured_logs();
        }
        let provider = DevProvider::start(DevProviderConfig {
            clients: vec![
                DevClient {
                    client_id: "regional-public-client".into(),
                    client_secret: CLIENT_SECRET.into(),
                    redirect_uris: vec!["https://apps.example.com/oauth/callback".into()],
                },
                DevClient {
                    client_id: "basic-client".into(),
                    client_secret: CLIENT_SECRET.into(),
                    redirect_uris: vec!["https://apps.example.com/basic/callback".into()],
                },
                DevClient {
                    client_id: "paths-client".into(),
                    client_secret: CLIENT_SECRET.into(),
                    redirect_uris: vec!["https://apps.example.com/paths/callback".into()],
                },
                DevClient {
                    client_id: TENANT_CLIENT_ID.into(),
                    client_secret: TENANT_CLIENT_SECRET.into(),
                    redirect_uris: vec!["https://apps.example.com/managed/callback".into()],
                },
                DevClient {
                    client_id: "cc-client".into(),
                    client_secret: CLIENT_SECRET.into(),
                    redirect_uris: vec![],
                },
                DevClient {
                    client_id: "realm-client".into(),
                    client_secret: CLIENT_SECRET.into(),
                    redirect_uris: vec!["https://apps.example.com/realm/callback".into()],
                },
            ],
            api_keys: vec![API_KEY.into()],
            access_token_lifetime_secs: options.token_lifetime_secs,
            realms: REALMS.iter().map(|r| r.to_string()).collect(),
            public_url: options.provider_public_url.clone(),
            consent_page: false,
        })
        .await
        .unwrap();
        let plugins = tempfile::tempdir().unwrap();
        for name in CONNECTORS {
            let served = options
                .substitutes
                .iter()
                .find(|(_, replaced)| *replaced == name)
                .map_or(name, |(served, _)| *served);
            std::fs::copy(guest(served), plugins.path().join(format!("{name}.wasm"))).unwrap();
        }
        let audit = Arc::new(MemoryAuditSink::default());
        // OAuth client secrets: granted for the default purpose only.
        let secret = HostSecret::new(
            SecretString::from(CLIENT_SECRET),
            ["local-regional".to_string()],
        );
        let own_host = provider
            .base_url()
            .trim_start_matches("http://")
            .to_string();
        let provider_host = options.regional_host.unwrap_or_else(|| own_host.clone());
        let with_config = |pairs: &[(&str, String)]| ConnectorSettings {
            config: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..ConnectorSettings::default()
        };
        let base = provider.base_url();
        let settings = BTreeMap::from([
            (
                "local-regional".to_string(),
                with_config(&[
                    ("scheme", "http".into()),
                    ("default-hostname", provider_host),
                ]),
            ),
            (
                "test-oauth-basic".to_string(),
                with_config(&[
                    ("token-url", format!("{base}/oauth/token")),
                    ("api-base", base.clone()),
                ]),
            ),
            (
                "test-managed-oauth".to_string(),
                with_config(&[("api-base", base.clone())]),
            ),
            (
                "test-managed-apikey".to_string(),
                with_config(&[("api-base", base.clone())]),
            ),
            (
                "test-refresh-paths".to_string(),
                with_config(&[
                    ("token-url", format!("{base}/oauth/token")),
                    ("authorize-url", format!("{base}/oauth/authorize")),
                    ("api-base", base.clone()),
                    (
                        "refresh-url",
                        options
                            .refresh_paths_url
                            .clone()
                            .unwrap_or_else(|| format!("{base}/oauth/token")),
                    ),
                ]),
            ),
            (
                "test-client-credentials".to_string(),
                with_config(&[
                    ("token-url", format!("{base}/oauth/token")),
                    ("api-base", base.clone()),
                ]),
            ),
            ("test-issuer-realm".to_string(), {
                let mut settings = with_config(&[
                    (
                        "authorize-url",
                        format!("{base}/realms/acme/oauth/authorize"),
                    ),
                    ("token-url", format!("{base}/realms/acme/oauth/token")),
                    ("api-base", base.clone()),
                    ("hostname", own_host),
                ]);
                if let Some(location) = options.realm_client_auth {
                    settings
                        .config
                        .insert("client-auth-location".into(), location.into());
                }
                if let Some(headers) = options.realm_extra_headers {
                    settings
                        .config
                        .insert("extra-headers".into(), headers.into());
                }
                settings
            }),
        ]);
        let host_secrets = BTreeMap::from([
            ("regional-crm-client-secret".to_string(), secret.clone()),
            (
                "basic-client-secret".to_string(),
                HostSecret {
                    connectors: ["test-oauth-basic".to_string()].into(),
                    ..secret.clone()
                },
            ),
            (
                "paths-client-secret".to_string(),
                HostSecret {
                    connectors: ["test-refresh-paths".to_string()].into(),
                    ..secret.clone()
                },
            ),
            (
                "cc-client-secret".to_string(),
                HostSecret::new(
                    SecretString::from(options.client_credentials_secret.unwrap_or(CLIENT_SECRET)),
                    ["test-client-credentials".to_string()],
                ),
            ),
            (
                "realm-client-secret".to_string(),
                HostSecret {
                    connectors: ["test-issuer-realm".to_string()].into(),
                    ..secret
                },
            ),
        ]);

        let work = tempfile::tempdir().unwrap();
        let url = database_url(work.path()).await;
        let database = Database::connect(&url).await.unwrap();
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let server = ServerBuilder::new(plugins.path(), audit.clone())
            .network(OutboundConfig {
                allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
                require_https: options.require_https,
                ..OutboundConfig::default()
            })
            .host_secrets(host_secrets)
            .connectors(settings)
            .webhooks(options.webhooks.clone())
            .refresh_leases(connector_server::flows::LeaseSettings {
                max_wait_ms: options
                    .refresh_max_wait_ms
                    .unwrap_or(connector_server::flows::DEFAULT_MAX_WAIT_MS),
                ..Default::default()
            })
            .lease_ttl_ms(options.lease_ttl_ms)
            .api_limits(options.api.clone())
            .record_versions(false)
            .compile_cache(
                options
                    .compile_cache
                    .clone()
                    .map_or_else(CompileCache::disabled, CompileCache::new),
            )
            .build(database.clone(), keys)
            .await
            .unwrap();
        assert_eq!(
            server.initial_load.loaded.len(),
            CONNECTORS.len(),
            "{:?}",
            server.initial_load.failed
        );
        let api_keys = server.state.api_keys.clone();
        let (_, service_key) = api_keys
            .create("test service", Role::Service, &["*".to_string()])
            .await
            .unwrap();
        let (app, limits) = (server.router(), server.api.clone());
        let (connections, states, flows, events) = (
            server.connections.clone(),
            server.states.clone(),
            server.flows.clone(),
            server.events.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            connector_server::api::serve(listener, app, &limits, std::future::pending())
                .await
                .unwrap()
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Host {
            base: api,
            http,
            provider,
            audit,
            states,
            managed: connections.managed(),
            connections,
            database,
            api_keys,
            service_key: service_key.expose_secret().to_string(),
            flows,
            events,
            _dirs: (plugins, work),
        }
    }

    /// Creates an API key; returns the secret.
    pub async fn key(&self, role: Role, accounts: &[&str]) -> String {
        let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
        let (_, secret) = self
            .api_keys
            .create("test key", role, &accounts)
            .await
            .unwrap();
        secret.expose_secret().to_string()
    }

    /// The access token of the connection `id` of `acct-1`/`user-1`, read
    /// from the store as the host would decrypt it.
    pub async fn access_token(&self, id: &str) -> String {
        let at = connector_server::store::ConnectionRef {
            account_id: "acct-1",
            user_id: "user-1",
            id,
        };
        let (_, secrets) = self
            .connections
            .get_with_secrets(at)
            .await
            .unwrap()
            .unwrap();
        secrets.access_token.unwrap().expose_secret().to_string()
    }

    /// Revokes `token` at the provider (RFC 7009) as `client_id`, as a
    /// provider would on its own (a password change, an admin, a token-reuse
    /// alarm): the host does not know.
    pub async fn revoke_at_provider(&self, client_id: &str, token: &str) {
        let response = self
            .http
            .post(format!("{}/oauth/revoke", self.api_url()))
            .basic_auth(client_id, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// `POST` with the service key.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(&self.service_key), Some(body))
            .await
    }

    /// `GET` with the service key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, Some(&self.service_key), None).await
    }

    /// Any request, with `key` as the bearer token (none when `None`).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request).await
    }

    /// The provider's base URL (the CRM API of the test connectors).
    pub fn api_url(&self) -> String {
        self.provider.base_url()
    }

    /// The provider's `host:port`.
    pub fn provider_host(&self) -> String {
        self.provider
            .base_url()
            .trim_start_matches("http://")
            .to_string()
    }

    /// Starts an OAuth login of `user-1` for `local-regional` and has the
    /// provider approve it; returns the start answer and the query of the
    /// redirect back to the callback.
    pub async fn authorize(&self, account: &str, hostname: &str) -> (Value, String) {
        self.authorize_with("local-regional", account, hostname)
            .await
    }

    /// The same for any OAuth connector.
    pub async fn authorize_with(
        &self,
        connector: &str,
        account: &str,
        hostname: &str,
    ) -> (Value, String) {
        let start = json!({"accountId": account, "userId": "user-1", "hostname": hostname});
        let (status, started) = self
            .post(&format!("/v1/connectors/{connector}/oauth/start"), start)
            .await;
        assert_eq!(status, 200, "{started}");
        let query = self.approve(&started).await;
        (started, query)
    }

    /// Has the provider approve a started login (the user's browser would go
    /// there: the test client does); returns the query of the redirect back.
    pub async fn approve(&self, started: &Value) -> String {
        self.approve_at(started, "/oauth/authorize").await
    }

    /// [`Host::approve`] at the provider's authorization endpoint `path`
    /// (e.g. `/realms/acme/oauth/authorize`), whatever the authorize URL
    /// names: where a user's browser goes, or is sent by an attacker.
    pub async fn approve_at(&self, started: &Value, path: &str) -> String {
        let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
        let at_provider = format!(
            "{}{path}?{}",
            self.provider.base_url(),
            authorize.query().unwrap()
        );
        let response = self.http.get(at_provider).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302);
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        location.query().unwrap().to_string()
    }
}

/// The environment variable naming a PostgreSQL server for the tests.
pub const POSTGRES_ENV: &str = "CONNECTOR_HOST_TEST_POSTGRES_URL";

/// Where a test host keeps its data: a fresh PostgreSQL database on the
/// server named by [`POSTGRES_ENV`] when it is set, else a SQLite file in
/// `dir`. Every host gets its own database, so tests never see each other's
/// rows.
pub async fn database_url(dir: &std::path::Path) -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(server) => Database::fresh_postgres_for_tests(&server)
            .await
            .expect("PostgreSQL reachable at CONNECTOR_HOST_TEST_POSTGRES_URL"),
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("host.db").display()),
    }
}

/// Sends a request; returns the status and the JSON body, after checking the
/// body carries no secret.
pub async fn read(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_no_secret(&text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
