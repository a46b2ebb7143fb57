//! The connection flows: what the host does when a platform connects, checks
//! or disconnects one of its users (App Connect seeds 001/002). The API layer
//! (`api::flows`) only translates HTTP to these calls.
//!
//! Every flow runs the connector's hooks with the secrets injected by the host
//! (the guest never receives them), and saves nothing unless every step
//! succeeded.

mod api_key;
mod error;
mod lifecycle;
mod local;
mod managed;
mod oauth;
pub mod refresh;
mod refresher;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

pub use api_key::{ApiKeyLogin, AuthPageView};
pub use error::FlowError;
pub use lifecycle::{
    DEFAULT_LEASE_TTL_MS, ProxyRequest, ProxyResponse, RawCredentials, RefreshCoordinator,
    cooldown_secs,
};
pub use managed::{
    MASK, ManagedFieldView, ManagedFields, ManagedFieldsUpdate, ManagedOAuthAppView,
    ManagedOAuthInput, ManagedOAuthSaved, ManagedOAuthView,
};
pub use oauth::{OAuthCallback, OAuthConnected, OAuthStart, OAuthStarted};
pub use refresher::{RefreshRun, RefresherSettings};

use connector_sandbox::capabilities::http::{ApiKeyCredential, ApiKeyPlacement, CallCredentials};
use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, ManagedScope};
use crate::registry::{LoadedConnector, Registry};
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{self, ConnectionInfo};
use crate::store::{
    Connection, ConnectionRef, ConnectionStatus, ConnectionStore, ManagedStore, OAuthStateStore,
};
use secrecy::ExposeSecret;

/// The flows, over the live connectors and the connection store.
#[derive(Clone)]
pub struct Flows {
    registry: Arc<Registry>,
    connections: ConnectionStore,
    states: OAuthStateStore,
    managed: ManagedStore,
    refresh: Arc<RefreshCoordinator>,
    events: crate::events::Events,
}

/// The outcome of a logout.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResult {
    /// The connection, now revoked, without credentials.
    pub connection: Connection,
    /// The connector's message, if any.
    pub message: Option<String>,
    /// The provider confirmed the RFC 7009 revocation.
    pub revoked_at_provider: bool,
    /// Problems during provider-side cleanup (our copy is cleared regardless).
    pub warnings: Vec<String>,
}

/// The outcome of `auth-validation`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    /// The connection works.
    pub successful: bool,
    /// The status the CRM answered with.
    pub status: Option<u16>,
    /// Why not.
    pub fail_reason: Option<String>,
    /// The connection after validation (marked as needing re-auth on a 401).
    pub connection: Connection,
}

impl Flows {
    /// Flows over `registry` and `connections`.
    pub fn new(
        registry: Arc<Registry>,
        connections: ConnectionStore,
        states: OAuthStateStore,
    ) -> Self {
        let database = connections.database().clone();
        Self {
            managed: connections.managed(),
            refresh: Arc::new(RefreshCoordinator::new(
                crate::store::LeaseStore::new(database.clone()),
                DEFAULT_LEASE_TTL_MS,
            )),
            events: crate::events::Events::new(database, None)
                .expect("disabled events need no configuration"),
            registry,
            connections,
            states,
        }
    }

    /// Publishes connection events through `events` (webhooks).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = events;
        self
    }

    /// Sets how long a refresh lease lasts before another holder may take it
    /// (default [`DEFAULT_LEASE_TTL_MS`]).
    pub fn with_lease_ttl_ms(mut self, ttl_ms: i64) -> Self {
        let leases = crate::store::LeaseStore::new(self.connections.database().clone());
        self.refresh = Arc::new(RefreshCoordinator::new(leases, ttl_ms));
        self
    }

    /// The events publisher.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    fn connector(&self, id: &str) -> Result<Arc<LoadedConnector>, FlowError> {
        self.registry
            .get(id)
            .ok_or_else(|| FlowError::UnknownConnector(id.to_string()))
    }

    async fn connection(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        self.connections
            .get(at)
            .await?
            .ok_or_else(|| FlowError::UnknownConnection(at.id.to_string()))
    }

    /// What hooks acting on an existing connection see.
    fn info(connection: &Connection) -> ConnectionInfo {
        ConnectionInfo {
            hostname: connection.hostname.clone(),
            platform_user_id: connection.platform_user_id.clone(),
            additional_info: connection.additional_info.clone(),
        }
    }

    /// What hooks acting on `connection` see: its saved values plus the
    /// current values of hidden admin-managed fields (which are not saved
    /// with connections).
    async fn hook_info(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<ConnectionInfo, FlowError> {
        let mut info = Self::info(connection);
        let Some(block) = &connector.info.manifest.auth.api_key else {
            return Ok(info);
        };
        let hidden: Vec<_> = block
            .page
            .content
            .iter()
            .filter(|f| f.managed && f.hidden && f.key != connector_abi::manifest::API_KEY_FIELD)
            .filter(|f| !info.additional_info.iter().any(|(k, _)| k == &f.key))
            .collect();
        if hidden.is_empty() {
            return Ok(info);
        }
        let (account, connector_id) = (&connection.account_id, &connection.connector_id);
        let for_account = self.managed.fields(account, connector_id, None).await?;
        let for_user = self
            .managed
            .fields(account, connector_id, Some(&connection.user_id))
            .await?;
        for field in hidden {
            let stored = match field.managed_scope.unwrap_or(ManagedScope::Account) {
                ManagedScope::Account => for_account.get(&field.key),
                ManagedScope::User => for_user.get(&field.key),
            };
            if let Some(value) = stored {
                info.additional_info
                    .push((field.key.clone(), value.expose_secret().to_string()));
            }
        }
        Ok(info)
    }

    /// The call context of a stored connection: its decrypted secrets, the API
    /// key placed as the connector's `basic-auth` hook says.
    async fn context(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<CallContext, FlowError> {
        if connection.status == ConnectionStatus::Revoked {
            return Err(FlowError::NotUsable(format!(
                "connection `{}` is logged out",
                connection.id
            )));
        }
        let secrets = self.connections.secrets(connection).await?;
        self.context_from(connector, connection, secrets).await
    }

    /// [`Flows::context`] with secrets already decrypted.
    async fn context_from(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
        secrets: crate::store::ConnectionSecrets,
    ) -> Result<CallContext, FlowError> {
        let mut credentials = CallCredentials {
            access_token: secrets.access_token,
            ..Default::default()
        };
        if let Some(key) = secrets.api_key {
            let bare = CallContext {
                account_id: Some(connection.account_id.clone()),
                ..CallContext::default()
            };
            let info = self.hook_info(connector, connection).await?;
            let fields = info
                .additional_info
                .iter()
                .cloned()
                .collect::<BTreeMap<_, _>>();
            let placement = connector.prepared.basic_auth(&bare, info).await.result?;
            credentials.api_key = Some(ApiKeyCredential {
                key,
                placement: placement_from(placement),
                fields,
            });
        }
        Ok(CallContext {
            account_id: Some(connection.account_id.clone()),
            user_id: Some(connection.user_id.clone()),
            credentials: Arc::new(credentials),
            deny_outbound: false,
        })
    }

    /// The connection, its token refreshed first when it is active and due
    /// (so a hook never judges a refreshable token as rejected); inactive
    /// connections as they are.
    async fn refreshed_if_active(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        match self.fresh_connection(at).await {
            Err(FlowError::NotUsable(_)) => self.connection(at).await,
            other => other,
        }
    }

    /// Logout: the connector's `unauthorize` hook (if any), then always clears
    /// our copy of the credentials.
    pub async fn logout(&self, at: ConnectionRef<'_>) -> Result<LogoutResult, FlowError> {
        let connection = self.connection(at).await?;
        let was_active = connection.status != ConnectionStatus::Revoked;
        let mut message = None;
        let mut warnings = Vec::new();
        let connector = self.registry.get(&connection.connector_id);
        match connector {
            Some(connector)
                if connector.prepared.implements(Hook::Unauthorize)
                    && connection.status != ConnectionStatus::Revoked =>
            {
                let prepared = match self.context(&connector, &connection).await {
                    Ok(ctx) => self
                        .hook_info(&connector, &connection)
                        .await
                        .map(|info| (ctx, info)),
                    Err(error) => Err(error),
                };
                match prepared {
                    Ok((ctx, info)) => {
                        match connector.prepared.unauthorize(&ctx, info).await.result {
                            Ok(text) => message = text,
                            Err(error) => {
                                warnings.push(format!("unauthorize hook failed: {error}"))
                            }
                        }
                    }
                    Err(error) => {
                        warnings.push(format!("cannot prepare the unauthorize hook: {error}"))
                    }
                }
            }
            Some(_) => {}
            None => warnings.push(format!(
                "connector `{}` is not loaded: no provider-side cleanup",
                connection.connector_id
            )),
        }
        let mut revoked_at_provider = false;
        if let Some(connector) = self.registry.get(&connection.connector_id)
            && connection.status != ConnectionStatus::Revoked
        {
            match self.revoke_at_provider(&connector, &connection).await {
                Ok(revoked) => revoked_at_provider = revoked,
                Err(warning) => warnings.push(warning),
            }
        }
        self.connections.clear_credentials(at).await?;
        for warning in &warnings {
            tracing::warn!(connection = %at.id, "{warning}");
        }
        let connection = self.connection(at).await?;
        if was_active {
            self.emit(crate::events::EventKind::Revoked, &connection, "logout")
                .await;
        }
        Ok(LogoutResult {
            connection,
            message,
            revoked_at_provider,
            warnings,
        })
    }

    /// `auth-validation`; a 401 from the CRM marks the connection as needing re-auth.
    pub async fn validate(&self, at: ConnectionRef<'_>) -> Result<ValidationResult, FlowError> {
        let connection = self.refreshed_if_active(at).await?;
        let connector = self.connector(&connection.connector_id)?;
        let ctx = self.context(&connector, &connection).await?;
        let info = self.hook_info(&connector, &connection).await?;
        let outcome = connector.prepared.auth_validation(&ctx, info).await.result;
        let (successful, status, fail_reason) = match outcome {
            Ok(v) => (v.successful, v.status, v.fail_reason),
            Err(error) => match FlowError::from(error) {
                FlowError::InvalidCredentials(m) => (false, Some(401), Some(m)),
                other => return Err(other),
            },
        };
        if !successful && status == Some(401) {
            self.connections
                .set_status(at, ConnectionStatus::NeedsReauth)
                .await?;
        }
        let connection = self.connection(at).await?;
        if !successful && status == Some(401) {
            self.emit(
                crate::events::EventKind::NeedsReauth,
                &connection,
                "validation: the provider refused the credentials",
            )
            .await;
        }
        Ok(ValidationResult {
            successful,
            status,
            fail_reason,
            connection,
        })
    }

    /// `refresh-user-info` (or `user-info` when the connector has no refresh
    /// variant); saves the new identity.
    pub async fn refresh_user_info(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        let connection = self.refreshed_if_active(at).await?;
        let connector = self.connector(&connection.connector_id)?;
        let ctx = self.context(&connector, &connection).await?;
        let info = self.hook_info(&connector, &connection).await?;
        let identity = if connector.prepared.implements(Hook::RefreshUserInfo) {
            connector
                .prepared
                .refresh_user_info(&ctx, info)
                .await
                .result?
        } else {
            connector.prepared.user_info(&ctx, info).await.result?
        };
        // Hidden admin-managed values stay out of the saved values.
        let hidden = |key: &str| {
            connector
                .info
                .manifest
                .auth
                .api_key
                .as_ref()
                .is_some_and(|b| {
                    api_key::is_hidden_managed(&b.page, key)
                        && !connection.additional_info.iter().any(|(k, _)| k == key)
                })
        };
        let additional_info: Vec<(String, String)> =
            merge(&connection.additional_info, &identity.additional_info)
                .into_iter()
                .filter(|(k, _)| !hidden(k))
                .collect();
        self.connections
            .update_identity(at, &identity_fields(&identity), &additional_info)
            .await?;
        self.connection(at).await
    }

    fn require(
        connector: &LoadedConnector,
        kind: AuthKind,
        requested: &'static str,
    ) -> Result<(), FlowError> {
        let actual = connector.info.manifest.auth.kind;
        if actual == kind {
            Ok(())
        } else {
            Err(FlowError::WrongAuthType {
                connector: connector.info.manifest.id.clone(),
                actual: actual.to_string(),
                requested,
            })
        }
    }
}

/// The identity fields of a `user-info` answer.
pub(crate) fn identity_fields(identity: &hooks::UserIdentity) -> crate::store::Identity {
    crate::store::Identity {
        platform_user_id: Some(identity.platform_user_id.clone()),
        user_name: Some(identity.name.clone()),
        timezone_name: identity.timezone_name.clone(),
        timezone_offset: identity.timezone_offset.clone(),
    }
}

/// `base` with `overrides` applied (same keys replaced, new keys appended).
pub(crate) fn merge(
    base: &[(String, String)],
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .cloned()
        .collect();
    merged.extend(overrides.iter().cloned());
    merged
}

fn placement_from(placement: hooks::ApiKeyPlacement) -> ApiKeyPlacement {
    match placement {
        hooks::ApiKeyPlacement::Basic(template) => ApiKeyPlacement::Basic(template),
        hooks::ApiKeyPlacement::Bearer => ApiKeyPlacement::Bearer,
        hooks::ApiKeyPlacement::Header(name) => ApiKeyPlacement::Header(name),
        hooks::ApiKeyPlacement::Query(name) => ApiKeyPlacement::Query(name),
    }
}
