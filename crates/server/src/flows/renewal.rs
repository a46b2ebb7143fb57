//! The server's side of renewing a token in the middle of a hook: when a
//! provider answers 401 to a hook's request for an OAuth connection's access
//! token, the sandbox asks this for a new one (`connector_sandbox`
//! `TokenRenewal`), and it refreshes the connection — single flight with every
//! caller refused the same token, on this replica and others — and hands the
//! sandbox the new token to inject. The guest sees neither token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use connector_abi::manifest::AuthKind;
use connector_sandbox::capabilities::http::{CallCredentials, Renewal, TokenRenewal};
use connector_sandbox::runtime::CallContext;
use secrecy::SecretString;

use super::fresh::FreshConnections;
use crate::store::{Connection, ConnectionRef, ConnectionStore};

/// Renews one connection's access token for a hook call.
struct HookRenewal {
    fresh: FreshConnections,
    connections: ConnectionStore,
    account_id: String,
    user_id: String,
    id: String,
    /// When the call's token was read (Unix milliseconds): a refresh
    /// committed since then, by anyone, will do.
    read_at: i64,
}

impl TokenRenewal for HookRenewal {
    fn renew(&self) -> Pin<Box<dyn Future<Output = Option<SecretString>> + Send + '_>> {
        Box::pin(async move {
            let at = ConnectionRef {
                account_id: &self.account_id,
                user_id: &self.user_id,
                id: &self.id,
            };
            let refreshed = match self.fresh.refreshed_since(at, self.read_at).await {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(connection = %self.id, %error, "no renewal after a 401 in a hook: the hook gets the provider's answer");
                    return None;
                }
            };
            match self.connections.secrets(&refreshed).await {
                Ok(secrets) => secrets.access_token,
                Err(error) => {
                    tracing::error!(connection = %self.id, %error, "the renewed token could not be read");
                    None
                }
            }
        })
    }
}

/// `ctx` (the call context of a hook acting on `connection`, whose token was
/// read at `read_at`), able to renew the access token once when a provider
/// refuses it. API-key connections are returned as they are.
pub(crate) fn renewing(
    ctx: CallContext,
    connection: &Connection,
    read_at: i64,
    fresh: &FreshConnections,
    connections: &ConnectionStore,
) -> CallContext {
    if connection.auth_type != AuthKind::OAuth.to_string() || ctx.credentials.access_token.is_none()
    {
        return ctx;
    }
    let renewal = HookRenewal {
        fresh: fresh.clone(),
        connections: connections.clone(),
        account_id: connection.account_id.clone(),
        user_id: connection.user_id.clone(),
        id: connection.id.clone(),
        read_at,
    };
    CallContext {
        credentials: Arc::new(CallCredentials {
            renewal: Some(Renewal(Arc::new(renewal))),
            ..(*ctx.credentials).clone()
        }),
        ..ctx
    }
}
