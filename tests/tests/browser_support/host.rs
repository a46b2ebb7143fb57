//! An in-process host for the browser's OAuth login: its listener is bound
//! first, so the local provider can register the host's callback page
//! (`{base}/connect/oauth/callback`) as the redirect URI of the OAuth client
//! of `test-refresh-paths` (whose authorize and token URLs are settings,
//! here the provider's).

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_sandbox::capabilities::http::{HostSecret, MemoryAuditSink, OutboundConfig};
use connector_server::access::Role;
use connector_server::builder::ServerBuilder;
use connector_server::config::ConnectorSettings;
use connector_server::store::Database;
use connector_server::store::crypto::Keyring;
use connector_test_support::guest;
use connector_test_support::harness::{CLIENT_SECRET, database_url};
use secrecy::{ExposeSecret, SecretString};

/// The OAuth connector served.
pub const CONNECTOR: &str = "test-refresh-paths";

/// A running host with the provider it logs in to.
pub struct OAuthHost {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// A service key for every account.
    pub service_key: String,
    /// The local provider, running as long as the host.
    _provider: DevProvider,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Starts the host and its provider.
pub async fn start() -> OAuthHost {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "paths-client".into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{base}/connect/oauth/callback")],
        }],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest("refresh_paths"),
        plugins.path().join("refresh_paths.wasm"),
    )
    .unwrap();
    let api = provider.base_url();
    let config = [
        ("token-url", format!("{api}/oauth/token")),
        ("authorize-url", format!("{api}/oauth/authorize")),
        ("refresh-url", format!("{api}/oauth/token")),
        ("api-base", api.clone()),
    ];
    let settings = ConnectorSettings {
        config: config
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..ConnectorSettings::default()
    };
    let secret = HostSecret::new(SecretString::from(CLIENT_SECRET), [CONNECTOR.to_string()]);
    let work = tempfile::tempdir().unwrap();
    let database = Database::connect(&database_url(work.path()).await)
        .await
        .unwrap();
    let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
    let server = ServerBuilder::new(plugins.path(), Arc::new(MemoryAuditSink::default()))
        .network(OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
            require_https: false,
            ..OutboundConfig::default()
        })
        .host_secrets(BTreeMap::from([(
            "paths-client-secret".to_string(),
            secret,
        )]))
        .connectors(BTreeMap::from([(CONNECTOR.to_string(), settings)]))
        .record_versions(false)
        .build(database, keys)
        .await
        .unwrap();
    assert_eq!(
        server.initial_load.loaded.len(),
        1,
        "{:?}",
        server.initial_load.failed
    );
    let (_, service_key) = server
        .state
        .api_keys
        .create("browser service", Role::Service, &["*".to_string()])
        .await
        .unwrap();
    let (app, limits) = (server.router(), server.api.clone());
    tokio::spawn(async move {
        connector_server::api::serve(listener, app, &limits, std::future::pending())
            .await
            .unwrap()
    });
    OAuthHost {
        base,
        service_key: service_key.expose_secret().to_string(),
        _provider: provider,
        _dirs: (plugins, work),
    }
}
