//! What several flows share: the live connectors, stored connections, the
//! event publisher, and small helpers on hook answers.

use std::sync::Arc;

use connector_abi::manifest::{AuthKind, OAuthBlock};
use connector_sandbox::capabilities::http::Outbound;
use connector_sandbox::wit::hooks;

use super::FlowError;
use crate::events::{EventKind, Events};
use crate::registry::{LoadedConnector, Registry, Snapshot};
use crate::store::{Connection, ConnectionRef, ConnectionStore, Identity};

/// The live connectors, as the flows look them up (the registry's current
/// snapshot at each call: a connector may be replaced between two steps).
#[derive(Clone)]
pub(crate) struct Connectors {
    registry: Arc<Registry>,
    placements: Arc<super::placement::Placements>,
}

impl Connectors {
    /// Connectors of `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            placements: Arc::default(),
        }
    }

    /// Where `connector` puts an API key (its `basic-auth` answer checked
    /// once per version: [`super::placement`]).
    pub(crate) async fn api_key_placement(
        &self,
        connector: &LoadedConnector,
        ctx: &connector_sandbox::runtime::CallContext,
        info: connector_sandbox::wit::hooks::ConnectionInfo,
    ) -> Result<connector_sandbox::capabilities::http::ApiKeyPlacement, FlowError> {
        self.placements
            .api_key_placement(connector, ctx, info)
            .await
    }

    /// The loaded connector `id`, if any.
    pub(crate) fn loaded(&self, id: &str) -> Option<Arc<LoadedConnector>> {
        self.registry.get(id)
    }

    /// The loaded connector `id`, or [`FlowError::UnknownConnector`].
    pub(crate) fn get(&self, id: &str) -> Result<Arc<LoadedConnector>, FlowError> {
        self.loaded(id)
            .ok_or_else(|| FlowError::UnknownConnector(id.to_string()))
    }

    /// The loaded connector `id`, which must use `kind` auth (`requested`
    /// names it in the error).
    pub(crate) fn of_kind(
        &self,
        id: &str,
        kind: AuthKind,
        requested: &'static str,
    ) -> Result<Arc<LoadedConnector>, FlowError> {
        let connector = self.get(id)?;
        require(&connector, kind, requested)?;
        Ok(connector)
    }

    /// A loaded connector that uses OAuth, with its manifest's OAuth block.
    pub(crate) fn oauth(&self, id: &str) -> Result<(Arc<LoadedConnector>, OAuthBlock), FlowError> {
        let connector = self.of_kind(id, AuthKind::OAuth, "oauth")?;
        let block = oauth_block(&connector);
        Ok((connector, block))
    }

    /// The shared outbound client and policy checks of the runtime.
    pub(crate) fn outbound(&self) -> &Arc<Outbound> {
        self.registry.runtime().outbound()
    }

    /// Every loaded connector (and load errors), now.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.registry.snapshot()
    }
}

/// Fails with [`FlowError::WrongAuthType`] unless `connector` uses `kind`.
pub(crate) fn require(
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

/// The OAuth block of a connector checked to use OAuth.
pub(crate) fn oauth_block(connector: &LoadedConnector) -> OAuthBlock {
    connector
        .info
        .manifest
        .auth
        .oauth
        .clone()
        .expect("an oauth manifest has its block")
}

/// The stored connection at `at`, or [`FlowError::UnknownConnection`].
pub(crate) async fn load(
    connections: &ConnectionStore,
    at: ConnectionRef<'_>,
) -> Result<Connection, FlowError> {
    connections
        .get(at)
        .await?
        .ok_or_else(|| FlowError::UnknownConnection(at.id.to_string()))
}

/// Publishes connection events (webhooks).
#[derive(Clone)]
pub(crate) struct Notifier {
    events: Events,
}

impl Notifier {
    /// A publisher through `events`.
    pub(crate) fn new(events: Events) -> Self {
        Self { events }
    }

    /// Publishes an event; a failure to record it is logged, never fatal.
    pub(crate) async fn emit(&self, kind: EventKind, connection: &Connection, detail: &str) {
        crate::telemetry::connection_event(&connection.connector_id, kind.as_str());
        if let Err(error) = self.events.emit(kind, connection, Some(detail)).await {
            tracing::error!(%error, connection = %connection.id, "could not record an event");
        }
    }
}

/// The identity fields of a `user-info` answer.
pub(crate) fn identity_fields(identity: &hooks::UserIdentity) -> Identity {
    Identity {
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
