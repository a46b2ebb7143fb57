//! The connection flows: what the host does when a platform connects, checks
//! or disconnects one of its users (App Connect seeds 001/002). The API layer
//! (`api::flows`, `api::admin`) only translates HTTP to these calls.
//!
//! Every flow runs the connector's hooks with the secrets injected by the host
//! (the guest never receives them), and saves nothing unless every step
//! succeeded. Each flow is a small type holding only what it needs; [`Flows`]
//! owns them all and is what the API, the CLI and the authoring tools call.
//!
//! | module | flow |
//! |---|---|
//! | `login_page` | the login page of a connector |
//! | `api_key` | API-key login |
//! | `oauth_start`, `oauth_callback` | OAuth login: start, and the provider's redirect back |
//! | `client_credentials` | OAuth client-credentials connections (no user redirect) |
//! | `logout`, `revocation` | logout; RFC 7009 revocation at the provider |
//! | `validation`, `validator` | `auth-validation`, `refresh-user-info`; the background validation |
//! | `proxy`, `passthrough` | the authenticated proxy (JSON envelope; pass-through, streamed), raw credentials |
//! | [`refresh`], `fresh`, `coordinator`, `refresher` | token refresh; single flight; the background refresher |
//! | `managed`, `managed_apps` | admin-managed credentials; which OAuth application a login uses |
//! | `oauth_client`, `token_endpoint` | `oauth-info` and the client secret; the one token-endpoint client |
//! | `discovery` | OAuth discovery documents (`auth.oauth.discoveryUrl`): read, checked, cached |
//! | `call_context`, `common` | what hooks on a stored connection get; shared lookups and events |

mod api_key;
mod call_context;
mod client_credentials;
mod common;
mod coordinator;
mod discovery;
mod error;
mod fresh;
mod login_page;
mod logout;
mod managed;
mod managed_apps;
mod oauth_callback;
mod oauth_client;
mod oauth_start;
mod passthrough;
mod placement;
mod proxy;
mod proxy_retry;
pub mod refresh;
mod refresher;
mod renewal;
mod revocation;
mod token_endpoint;
mod validation;
mod validator;

use std::sync::Arc;

pub use api_key::ApiKeyLogin;
pub use client_credentials::ClientCredentialsLogin;
pub use coordinator::{
    DEFAULT_LEASE_TTL_MS, DEFAULT_MAX_WAIT_MS, LeaseSettings, RefreshCoordinator, cooldown_secs,
};
pub use error::FlowError;
pub use login_page::AuthPageView;
pub use logout::LogoutResult;
pub use managed::{
    MASK, ManagedFieldView, ManagedFields, ManagedFieldsUpdate, ManagedOAuthAppView,
    ManagedOAuthInput, ManagedOAuthSaved, ManagedOAuthView,
};
pub use oauth_callback::{OAuthCallback, OAuthConnected};
pub use oauth_client::DEFAULT_CLIENT_AUTH;
pub use oauth_start::{OAuthStart, OAuthStarted};
pub use passthrough::PassthroughRequest;
pub use placement::checked_placement;
pub use proxy::{ProxyRequest, ProxyResponse, RawCredentials};
pub use refresher::{RefreshRun, RefresherSettings};
pub use validation::ValidationResult;
pub use validator::{ValidationRun, ValidationSettings};

use crate::events::Events;
use crate::registry::Registry;
use crate::store::{
    Connection, ConnectionRef, ConnectionSecrets, ConnectionStore, LeaseStore, OAuthStateStore,
};
use refresh::{RefreshError, Refreshed};

/// The flows, over the live connectors and the connection store. Cloning is
/// cheap (one shared set of flows).
#[derive(Clone)]
pub struct Flows {
    inner: Arc<Inner>,
}

/// What the flows are built from (kept to rebuild them with other settings).
#[derive(Clone)]
struct Parts {
    registry: Arc<Registry>,
    connections: ConnectionStore,
    states: OAuthStateStore,
    events: Events,
    leases: LeaseSettings,
}

/// Every flow, each holding only what it needs.
struct Inner {
    parts: Parts,
    login_page: login_page::LoginPage,
    api_key: api_key::ApiKeyFlow,
    oauth_start: oauth_start::OAuthStartFlow,
    oauth_callback: oauth_callback::OAuthCallbackFlow,
    client_credentials: client_credentials::ClientCredentialsFlow,
    logout: logout::LogoutFlow,
    validation: validation::ValidationFlow,
    token_refresh: refresh::TokenRefresh,
    fresh: fresh::FreshConnections,
    proxy: proxy::ProxyFlow,
    managed: managed::ManagedCredentials,
    refresher: refresher::BackgroundRefresher,
    validator: validator::BackgroundValidator,
}

/// The pieces several flows share, built once per [`Inner`].
struct Shared {
    connectors: common::Connectors,
    connections: ConnectionStore,
    managed: crate::store::ManagedStore,
    notifier: common::Notifier,
    calls: call_context::ConnectionCalls,
    apps: managed_apps::ManagedApps,
    oauth: oauth_client::OAuthClients,
    revocation: revocation::Revocation,
    token_refresh: refresh::TokenRefresh,
    fresh: fresh::FreshConnections,
}

impl Shared {
    fn new(parts: &Parts) -> Self {
        let connectors = common::Connectors::new(parts.registry.clone());
        let connections = parts.connections.clone();
        let managed = connections.managed();
        let notifier = common::Notifier::new(parts.events.clone());
        let apps = managed_apps::ManagedApps::new(managed.clone());
        let oauth = oauth_client::OAuthClients::new(connectors.clone());
        let (c, cs) = (&connectors, &connections);
        let revocation =
            revocation::Revocation::new(c.clone(), cs.clone(), apps.clone(), oauth.clone());
        let token_refresh =
            refresh::TokenRefresh::new(c.clone(), cs.clone(), apps.clone(), oauth.clone());
        let coordinator = Arc::new(RefreshCoordinator::new(
            LeaseStore::new(connections.database().clone()),
            &parts.leases,
        ));
        let fresh = fresh::FreshConnections::new(
            c.clone(),
            cs.clone(),
            notifier.clone(),
            coordinator,
            token_refresh.clone(),
        );
        Self {
            calls: call_context::ConnectionCalls::new(c.clone(), cs.clone(), managed.clone()),
            connectors,
            connections,
            managed,
            notifier,
            apps,
            oauth,
            revocation,
            token_refresh,
            fresh,
        }
    }
}

impl Inner {
    /// Wires the flows over `parts`.
    fn new(parts: Parts) -> Self {
        let s = Shared::new(&parts);
        let (c, cs, n) = (&s.connectors, &s.connections, &s.notifier);
        let validation = validation::ValidationFlow::new(
            c.clone(),
            cs.clone(),
            s.calls.clone(),
            s.fresh.clone(),
            n.clone(),
        );
        Self {
            login_page: login_page::LoginPage::new(c.clone()),
            api_key: api_key::ApiKeyFlow::new(c.clone(), cs.clone(), s.managed.clone(), n.clone()),
            oauth_start: oauth_start::OAuthStartFlow::new(
                c.clone(),
                parts.states.clone(),
                s.apps.clone(),
                s.oauth.clone(),
            ),
            oauth_callback: oauth_callback::OAuthCallbackFlow::new(
                c.clone(),
                parts.states.clone(),
                s.apps.clone(),
                s.oauth.clone(),
                cs.clone(),
                n.clone(),
                s.revocation.clone(),
            ),
            client_credentials: client_credentials::ClientCredentialsFlow::new(
                c.clone(),
                s.apps.clone(),
                s.oauth.clone(),
                cs.clone(),
                n.clone(),
                s.revocation.clone(),
            ),
            logout: logout::LogoutFlow::new(
                c.clone(),
                cs.clone(),
                s.calls.clone(),
                s.revocation.clone(),
                n.clone(),
            ),
            validation: validation.clone(),
            validator: validator::BackgroundValidator::new(c.clone(), cs.clone(), validation),
            proxy: proxy::ProxyFlow::new(c.clone(), cs.clone(), s.calls.clone(), s.fresh.clone()),
            managed: managed::ManagedCredentials::new(
                c.clone(),
                s.managed.clone(),
                cs.clone(),
                n.clone(),
            ),
            refresher: refresher::BackgroundRefresher::new(c.clone(), cs.clone(), s.fresh.clone()),
            token_refresh: s.token_refresh.clone(),
            fresh: s.fresh.clone(),
            parts,
        }
    }
}

impl Flows {
    /// Flows over `registry` and `connections`, with logins pending in
    /// `states`; events disabled and the default lease lifetime.
    pub fn new(
        registry: Arc<Registry>,
        connections: ConnectionStore,
        states: OAuthStateStore,
    ) -> Self {
        let events = Events::new(connections.database().clone(), connections.keys(), None)
            .expect("disabled events need no configuration");
        Self::from_parts(Parts {
            registry,
            connections,
            states,
            events,
            leases: LeaseSettings::default(),
        })
    }

    fn from_parts(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner::new(parts)),
        }
    }

    /// Publishes connection events through `events` (webhooks).
    pub fn with_events(self, events: Events) -> Self {
        Self::from_parts(Parts {
            events,
            ..self.inner.parts.clone()
        })
    }

    /// Sets how long a refresh lease lasts before another holder may take it
    /// (default [`DEFAULT_LEASE_TTL_MS`]).
    pub fn with_lease_ttl_ms(self, ttl_ms: i64) -> Self {
        let leases = LeaseSettings {
            lease_ttl_ms: ttl_ms.max(1) as u64,
            ..self.inner.parts.leases.clone()
        };
        self.with_lease_settings(leases)
    }

    /// Sets the refresh lease and how long callers wait for another holder's
    /// refresh (`[refresh]`).
    pub fn with_lease_settings(self, leases: LeaseSettings) -> Self {
        Self::from_parts(Parts {
            leases,
            ..self.inner.parts.clone()
        })
    }

    /// The events publisher.
    pub fn events(&self) -> &Events {
        &self.inner.parts.events
    }

    /// The login page of a connector; `manual` asks for the full form (every
    /// field, managed ones included).
    pub fn auth_page(&self, connector_id: &str, manual: bool) -> Result<AuthPageView, FlowError> {
        self.inner.login_page.view(connector_id, manual)
    }

    /// Logs a user in with an API key. Saves nothing unless `user-info` succeeds.
    pub async fn api_key_login(
        &self,
        connector_id: &str,
        login: ApiKeyLogin,
    ) -> Result<Connection, FlowError> {
        self.inner.api_key.login(connector_id, login).await
    }

    /// Builds the authorize URL and records the pending authorization.
    pub async fn oauth_start(
        &self,
        connector_id: &str,
        start: OAuthStart,
    ) -> Result<OAuthStarted, FlowError> {
        self.inner.oauth_start.start(connector_id, start).await
    }

    /// [`Flows::oauth_start`], with `redirect_uri` sent to the provider (and
    /// used for the code exchange) instead of the connector's. For local
    /// tools only: `redirect_uri` must be an `http` URL on a loopback address
    /// (`127.0.0.1`, `[::1]` or `localhost`).
    pub async fn oauth_start_with_local_redirect(
        &self,
        connector_id: &str,
        start: OAuthStart,
        redirect_uri: &str,
    ) -> Result<OAuthStarted, FlowError> {
        self.inner
            .oauth_start
            .start_with_local_redirect(connector_id, start, redirect_uri)
            .await
    }

    /// [`Flows::oauth_start`], with the provider sending the user back to
    /// the host's own callback page (`redirect_uri`, built by the console
    /// from the operator's `[console] public_url`, never from a request).
    pub async fn oauth_start_with_host_redirect(
        &self,
        connector_id: &str,
        start: OAuthStart,
        redirect_uri: &str,
    ) -> Result<OAuthStarted, FlowError> {
        self.inner
            .oauth_start
            .start_redirected(connector_id, start, redirect_uri)
            .await
    }

    /// The account a live OAuth state belongs to, without consuming it.
    pub async fn state_account(&self, state: &str) -> anyhow::Result<Option<String>> {
        self.inner.oauth_callback.state_account(state).await
    }

    /// Completes a login from the provider's redirect.
    pub async fn oauth_callback(
        &self,
        callback: OAuthCallback,
    ) -> Result<OAuthConnected, FlowError> {
        self.inner.oauth_callback.complete(callback).await
    }

    /// Creates an OAuth connection with the client-credentials grant (no
    /// user redirect) for a connector declaring `grantType:
    /// client_credentials`. Saves nothing unless every step succeeds.
    pub async fn client_credentials_login(
        &self,
        connector_id: &str,
        login: ClientCredentialsLogin,
    ) -> Result<Connection, FlowError> {
        self.inner
            .client_credentials
            .connect(connector_id, login)
            .await
    }

    /// Logout: the connector's `unauthorize` hook (if any) and revocation at
    /// the provider, then always clears our copy of the credentials.
    pub async fn logout(&self, at: ConnectionRef<'_>) -> Result<LogoutResult, FlowError> {
        self.inner.logout.logout(at).await
    }

    /// `auth-validation`; a 401 from the CRM marks the connection as needing re-auth.
    pub async fn validate(&self, at: ConnectionRef<'_>) -> Result<ValidationResult, FlowError> {
        self.inner.validation.validate(at).await
    }

    /// `test-connection` (Membrane `test`): the connector checks the
    /// credentials; its message for the user. Changes nothing.
    pub async fn test_connection(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<String>, FlowError> {
        self.inner.validation.test_connection(at).await
    }

    /// Refreshes the connection's access token now, due or not; single
    /// flight with every other refresh of it, across replicas.
    pub async fn force_refresh(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        self.inner.fresh.force_refresh(at).await
    }

    /// `refresh-user-info` (or `user-info` when the connector has no refresh
    /// variant); saves the new identity.
    pub async fn refresh_user_info(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        self.inner.validation.refresh_user_info(at).await
    }

    /// Refreshes the access token of a connection with its stored refresh
    /// token, and stores the result encrypted. Not single flight: the API and
    /// the background refresher use [`Flows::fresh_connection`].
    pub async fn refresh_tokens(&self, at: ConnectionRef<'_>) -> Result<Refreshed, RefreshError> {
        self.inner.token_refresh.refresh(at, None).await
    }

    /// The connection, with its access token refreshed first when it is within
    /// the connector's refresh margin. Fails when the connection is logged
    /// out or needs re-auth.
    pub async fn fresh_connection(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        self.inner.fresh.get(at).await
    }

    /// The pass-through proxy: sends the platform's request to the provider
    /// through the connection `at` (read with its secrets just before,
    /// `fetched`), bodies streamed both ways (`flows/passthrough.rs`).
    pub async fn passthrough(
        &self,
        at: ConnectionRef<'_>,
        request: PassthroughRequest,
        fetched: Option<(Connection, ConnectionSecrets)>,
    ) -> Result<connector_sandbox::capabilities::http::StreamedResponse, FlowError> {
        self.inner.proxy.passthrough(at, request, fetched).await
    }

    /// Sends a request to the provider through a connection: the URL is
    /// checked against the connector's allowed origins, the connection's
    /// credential (access token or API key) injected, the request audited.
    pub async fn proxy(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
    ) -> Result<ProxyResponse, FlowError> {
        self.inner.proxy.proxy(at, request).await
    }

    /// [`Flows::proxy`] with the connection and its secrets already read (by
    /// `ConnectionStore::get_with_secrets` for `at`).
    pub async fn proxy_fetched(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
        fetched: Option<(Connection, ConnectionSecrets)>,
    ) -> Result<ProxyResponse, FlowError> {
        self.inner.proxy.proxy_fetched(at, request, fetched).await
    }

    /// The connection's access token, refreshed first when due (for trusted
    /// service keys that call the provider themselves).
    pub async fn raw_credentials(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<RawCredentials, FlowError> {
        self.inner.proxy.raw_credentials(at).await
    }

    /// One background pass: refreshes every due connection once, at most
    /// `settings.concurrency` at a time.
    pub async fn refresh_due(&self, settings: RefresherSettings) -> Result<RefreshRun, FlowError> {
        self.inner.refresher.refresh_due(settings).await
    }

    /// Runs [`Flows::refresh_due`] every `settings.interval` until the task is
    /// dropped or aborted.
    pub fn start_refresher(&self, settings: RefresherSettings) -> tokio::task::JoinHandle<()> {
        self.inner.refresher.start(settings)
    }

    /// One background validation pass: validates at most
    /// `settings.max_per_pass` connections without a token expiry that were
    /// not validated for `settings.interval_secs`, each claimed first so no
    /// other pass or replica validates it in the same interval.
    pub async fn validate_due(
        &self,
        settings: &ValidationSettings,
    ) -> Result<ValidationRun, FlowError> {
        self.inner.validator.validate_due(settings).await
    }

    /// Runs [`Flows::validate_due`] every `settings.pass_interval_secs` until
    /// the task is dropped or aborted.
    pub fn start_validator(&self, settings: ValidationSettings) -> tokio::task::JoinHandle<()> {
        self.inner.validator.start(settings)
    }

    /// The account's admin-managed OAuth set-up for a connector.
    pub async fn managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<ManagedOAuthView, FlowError> {
        self.inner
            .managed
            .managed_oauth(account_id, connector_id)
            .await
    }

    /// Stores an admin's OAuth application as pending and marks the
    /// account's connections to the connector as needing re-auth. Nothing is
    /// stored when a value is missing or invalid (the error names it).
    pub async fn set_managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
        input: ManagedOAuthInput,
        updated_by: &str,
    ) -> Result<ManagedOAuthSaved, FlowError> {
        self.inner
            .managed
            .set_managed_oauth(account_id, connector_id, input, updated_by)
            .await
    }

    /// Removes the account's application (active and pending) and marks its
    /// connections to the connector as needing re-auth; returns how many.
    pub async fn delete_managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<u64, FlowError> {
        self.inner
            .managed
            .delete_managed_oauth(account_id, connector_id)
            .await
    }

    /// The managed fields of one scope (the account, or `user_id` of it), as
    /// an admin sees them.
    pub async fn managed_fields(
        &self,
        account_id: &str,
        connector_id: &str,
        user_id: Option<&str>,
    ) -> Result<ManagedFields, FlowError> {
        self.inner
            .managed
            .managed_fields(account_id, connector_id, user_id)
            .await
    }

    /// Sets or clears managed field values of one scope, all or none.
    pub async fn set_managed_fields(
        &self,
        account_id: &str,
        connector_id: &str,
        user_id: Option<&str>,
        update: ManagedFieldsUpdate,
        updated_by: &str,
    ) -> Result<ManagedFields, FlowError> {
        self.inner
            .managed
            .set_managed_fields(account_id, connector_id, user_id, update, updated_by)
            .await
    }
}
