//! Which admin-managed OAuth application a login or a connection uses
//! (`auth.oauth.adminManaged`): a new login takes the pending application when
//! there is one, else the active one; its first success promotes a pending
//! one; existing connections use the active one.

use super::FlowError;
use crate::registry::LoadedConnector;
use crate::store::{ManagedOAuthApp, ManagedStore, Slot};

/// The admin-managed OAuth applications, as logins use them.
#[derive(Clone)]
pub(crate) struct ManagedApps {
    managed: ManagedStore,
}

impl ManagedApps {
    /// Applications stored in `managed`.
    pub(crate) fn new(managed: ManagedStore) -> Self {
        Self { managed }
    }

    /// The application a new login of `account_id` uses: the pending one when
    /// there is one, else the active one. `None` for connectors that do not
    /// declare `adminManaged`; an error when the account has not set one up.
    pub(crate) async fn for_login(
        &self,
        connector: &LoadedConnector,
        account_id: &str,
    ) -> Result<Option<ManagedOAuthApp>, FlowError> {
        if !is_admin_managed(connector) {
            return Ok(None);
        }
        let id = &connector.info.manifest.id;
        let (active, pending) = self.managed.oauth_apps(account_id, id).await?;
        pending.or(active).map(Some).ok_or_else(|| {
            FlowError::ManagedCredentialsMissing(format!(
                "an admin of account `{account_id}` must first set up the OAuth application for `{id}`"
            ))
        })
    }

    /// The application of version `version` (the one a login started with),
    /// if it is still the newest: a login started before an admin changed the
    /// application must start again.
    pub(crate) async fn version(
        &self,
        connector: &LoadedConnector,
        account_id: &str,
        version: i64,
    ) -> Result<ManagedOAuthApp, FlowError> {
        let (active, pending) = self
            .managed
            .oauth_apps(account_id, &connector.info.manifest.id)
            .await?;
        let newest = [&active, &pending]
            .into_iter()
            .flatten()
            .map(|app| app.version)
            .max();
        [active, pending]
            .into_iter()
            .flatten()
            .find(|app| app.version == version && Some(version) == newest)
            .ok_or_else(|| {
                FlowError::State(
                    "the account's managed OAuth application changed during this login; start again"
                        .into(),
                )
            })
    }

    /// The application existing connections of the account use (the active
    /// one; the pending one when none is active yet).
    pub(crate) async fn for_connection(
        &self,
        connector: &LoadedConnector,
        account_id: &str,
    ) -> Result<Option<ManagedOAuthApp>, FlowError> {
        if !is_admin_managed(connector) {
            return Ok(None);
        }
        let (active, pending) = self
            .managed
            .oauth_apps(account_id, &connector.info.manifest.id)
            .await?;
        Ok(active.or(pending))
    }

    /// After a successful login: a pending application becomes active.
    pub(crate) async fn promote(
        &self,
        account_id: &str,
        connector_id: &str,
        app: &ManagedOAuthApp,
    ) -> Result<(), FlowError> {
        if app.slot == Slot::Pending {
            let promoted = self
                .managed
                .promote(account_id, connector_id, app.version)
                .await?;
            if promoted {
                tracing::info!(
                    account = account_id,
                    connector = connector_id,
                    version = app.version,
                    "managed OAuth application promoted to active"
                );
            }
        }
        Ok(())
    }
}

/// The connector declares `auth.oauth.adminManaged`.
fn is_admin_managed(connector: &LoadedConnector) -> bool {
    connector
        .info
        .manifest
        .auth
        .oauth
        .as_ref()
        .is_some_and(|o| o.admin_managed.is_some())
}
