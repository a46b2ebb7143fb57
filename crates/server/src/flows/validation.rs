//! Checking a connection: `auth-validation` (a 401 from the CRM marks it as
//! needing re-auth), `test-connection` (Membrane `test`: the connector checks
//! the credentials, nothing is changed) and `refresh-user-info` (the identity
//! read again and saved). Each refreshes an active connection's token first
//! when it is due.

use connector_abi::hook::Hook;

use super::FlowError;
use super::api_key::is_hidden_managed;
use super::call_context::ConnectionCalls;
use super::common::{Connectors, Notifier, identity_fields, load, merge};
use super::fresh::FreshConnections;
use crate::events::EventKind;
use crate::store::{Connection, ConnectionRef, ConnectionStatus, ConnectionStore};

/// The outcome of `auth-validation`.
#[derive(Debug)]
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

/// Validates connections and refreshes their identity.
#[derive(Clone)]
pub(crate) struct ValidationFlow {
    connectors: Connectors,
    connections: ConnectionStore,
    calls: ConnectionCalls,
    fresh: FreshConnections,
    notifier: Notifier,
}

impl ValidationFlow {
    /// The call context of a hook acting on `connection`, able to renew its
    /// access token once if the provider refuses it with 401 mid-hook.
    async fn renewing_context(
        &self,
        connector: &crate::registry::LoadedConnector,
        connection: &Connection,
    ) -> Result<connector_sandbox::runtime::CallContext, FlowError> {
        let read_at = crate::store::unix_millis();
        let ctx = self.calls.context(connector, connection).await?;
        Ok(super::renewal::renewing(
            ctx,
            connection,
            read_at,
            &self.fresh,
            &self.connections,
        ))
    }

    /// Checks of `connections`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        calls: ConnectionCalls,
        fresh: FreshConnections,
        notifier: Notifier,
    ) -> Self {
        Self {
            connectors,
            connections,
            calls,
            fresh,
            notifier,
        }
    }

    /// `auth-validation`; a 401 from the CRM marks the connection as needing
    /// re-auth. Records when it ran (`validated_at`), whatever the answer,
    /// which the background validation reads.
    pub(crate) async fn validate(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<ValidationResult, FlowError> {
        let connection = self.fresh.refreshed_if_active(at).await?;
        let connector = self.connectors.get(&connection.connector_id)?;
        let ctx = self.renewing_context(&connector, &connection).await?;
        let info = self.calls.info(&connector, &connection).await?;
        let outcome = connector.prepared.auth_validation(&ctx, info).await.result;
        let (successful, status, fail_reason) = match outcome {
            Ok(v) => (v.successful, v.status, v.fail_reason),
            Err(error) => match FlowError::from(error) {
                FlowError::InvalidCredentials(m) => (false, Some(401), Some(m)),
                other => return Err(other),
            },
        };
        self.connections.record_validated(at).await?;
        let rejected = !successful && status == Some(401);
        if rejected {
            self.connections
                .set_status(at, ConnectionStatus::NeedsReauth)
                .await?;
        }
        let connection = load(&self.connections, at).await?;
        if rejected {
            self.notifier
                .emit(
                    EventKind::NeedsReauth,
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

    /// `test-connection` (Membrane `test`): the connector checks the
    /// connection's credentials; its message for the user on success, its
    /// error otherwise (a refusal by the CRM is `InvalidCredentials`).
    /// Changes nothing: `validate` is the check that marks re-auth.
    pub(crate) async fn test_connection(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<String>, FlowError> {
        let connection = self.fresh.refreshed_if_active(at).await?;
        if connection.status == ConnectionStatus::Revoked {
            return Err(FlowError::NotUsable(format!(
                "connection `{}` is logged out",
                at.id
            )));
        }
        let connector = self.connectors.get(&connection.connector_id)?;
        let ctx = self.renewing_context(&connector, &connection).await?;
        let info = self.calls.info(&connector, &connection).await?;
        Ok(connector
            .prepared
            .test_connection(&ctx, info)
            .await
            .result?)
    }

    /// `refresh-user-info` (or `user-info` when the connector has no refresh
    /// variant); saves the new identity.
    pub(crate) async fn refresh_user_info(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Connection, FlowError> {
        let connection = self.fresh.refreshed_if_active(at).await?;
        let connector = self.connectors.get(&connection.connector_id)?;
        let ctx = self.renewing_context(&connector, &connection).await?;
        let info = self.calls.info(&connector, &connection).await?;
        let prepared = &connector.prepared;
        let identity = if prepared.implements(Hook::RefreshUserInfo) {
            prepared.refresh_user_info(&ctx, info).await.result?
        } else {
            prepared.user_info(&ctx, info).await.result?
        };
        // Hidden admin-managed values stay out of the saved values, and so
        // does anything under a secret field's name (a value saved in plain
        // text before the field was declared secret is dropped here).
        let page = connector
            .info
            .manifest
            .auth
            .api_key
            .as_ref()
            .map(|b| &b.page);
        let hidden = |key: &str| {
            page.is_some_and(|page| {
                is_hidden_managed(page, key)
                    && !connection.additional_info.iter().any(|(k, _)| k == key)
            })
        };
        let additional_info: Vec<(String, String)> =
            merge(&connection.additional_info, &identity.additional_info)
                .into_iter()
                .filter(|(k, _)| !hidden(k))
                .filter(|(k, _)| !page.is_some_and(|page| page.is_secret(k)))
                .collect();
        self.connections
            .update_identity(at, &identity_fields(&identity), &additional_info)
            .await?;
        load(&self.connections, at).await
    }
}
