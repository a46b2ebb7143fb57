//! A local fake CRM: an OAuth 2.0 authorization server plus the two user-info
//! APIs the example connectors call, served over real HTTP on `127.0.0.1`.
//!
//! **For tests, benchmarks and demos only — never production.** It keeps
//! everything in memory, approves every authorization request without asking
//! anyone, and its users are made up. It exists so that the host's OAuth
//! client (code exchange, PKCE, refresh rotation, revocation) and the example
//! connectors can be exercised on a machine with no internet.
//!
//! What it serves (see [`DevProvider::start`]):
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /oauth/authorize` | auto-approving authorization endpoint (RFC 6749 §4.1, PKCE S256 per RFC 7636, `iss` per RFC 9207) |
//! | `POST /oauth/token` | `authorization_code` and `refresh_token` grants, with refresh-token rotation and replay detection (RFC 9700), and `client_credentials` (RFC 6749 §4.4: the scope asked for is echoed, no refresh token) |
//! | `POST /oauth/revoke` | token revocation (RFC 7009) |
//! | `GET /realms/{realm}/oauth/authorize`, `POST /realms/{realm}/oauth/token`, `POST /realms/{realm}/oauth/revoke` | the same for each configured realm ([`DevProviderConfig::realms`]), whose issuer is `http://127.0.0.1:PORT/realms/{realm}` (Keycloak style) |
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/oauth-authorization-server` | the root issuer's metadata (OpenID Connect Discovery, RFC 8414), advertising one client authentication method |
//! | `GET /realms/{realm}/.well-known/openid-configuration`, `GET /.well-known/oauth-authorization-server/realms/{realm}` | a realm's metadata (the RFC 8414 form inserts the well-known segment before the issuer's path) |
//! | `GET /api/v1/me` | the `oauth-regional` example's user info (Bearer access token) |
//! | `GET /v3.1/Users/Me` | the `apikey-insightly` example's user info (Basic API key) |
//!
//! It is strict where a real provider is strict, so a sloppy client fails
//! here too: exact redirect-URI matching, single-use codes (a replay revokes
//! what the code produced), PKCE verification, spent refresh tokens revoking
//! their whole grant, one client-authentication method per request (RFC 6749
//! §2.3: a request with credentials in both the `Authorization` header and
//! the body is refused), codes and refresh tokens usable only at the issuer
//! that issued them. Tokens are random 256-bit values and are never logged.

mod api;
mod consent;
mod discovery;
mod oauth;
mod request;
mod store;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use tokio::sync::oneshot;

use store::Store;

/// What a [`DevProvider`] accepts: its OAuth clients, its API keys and how
/// long access tokens live.
#[derive(Clone)]
pub struct DevProviderConfig {
    /// The registered OAuth clients (confidential clients: each has a secret).
    pub clients: Vec<DevClient>,
    /// The API keys `GET /v3.1/Users/Me` accepts.
    pub api_keys: Vec<String>,
    /// `expires_in` of issued access tokens, in seconds (default 3600). `0`
    /// issues access tokens that are already expired: a way to test refresh
    /// paths without sleeping.
    pub access_token_lifetime_secs: u64,
    /// Realms served beside the root issuer, Keycloak style: realm `acme`
    /// has its OAuth endpoints under `/realms/acme/oauth/` and the issuer
    /// `http://127.0.0.1:PORT/realms/acme` ([`DevProvider::realm_issuer`]).
    /// Realms share the clients and users, and access tokens of every realm
    /// work at the user-info APIs; a code or refresh token is accepted only
    /// at the issuer that issued it. Names are letters, digits, `-` and `_`.
    pub realms: Vec<String>,
    /// The URL the provider's issuers are named under when it is not the
    /// address it listens on, as for a provider behind a reverse proxy
    /// (Keycloak's frontend URL): the root issuer is this URL and realm
    /// `acme`'s is `{public_url}/realms/acme`. Default: the base URL.
    pub public_url: Option<String>,
    /// The authorization endpoint shows a consent page ("Allow" / "Deny")
    /// before it sends the browser back with a code, as a real provider
    /// does; off by default (it approves at once, for tests and
    /// benchmarks that follow redirects without a browser).
    pub consent_page: bool,
}

impl Default for DevProviderConfig {
    /// No clients, no API keys, one-hour access tokens, no realms, no
    /// consent page.
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            api_keys: Vec::new(),
            access_token_lifetime_secs: 3600,
            realms: Vec::new(),
            public_url: None,
            consent_page: false,
        }
    }
}

impl fmt::Debug for DevProviderConfig {
    /// Shows the client ids and the number of API keys, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevProviderConfig")
            .field("clients", &self.clients)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field(
                "access_token_lifetime_secs",
                &self.access_token_lifetime_secs,
            )
            .field("realms", &self.realms)
            .field("public_url", &self.public_url)
            .field("consent_page", &self.consent_page)
            .finish()
    }
}

/// One registered OAuth client.
#[derive(Clone)]
pub struct DevClient {
    /// The public client id.
    pub client_id: String,
    /// The client secret, checked on the token and revocation endpoints.
    pub client_secret: String,
    /// The redirect URIs the authorization endpoint accepts for this client,
    /// compared as exact strings (no normalisation, no prefix matching).
    pub redirect_uris: Vec<String>,
}

impl fmt::Debug for DevClient {
    /// Shows the id and redirect URIs, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// What a [`DevProvider`] has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevProviderStats {
    /// Successful `authorization_code` grants (tokens issued for a code).
    pub authorization_code_grants: u64,
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Successful `client_credentials` grants (RFC 6749 §4.4).
    pub client_credentials_grants: u64,
    /// Error answers of `POST /oauth/token`, whatever the error.
    pub token_errors: u64,
    /// `POST /oauth/revoke` requests answered 200 (including those naming an
    /// unknown token, which RFC 7009 also answers 200).
    pub revocations: u64,
    /// Requests to `GET /api/v1/me` and `GET /v3.1/Users/Me`, answered 200 or
    /// not.
    pub userinfo_requests: u64,
    /// Successful client authentications with an HTTP Basic header (token
    /// and revocation endpoints).
    pub client_auth_header: u64,
    /// Successful client authentications with body credentials only.
    pub client_auth_body: u64,
    /// Requests refused for carrying client credentials in both the
    /// `Authorization` header and the body (RFC 6749 §2.3).
    pub client_auth_two_methods: u64,
}

/// A running fake provider on `127.0.0.1`. Dropping it shuts the server down.
pub struct DevProvider {
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

/// State shared by the handlers.
struct Shared {
    /// `http://127.0.0.1:PORT`: the base URL and `instance_url`.
    base_url: String,
    /// The root issuer: the configured public URL, else `base_url`.
    issuer: String,
    config: DevProviderConfig,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
}

/// Test knobs: failures and behaviours a test turns on at run time.
#[derive(Debug, Clone)]
struct Faults {
    /// The next this many token requests answer `fail_status` untouched.
    fail_token_requests: u64,
    fail_status: u16,
    /// Refresh answers carry a new refresh token (rotation); when false they
    /// carry none and the old one stays valid.
    rotate_refresh_tokens: bool,
    /// `expires_in` of tokens issued from now on.
    access_token_lifetime_secs: u64,
    /// Answers to token requests wait here once their tokens are issued.
    hold_token_answers: Option<TokenHold>,
    /// Token requests without this header (name in lower case, exact value)
    /// are refused with `invalid_request`.
    required_token_header: Option<(String, String)>,
    /// Token answers carry no `expires_in` (the tokens still expire).
    omit_expires_in: bool,
    /// Configured API keys no longer accepted.
    revoked_api_keys: Vec<String>,
    /// The one client authentication method the metadata documents list.
    advertised_client_auth: &'static str,
}

/// Holds the answers of token requests after their tokens are issued (a
/// refresh token spent, a new one minted) until [`TokenHold::release`]: a
/// test can then make the caller go away while the answer is in flight.
#[derive(Debug, Clone)]
pub struct TokenHold(Arc<TokenHoldInner>);

#[derive(Debug)]
struct TokenHoldInner {
    held: tokio::sync::Semaphore,
    release: tokio::sync::Semaphore,
}

impl TokenHold {
    fn new() -> Self {
        Self(Arc::new(TokenHoldInner {
            held: tokio::sync::Semaphore::new(0),
            release: tokio::sync::Semaphore::new(0),
        }))
    }

    /// Waits until one more token answer is being held.
    pub async fn arrived(&self) {
        self.0.held.acquire().await.expect("never closed").forget();
    }

    /// Lets every held answer (and every later one) go.
    pub fn release(&self) {
        self.0.release.close();
    }

    /// Holds one answer until released.
    async fn hold(&self) {
        self.0.held.add_permits(1);
        // Only `release` closes it; no permit is ever added.
        let _ = self.0.release.acquire().await;
    }
}

impl Shared {
    /// The store; a handler that panicked cannot leave it half-updated in a
    /// way that matters for a test server, so poisoning is ignored.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The issuer of a configured realm.
    fn realm_issuer(&self, realm: &str) -> Option<String> {
        self.config
            .realms
            .iter()
            .any(|r| r == realm)
            .then(|| format!("{}/realms/{realm}", self.issuer))
    }

    fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.config
            .clients
            .iter()
            .find(|client| client.client_id == client_id)
    }
}

impl DevProvider {
    /// Binds `127.0.0.1:0` (a free port) and serves the endpoints listed in
    /// the [module documentation](self) on the current tokio runtime until the
    /// returned value is dropped.
    pub async fn start(config: DevProviderConfig) -> std::io::Result<DevProvider> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Like [`DevProvider::start`], on a chosen address (loopback only).
    pub async fn start_on(
        addr: SocketAddr,
        config: DevProviderConfig,
    ) -> std::io::Result<DevProvider> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the dev provider only listens on loopback addresses",
            ));
        }
        if let Some(bad) = config.realms.iter().find(|realm| {
            realm.is_empty()
                || !realm
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{bad}` is not a realm name (letters, digits, `-`, `_`)"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            issuer: config
                .public_url
                .clone()
                .unwrap_or_else(|| base_url.clone()),
            base_url,
            faults: Mutex::new(Faults {
                fail_token_requests: 0,
                fail_status: 503,
                rotate_refresh_tokens: true,
                access_token_lifetime_secs: config.access_token_lifetime_secs,
                hold_token_answers: None,
                required_token_header: None,
                omit_expires_in: false,
                revoked_api_keys: Vec::new(),
                advertised_client_auth: "client_secret_basic",
            }),
            config,
            store: Mutex::new(Store::default()),
        });
        let router = Router::new()
            .route("/oauth/authorize", get(oauth::authorize))
            .route("/oauth/token", post(oauth::token))
            .route("/oauth/revoke", post(oauth::revoke))
            .route(
                "/realms/{realm}/oauth/authorize",
                get(oauth::realm_authorize),
            )
            .route("/realms/{realm}/oauth/token", post(oauth::realm_token))
            .route("/realms/{realm}/oauth/revoke", post(oauth::realm_revoke))
            .route("/.well-known/openid-configuration", get(discovery::root))
            .route(
                "/.well-known/oauth-authorization-server",
                get(discovery::root),
            )
            .route(
                "/realms/{realm}/.well-known/openid-configuration",
                get(discovery::realm),
            )
            .route(
                "/.well-known/oauth-authorization-server/realms/{realm}",
                get(discovery::realm),
            )
            .route("/api/v1/me", get(api::me))
            .route("/v3.1/Users/Me", get(api::insightly_users_me))
            .with_state(shared.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                // Sent or dropped: either way, stop.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "dev provider stopped with an error");
            }
        });
        tracing::debug!(base_url = %shared.base_url, "dev provider listening");
        Ok(DevProvider {
            shared,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The issuer identifier sent as `iss` on authorization responses (RFC
    /// 9207) of the root endpoints (`/oauth/…`): the same as
    /// [`base_url`](Self::base_url) unless [`DevProviderConfig::public_url`]
    /// is set.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The issuer of a configured realm, `http://127.0.0.1:PORT/realms/{realm}`
    /// (under [`DevProviderConfig::public_url`] when set)
    /// (its endpoints are under `/realms/{realm}/oauth/`); `None` for a realm
    /// not in [`DevProviderConfig::realms`].
    pub fn realm_issuer(&self, realm: &str) -> Option<String> {
        self.shared.realm_issuer(realm)
    }

    /// Test knob: the next `count` requests to `POST /oauth/token` answer
    /// `status` (e.g. 503) without looking at them: a provider outage.
    pub fn fail_token_requests(&self, count: u64, status: u16) {
        let mut faults = self.shared.faults();
        faults.fail_token_requests = count;
        faults.fail_status = status;
    }

    /// Test knob: whether refresh answers rotate the refresh token (default).
    /// When off, they carry no `refresh_token` and the old one stays valid.
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        self.shared.faults().rotate_refresh_tokens = rotate;
    }

    /// Test knob: `expires_in` of the tokens issued from now on (0: already
    /// expired).
    pub fn set_access_token_lifetime_secs(&self, secs: u64) {
        self.shared.faults().access_token_lifetime_secs = secs;
    }

    /// Test knob: from now on, token requests (code exchange and refresh)
    /// without the header `name` set to exactly `value` are refused with
    /// `400 invalid_request` naming the header, as a provider that wants an
    /// API-version or partner header does; `None` stops requiring one.
    pub fn require_token_request_header(&self, header: Option<(&str, &str)>) {
        self.shared.faults().required_token_header =
            header.map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()));
    }

    /// Test knob: whether token answers leave out `expires_in` from now on
    /// (default: they carry it), as providers issuing long-lived tokens do.
    /// The tokens still expire after the configured lifetime.
    pub fn set_omit_expires_in(&self, omit: bool) {
        self.shared.faults().omit_expires_in = omit;
    }

    /// Test knob: the one client authentication method the metadata
    /// documents advertise in `token_endpoint_auth_methods_supported`
    /// (default `client_secret_basic`; `client_secret_post` for the form).
    /// What the token endpoint accepts does not change (one method per
    /// request, either one).
    pub fn set_advertised_client_auth(&self, method: &'static str) {
        self.shared.faults().advertised_client_auth = method;
    }

    /// Test knob: `GET /v3.1/Users/Me` refuses the configured API key `key`
    /// from now on (401), as a CRM does once a user revoked the key.
    pub fn revoke_api_key(&self, key: &str) {
        self.shared.faults().revoked_api_keys.push(key.to_string());
    }

    /// Test knob: hold the answer of every token request from now on, after
    /// its tokens are issued, until the returned hold is released.
    pub fn hold_token_answers(&self) -> TokenHold {
        let hold = TokenHold::new();
        self.shared.faults().hold_token_answers = Some(hold.clone());
        hold
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DevProviderStats {
        self.shared.store().stats.clone()
    }

    /// Whether `token` (an access or refresh token this provider issued) has
    /// been revoked, on its own or with its grant. `false` for unknown tokens,
    /// and for tokens that merely expired or (refresh tokens) were spent by a
    /// normal rotation.
    pub fn is_revoked(&self, token: &str) -> bool {
        self.shared.store().is_revoked(token)
    }
}

impl fmt::Debug for DevProvider {
    /// Shows the base URL only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevProvider")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

/// A fresh random value: 256 bits from the OS, base64url without padding.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of an `Authorization: <scheme> <credentials>` header if
/// the request has one naming `scheme` (case-insensitively). `Err` when the
/// header is there but unusable (another scheme, not text, several of them).
fn authorization<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let (name, credentials) = value.to_str().map_err(|_| ())?.split_once(' ').ok_or(())?;
    if !name.eq_ignore_ascii_case(scheme) {
        return Err(());
    }
    Ok(Some(credentials.trim()))
}

/// `base64(user:password)` of a Basic header, split at the first `:`.
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(credentials).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
