//! Logout: the connector's `unauthorize` hook (if any) and an RFC 7009
//! revocation at the provider (if the connector declares an endpoint), then
//! our copy of the credentials is cleared whatever happened at the provider.

use connector_abi::hook::Hook;

use super::FlowError;
use super::call_context::ConnectionCalls;
use super::common::{Connectors, Notifier, load};
use super::revocation::Revocation;
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionRef, ConnectionStatus, ConnectionStore};

/// The outcome of a logout.
#[derive(Debug)]
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

/// Logs connections out.
#[derive(Clone)]
pub(crate) struct LogoutFlow {
    connectors: Connectors,
    connections: ConnectionStore,
    calls: ConnectionCalls,
    revocation: Revocation,
    notifier: Notifier,
}

impl LogoutFlow {
    /// Logouts of `connections`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        calls: ConnectionCalls,
        revocation: Revocation,
        notifier: Notifier,
    ) -> Self {
        Self {
            connectors,
            connections,
            calls,
            revocation,
            notifier,
        }
    }

    /// Logs the connection out: provider-side cleanup (problems become
    /// warnings), then our copy of the credentials is always cleared.
    pub(crate) async fn logout(&self, at: ConnectionRef<'_>) -> Result<LogoutResult, FlowError> {
        let connection = load(&self.connections, at).await?;
        let was_active = connection.status != ConnectionStatus::Revoked;
        let mut message = None;
        let mut warnings = Vec::new();
        let mut revoked_at_provider = false;
        match self.connectors.loaded(&connection.connector_id) {
            Some(connector) if was_active => {
                match self.unauthorize(&connector, &connection).await {
                    Ok(text) => message = text,
                    Err(warning) => warnings.push(warning),
                }
                match self
                    .revocation
                    .revoke_connection(&connector, &connection)
                    .await
                {
                    Ok(revoked) => revoked_at_provider = revoked,
                    Err(warning) => warnings.push(warning),
                }
            }
            Some(_) => {}
            None => warnings.push(format!(
                "connector `{}` is not loaded: no provider-side cleanup",
                connection.connector_id
            )),
        }
        self.connections.clear_credentials(at).await?;
        for warning in &warnings {
            tracing::warn!(connection = %at.id, "{warning}");
        }
        let connection = load(&self.connections, at).await?;
        if was_active {
            self.notifier
                .emit(EventKind::Revoked, &connection, "logout")
                .await;
        }
        Ok(LogoutResult {
            connection,
            message,
            revoked_at_provider,
            warnings,
        })
    }

    /// The connector's `unauthorize` hook, if it implements it: its message,
    /// or a warning.
    async fn unauthorize(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<Option<String>, String> {
        if !connector.prepared.implements(Hook::Unauthorize) {
            return Ok(None);
        }
        let prepared = async {
            let ctx = self.calls.context(connector, connection).await?;
            let info = self.calls.info(connector, connection).await?;
            Ok::<_, FlowError>((ctx, info))
        };
        let (ctx, info) = prepared
            .await
            .map_err(|error| format!("cannot prepare the unauthorize hook: {error}"))?;
        connector
            .prepared
            .unauthorize(&ctx, info)
            .await
            .result
            .map_err(|error| format!("unauthorize hook failed: {error}"))
    }
}
