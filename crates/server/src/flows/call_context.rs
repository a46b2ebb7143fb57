//! What a hook acting on a stored connection gets: the connection's values
//! ([`ConnectionInfo`], with the current hidden admin-managed values) and a
//! [`CallContext`] holding its decrypted credentials, which the host injects
//! into the guest's requests (the guest never sees them).

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_abi::manifest::{FormField, ManagedScope};
use connector_sandbox::capabilities::http::{ApiKeyCredential, CallCredentials};
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::ConnectionInfo;
use secrecy::{ExposeSecret, SecretString};

use super::FlowError;
use super::common::Connectors;
use crate::registry::LoadedConnector;
use crate::store::{
    Connection, ConnectionSecrets, ConnectionStatus, ConnectionStore, ManagedStore,
};

/// Builds the inputs of hooks that act on a stored connection.
#[derive(Clone)]
pub(crate) struct ConnectionCalls {
    connectors: Connectors,
    connections: ConnectionStore,
    managed: ManagedStore,
}

impl ConnectionCalls {
    /// Inputs read from `connections` and the admin-managed values in
    /// `managed`; API-key placements checked through `connectors`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        managed: ManagedStore,
    ) -> Self {
        Self {
            connectors,
            connections,
            managed,
        }
    }

    /// What hooks acting on `connection` see: its saved values plus the
    /// current values of hidden admin-managed fields (which are not saved
    /// with connections).
    pub(crate) async fn info(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<ConnectionInfo, FlowError> {
        let mut info = saved_info(connection);
        let Some(block) = &connector.info.manifest.auth.api_key else {
            return Ok(info);
        };
        // A secret field never reaches a hook as a value (not even one saved
        // in plain text before the manifest declared it secret).
        info.additional_info
            .retain(|(k, _)| !block.page.is_secret(k));
        let hidden: Vec<_> = block
            .page
            .content
            .iter()
            .filter(|f| f.managed && f.hidden && !f.is_secret())
            .filter(|f| !info.additional_info.iter().any(|(k, _)| k == &f.key))
            .collect();
        for (key, value) in self.managed_values(connection, &hidden).await? {
            info.additional_info
                .push((key, value.expose_secret().to_string()));
        }
        Ok(info)
    }

    /// The current admin-set values of the managed `fields` for
    /// `connection` (each from its scope: the account's, or the user's);
    /// fields no admin set are left out. No query when `fields` is empty.
    async fn managed_values(
        &self,
        connection: &Connection,
        fields: &[&FormField],
    ) -> Result<Vec<(String, SecretString)>, FlowError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let (account, connector_id) = (&connection.account_id, &connection.connector_id);
        let for_account = self.managed.fields(account, connector_id, None).await?;
        let for_user = self
            .managed
            .fields(account, connector_id, Some(&connection.user_id))
            .await?;
        Ok(fields
            .iter()
            .filter_map(|field| {
                let stored = match field.managed_scope.unwrap_or(ManagedScope::Account) {
                    ManagedScope::Account => for_account.get(&field.key),
                    ManagedScope::User => for_user.get(&field.key),
                };
                stored.map(|value| (field.key.clone(), value.clone()))
            })
            .collect())
    }

    /// The call context of a stored connection: its decrypted secrets, the API
    /// key placed as the connector's `basic-auth` hook says. A logged-out
    /// connection has none.
    pub(crate) async fn context(
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
        self.context_with(connector, connection, secrets).await
    }

    /// [`ConnectionCalls::context`] with the secrets already decrypted.
    pub(crate) async fn context_with(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
        secrets: ConnectionSecrets,
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
            let info = self.info(connector, connection).await?;
            let fields = info
                .additional_info
                .iter()
                .cloned()
                .collect::<BTreeMap<_, _>>();
            let placement = self
                .connectors
                .api_key_placement(connector, &bare, info)
                .await?;
            let secret_fields = self.secret_fields(connector, connection).await?;
            credentials.api_key = Some(ApiKeyCredential {
                key,
                placement,
                fields,
                secret_fields,
            });
        }
        Ok(CallContext {
            account_id: Some(connection.account_id.clone()),
            user_id: Some(connection.user_id.clone()),
            credentials: Arc::new(credentials),
            deny_outbound: false,
        })
    }
}

impl ConnectionCalls {
    /// The secret form fields of an API-key connection, for injection by
    /// reference only: those stored (encrypted) with the connection, plus the
    /// current values of hidden managed secret fields an admin set.
    async fn secret_fields(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<BTreeMap<String, SecretString>, FlowError> {
        let Some(block) = &connector.info.manifest.auth.api_key else {
            return Ok(BTreeMap::new());
        };
        if block.page.secret_fields().next().is_none() {
            return Ok(BTreeMap::new());
        }
        let mut values = self.connections.secret_fields(connection).await?;
        let hidden: Vec<_> = block
            .page
            .secret_fields()
            .filter(|f| f.managed && f.hidden && !values.contains_key(&f.key))
            .collect();
        values.extend(self.managed_values(connection, &hidden).await?);
        Ok(values)
    }
}

/// A connection's saved values, as hooks see them.
pub(crate) fn saved_info(connection: &Connection) -> ConnectionInfo {
    ConnectionInfo {
        hostname: connection.hostname.clone(),
        platform_user_id: connection.platform_user_id.clone(),
        additional_info: connection.additional_info.clone(),
    }
}
