//! OAuth discovery (`auth.oauth.discoveryUrl`, issue #15), end to end
//! through the HTTP API over real HTTP: a login of `test-discovery-realm`,
//! whose manifest declares only the discovery URL, against the local
//! provider's realm `acme` (a path issuer), and the documents a host must
//! refuse, served by a server of the test's own on 127.0.0.1: another
//! issuer, endpoints the outbound policy refuses, too large, malformed,
//! incomplete, or without PKCE S256.
//!
//! The host is built here rather than with `harness::Host` so that it serves
//! only this connector: the same `ServerBuilder`, network policy (loopback
//! allowed, plain http allowed) and database matrix as the harness.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_sandbox::capabilities::http::{
    AuditOutcome, HostSecret, MemoryAuditSink, OutboundConfig,
};
use connector_server::access::Role;
use connector_server::builder::ServerBuilder;
use connector_server::config::ConnectorSettings;
use connector_server::store::Database;
use connector_server::store::crypto::Keyring;
use connector_test_support::guest;
use connector_test_support::harness::{
    CLIENT_SECRET, assert_no_secret_in_logs, captured_logs, database_url, read,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const CONNECTOR: &str = "test-discovery-realm";
const DISCOVERY_PATH: &str = "/realms/acme/.well-known/openid-configuration";

/// A host serving `test-discovery-realm`, and the local provider.
struct DiscoveryHost {
    base: String,
    http: reqwest::Client,
    provider: DevProvider,
    audit: Arc<MemoryAuditSink>,
    service_key: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl DiscoveryHost {
    /// The provider names its issuers under `public_url` when given.
    async fn start(public_url: Option<&str>) -> Self {
        captured_logs();
        let provider = DevProvider::start(DevProviderConfig {
            clients: vec![DevClient {
                client_id: "realm-client".into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec!["https://apps.example.com/realm/callback".into()],
            }],
            realms: vec!["acme".into(), "other".into()],
            public_url: public_url.map(str::to_string),
            ..DevProviderConfig::default()
        })
        .await
        .unwrap();
        let plugins = tempfile::tempdir().unwrap();
        std::fs::copy(
            guest("discovery_realm"),
            plugins.path().join("discovery_realm.wasm"),
        )
        .unwrap();
        let base = provider.base_url();
        let settings = ConnectorSettings {
            config: BTreeMap::from([
                ("hostname".into(), base.trim_start_matches("http://").into()),
                ("api-base".into(), base.clone()),
            ]),
            ..ConnectorSettings::default()
        };
        let secret = HostSecret::new(SecretString::from(CLIENT_SECRET), [CONNECTOR.to_string()]);
        let audit = Arc::new(MemoryAuditSink::default());
        let work = tempfile::tempdir().unwrap();
        let database = Database::connect(&database_url(work.path()).await)
            .await
            .unwrap();
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let server = ServerBuilder::new(plugins.path(), audit.clone())
            .network(OutboundConfig {
                allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
                require_https: false,
                ..OutboundConfig::default()
            })
            .host_secrets(BTreeMap::from([("realm-client-secret".into(), secret)]))
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
            .create("test service", Role::Service, &["*".to_string()])
            .await
            .unwrap();
        let (app, limits) = (server.router(), server.api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            connector_server::api::serve(listener, app, &limits, std::future::pending())
                .await
                .unwrap()
        });
        DiscoveryHost {
            base: api,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            provider,
            audit,
            service_key: service_key.expose_secret().to_string(),
            _dirs: (plugins, work),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.service_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request).await
    }

    /// Starts a login of `user-1` of `acct-1`, with `hostname` if given.
    async fn start_login(&self, hostname: Option<&str>) -> (u16, Value) {
        let mut body = json!({"accountId": "acct-1", "userId": "user-1"});
        if let Some(hostname) = hostname {
            body["hostname"] = hostname.into();
        }
        let path = format!("/v1/connectors/{CONNECTOR}/oauth/start");
        self.send(reqwest::Method::POST, &path, Some(body)).await
    }

    /// The provider approves the started login at its endpoint `path`;
    /// returns the query of the redirect back.
    async fn approve_at(&self, started: &Value, path: &str) -> String {
        let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
        let at = format!(
            "{}{path}?{}",
            self.provider.base_url(),
            authorize.query().unwrap()
        );
        let response = self.http.get(at).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302);
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        location.query().unwrap().to_string()
    }

    async fn callback(&self, query: &str) -> (u16, Value) {
        let path = format!("/v1/oauth/callback?{query}");
        self.send(reqwest::Method::GET, &path, None).await
    }

    /// Audit events of GET requests to `path` (the discovery fetches).
    fn fetches_of(&self, path: &str) -> Vec<connector_sandbox::capabilities::http::AuditEvent> {
        self.audit
            .events()
            .into_iter()
            .filter(|e| e.method == "GET" && e.path.as_deref() == Some(path))
            .collect()
    }
}

/// Asserts a start refused with `status` and `code`, its message holding
/// every one of `parts`.
fn assert_refused((status, error): (u16, Value), code: &str, parts: &[&str]) {
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some(code)),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_only_a_discovery_url_completes_with_a_path_issuer() {
    let host = DiscoveryHost::start(None).await;
    let acme = host.provider.realm_issuer("acme").unwrap();
    assert_eq!(acme, format!("{}/realms/acme", host.provider.base_url()));
    // The API's view of the connector shows where its values come from.
    let page = format!("/v1/connectors/{CONNECTOR}/auth-page");
    let (status, view) = host.send(reqwest::Method::GET, &page, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["oauth"]["discoveryUrl"],
        "http://{hostname}/realms/acme/.well-known/openid-configuration",
        "{view}"
    );
    // The provider advertises the form only: the host uses that one method.
    host.provider
        .set_advertised_client_auth("client_secret_post");

    let (status, started) = host.start_login(None).await;
    assert_eq!(status, 200, "{started}");
    let authorize = started["authorizeUrl"].as_str().unwrap();
    assert!(
        authorize.starts_with(&format!("{acme}/oauth/authorize?")),
        "the authorize endpoint comes from the document: {authorize}"
    );
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );

    // A sibling realm on the same origin is refused: the issuer the login
    // expects is the document's, compared exactly.
    let (_, sibling) = host.start_login(None).await;
    let query = host
        .approve_at(&sibling, "/realms/other/oauth/authorize")
        .await;
    let (status, error) = host.callback(&query).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("issuer mismatch"),
        "{error}"
    );
    assert_eq!(host.provider.stats().authorization_code_grants, 0);

    // The realm's own issuer, with its path: the code goes to the
    // discovered token endpoint, authenticated once, in the form.
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, connected) = host.callback(&query).await;
    assert_eq!(status, 200, "{connected}");
    assert_eq!(connected["connection"]["userName"], "Ada Lovelace");
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.authorization_code_grants,
            stats.client_auth_body,
            stats.client_auth_header,
            stats.client_auth_two_methods
        ),
        (1, 1, 0, 0),
        "{stats:?}"
    );

    // A forced refresh goes to the discovered token endpoint, with the
    // discovered method again.
    let id = connected["connection"]["id"].as_str().unwrap();
    let refresh = format!("/v1/accounts/acct-1/users/user-1/connections/{id}/refresh");
    let (status, refreshed) = host
        .send(reqwest::Method::POST, &refresh, Some(json!({})))
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.refresh_grants,
            stats.client_auth_body,
            stats.client_auth_header
        ),
        (1, 2, 0),
        "{stats:?}"
    );

    // Logout revokes at the discovered revocation endpoint.
    let logout = format!("/v1/accounts/acct-1/users/user-1/connections/{id}/logout");
    let (status, out) = host
        .send(reqwest::Method::POST, &logout, Some(json!({})))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(host.provider.stats().revocations, 1);

    // Two starts, a failed and a good callback, a refresh and a logout: one fetch,
    // recorded like every host request.
    let fetches = host.fetches_of(DISCOVERY_PATH);
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(
        (fetches[0].outcome, fetches[0].status),
        (AuditOutcome::Sent, Some(200))
    );

    // The provider serves the RFC 8414 form too, with the same issuer and
    // exactly one client authentication method.
    for path in [
        DISCOVERY_PATH,
        "/.well-known/oauth-authorization-server/realms/acme",
    ] {
        let document: Value = reqwest::get(format!("{}{path}", host.provider.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(document["issuer"], acme.as_str(), "{path}");
        assert_eq!(
            document["token_endpoint_auth_methods_supported"],
            json!(["client_secret_post"]),
            "{path}"
        );
        assert_eq!(
            document["code_challenge_methods_supported"],
            json!(["S256"])
        );
    }
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_naming_another_issuer_is_refused() {
    // The provider names its issuers under a public URL, so its document
    // fetched from 127.0.0.1 does not name the issuer its URL was formed
    // from (RFC 8414 §3.3): nothing of it is used.
    let host = DiscoveryHost::start(Some("https://sso.example.test")).await;
    let refused = host.start_login(None).await;
    assert_refused(
        refused,
        "provider_error",
        &[
            "names issuer `https://sso.example.test/realms/acme`",
            &format!("`{}/realms/acme`", host.provider.base_url()),
            "RFC 8414",
        ],
    );
    // A document of another issuer, served by another host.
    let server = DocumentServer::start().await;
    server.serve_document(|doc, _| doc["issuer"] = json!("http://127.0.0.1:1/realms/acme"));
    let refused = host.start_login(Some(&server.host())).await;
    assert_refused(
        refused,
        "provider_error",
        &["names issuer `http://127.0.0.1:1/realms/acme`"],
    );
    assert_eq!(host.provider.stats().authorization_code_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_policy_refuses_documents_and_endpoints_at_forbidden_hosts() {
    let host = DiscoveryHost::start(None).await;
    let server = DocumentServer::start().await;
    // Endpoints named by the document: a link-local (cloud metadata) address
    // that allowedHosts lists is refused by the address filter; a host that
    // allowedHosts does not list, by the origin check.
    server.serve_document(|doc, _| doc["token_endpoint"] = json!("http://169.254.169.254/token"));
    let refused = host.start_login(Some(&server.host())).await;
    assert_refused(
        refused,
        "connector_error",
        &[
            "field `token_endpoint`",
            "169.254.169.254",
            "AddressBlocked",
        ],
    );
    server.serve_document(|doc, _| {
        doc["authorization_endpoint"] = json!("https://login.evil.example/authorize")
    });
    let refused = host.start_login(Some(&server.host())).await;
    assert_refused(
        refused,
        "connector_error",
        &["field `authorization_endpoint`", "OriginNotAllowed"],
    );
    // The discovery URL itself, on a private address: refused before
    // anything is sent, and audited.
    let refused = host.start_login(Some("169.254.169.254")).await;
    assert_refused(
        refused,
        "connector_error",
        &[
            "OAuth discovery URL `http://169.254.169.254/realms/acme/",
            "refused by the outbound policy",
        ],
    );
    let refused = host.start_login(Some("10.1.2.3:8080")).await;
    assert_refused(refused, "connector_error", &["OriginNotAllowed"]);
    let audited = host.fetches_of(DISCOVERY_PATH);
    assert!(
        audited
            .iter()
            .any(|e| e.outcome == AuditOutcome::Refused
                && e.host.as_deref() == Some("169.254.169.254")),
        "{audited:?}"
    );
    // The document server was asked twice (for the two bad documents).
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_malformed_or_incomplete_documents_give_clear_errors() {
    let host = DiscoveryHost::start(None).await;
    let server = DocumentServer::start().await;
    let hostname = server.host();
    let start = || host.start_login(Some(&hostname));

    let padding = "x".repeat(70 << 10);
    server.serve_document(|doc, _| doc["padding"] = json!(padding));
    assert_refused(
        start().await,
        "provider_error",
        &["larger than 65536 bytes"],
    );
    server.serve(Answer::streamed(vec![b' '; 70 << 10]));
    assert_refused(
        start().await,
        "provider_error",
        &["larger than 65536 bytes"],
    );
    server.serve(Answer::new(200, b"<html>sign in</html>".to_vec()));
    assert_refused(start().await, "provider_error", &["is not a JSON object"]);
    server.serve(Answer::new(404, b"{}".to_vec()));
    assert_refused(start().await, "provider_error", &["answered HTTP 404"]);
    server.serve_document(|doc, _| {
        doc.as_object_mut().unwrap().remove("token_endpoint");
    });
    assert_refused(
        start().await,
        "provider_error",
        &["field `token_endpoint` is missing"],
    );
    server.serve_document(|doc, _| doc["issuer"] = json!(42));
    assert_refused(
        start().await,
        "provider_error",
        &["field `issuer` is not a string"],
    );
    // None of those was kept: each start asked again.
    assert_eq!(server.requests(), 6);
    // A well-formed document without PKCE S256 is read (and cached), and
    // every login with it refused.
    server.serve_document(|doc, _| doc["code_challenge_methods_supported"] = json!(["plain"]));
    for _ in 0..2 {
        assert_refused(
            start().await,
            "provider_error",
            &["field `code_challenge_methods_supported`", "S256"],
        );
    }
    assert_eq!(server.requests(), 7);

    // A good document works, and is read once.
    let good = DocumentServer::start().await;
    good.serve_document(|_, _| {});
    for _ in 0..2 {
        let (status, started) = host.start_login(Some(&good.host())).await;
        assert_eq!(status, 200, "{started}");
        let authorize = started["authorizeUrl"].as_str().unwrap();
        let expected = format!("http://{}/realms/acme/oauth/authorize?", good.host());
        assert!(authorize.starts_with(&expected), "{authorize}");
    }
    assert_eq!(good.requests(), 1);
}

/// What the document server answers.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Sent in chunks without a length.
    streamed: bool,
}

impl Answer {
    fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            body,
            streamed: false,
        }
    }

    fn streamed(body: Vec<u8>) -> Self {
        Self {
            streamed: true,
            ..Self::new(200, body)
        }
    }
}

/// A server on 127.0.0.1 answering every request with the current
/// [`Answer`], counting the requests.
struct DocumentServer {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<(Answer, usize)>>,
}

impl DocumentServer {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new((Answer::new(404, Vec::new()), 0)));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// `127.0.0.1:PORT`, the hostname a login passes.
    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn serve(&self, answer: Answer) {
        self.state.lock().unwrap().0 = answer;
    }

    /// A good document of realm `acme` at this server, changed by `change`.
    fn serve_document(&self, change: impl FnOnce(&mut Value, &str)) {
        let base = format!("http://{}", self.addr);
        let mut document = json!({
            "issuer": format!("{base}/realms/acme"),
            "authorization_endpoint": format!("{base}/realms/acme/oauth/authorize"),
            "token_endpoint": format!("{base}/realms/acme/oauth/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        });
        change(&mut document, &base);
        self.serve(Answer::new(200, document.to_string().into_bytes()));
    }

    /// Requests answered so far.
    fn requests(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

async fn answer(State(state): State<Arc<Mutex<(Answer, usize)>>>) -> Response {
    let answer = {
        let mut state = state.lock().unwrap();
        state.1 += 1;
        state.0.clone()
    };
    let status = axum::http::StatusCode::from_u16(answer.status).unwrap();
    let body = if answer.streamed {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            answer.body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(answer.body)
    };
    (status, [("content-type", "application/json")], body).into_response()
}

#[test]
fn inspect_shows_the_discovery_url() {
    let inspect = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host-under-test"))
            .arg("inspect")
            .args(args)
            .arg(guest("discovery_realm"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let url = "http://{hostname}/realms/acme/.well-known/openid-configuration";
    let report: Value = serde_json::from_str(&inspect(&["--json"])).unwrap();
    assert_eq!(report["authPage"]["discoveryUrl"], url, "{report}");
    let auth_url = report["authPage"]["authUrl"].as_str().unwrap_or_default();
    assert!(auth_url.is_empty(), "{report}");
    let text = inspect(&[]);
    assert!(text.contains(&format!("discoveryUrl {url}")), "{text}");
    assert!(text.contains("authUrl      (from discovery)"), "{text}");
}
