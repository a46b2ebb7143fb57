//! A connection with a usable token: refreshed before use when it is within
//! its connector's refresh margin, single flight across callers and replicas.
//!
//! **Single flight.** Callers of one connection in this process queue on one
//! async lock (in-process coalescing); the first one takes the database lease
//! of the connection (`RefreshCoordinator`), re-reads the connection,
//! refreshes only if it is still due, commits the new tokens and releases.
//! Everyone after it re-reads and finds a fresh token. A caller in another
//! replica that finds the lease taken waits for the holder to commit (or for
//! the lease to expire, if the holder died) and re-reads.
//!
//! **Bounded wait.** No caller waits longer than `[refresh] max_wait_ms` for
//! someone else's refresh (the in-process queue and the lease together): past
//! it, it gets [`FlowError::RefreshBusy`] (HTTP 503 with `Retry-After`), a
//! retryable answer, instead of hanging. A replica killed mid-refresh holds
//! the lease until `lease_ttl_ms` after its last renewal; then the next caller
//! takes it over.
//!
//! **Failures.** `invalid_grant` marks the connection `needs_reauth`. Network
//! errors and 5xx keep the tokens, count a failure and set a cool-down for
//! the background refresher; the caller still gets the old token while it is
//! valid. Without a refresh token (`noRefreshToken`), an expired token is
//! never handed out: the connection needs re-auth.

use std::sync::Arc;
use std::time::Duration;

use connector_abi::manifest::AuthKind;

use super::FlowError;
use super::common::{Connectors, Notifier, load};
use super::coordinator::{RefreshCoordinator, cooldown_secs};
use super::refresh::{RefreshError, TokenRefresh};
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionRef, ConnectionStatus, ConnectionStore, unix_seconds};

/// Connections with fresh tokens.
#[derive(Clone)]
pub(crate) struct FreshConnections {
    connectors: Connectors,
    connections: ConnectionStore,
    notifier: Notifier,
    coordinator: Arc<RefreshCoordinator>,
    refresh: TokenRefresh,
}

impl FreshConnections {
    /// Fresh connections of `connections`, refreshed by `refresh` under
    /// `coordinator`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        notifier: Notifier,
        coordinator: Arc<RefreshCoordinator>,
        refresh: TokenRefresh,
    ) -> Self {
        Self {
            connectors,
            connections,
            notifier,
            coordinator,
            refresh,
        }
    }

    /// The connection, with its access token refreshed first when it is
    /// within the connector's refresh margin. Fails when the connection is
    /// logged out or needs re-auth.
    pub(crate) async fn get(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        self.fresh(at, None).await
    }

    /// The connection with its access token refreshed now, whether due or
    /// not (`POST …/refresh`): single flight like [`FreshConnections::get`],
    /// so callers that ask at the same time share one refresh. Unlike `get`,
    /// a failed refresh is an error even while the old token is valid, and
    /// a connection without a refresh token is not usable for it.
    pub(crate) async fn force_refresh(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Connection, FlowError> {
        let connection = self.usable(at).await?;
        if connection.auth_type != AuthKind::OAuth.to_string() {
            return Err(FlowError::NotUsable(format!(
                "connection `{}` is an API-key connection: it has no token to refresh",
                at.id
            )));
        }
        self.refreshed_since(at, crate::store::unix_millis()).await
    }

    /// The connection with a token refreshed at or after `since` (Unix
    /// milliseconds), by this caller or any other: single flight, so the
    /// callers that saw one token refused share one refresh.
    pub(crate) async fn refreshed_since(
        &self,
        at: ConnectionRef<'_>,
        since: i64,
    ) -> Result<Connection, FlowError> {
        self.fresh(at, Some(since)).await
    }

    /// [`FreshConnections::get`] (`forced_at` none: refresh when due) or
    /// [`FreshConnections::force_refresh`] (refreshed at or after `forced_at`).
    async fn fresh(
        &self,
        at: ConnectionRef<'_>,
        forced_at: Option<i64>,
    ) -> Result<Connection, FlowError> {
        let connection = self.usable(at).await?;
        if connection.auth_type != AuthKind::OAuth.to_string() {
            return Ok(connection);
        }
        let connector = self.connectors.get(&connection.connector_id)?;
        let want = Want {
            margin: connector.info.manifest.refresh_margin_seconds as i64,
            forced_at,
        };
        if want.satisfied(&connection) {
            return Ok(connection);
        }
        let deadline = tokio::time::Instant::now() + self.coordinator.max_wait();
        let lock = self.coordinator.local_lock(&connection.id);
        let queued = tokio::time::timeout_at(deadline, lock.lock_owned())
            .await
            .map_err(|_| self.busy(at.id))?;
        let mut wait = Duration::from_millis(10);
        loop {
            if self.coordinator.try_acquire(at.id).await.map_err(storage)? {
                return self
                    .refresh_holding_the_lease(at, connector, want, queued)
                    .await;
            }
            // Another replica is refreshing: wait for its commit or for its
            // lease to expire.
            let connection = self.usable(at).await?;
            if want.satisfied(&connection) {
                return Ok(connection);
            }
            if tokio::time::Instant::now() + wait > deadline {
                return Err(self.busy(at.id));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(250));
        }
    }

    /// The answer to a caller that waited its bound for another refresh: retry
    /// after about one lease lifetime (by then the holder committed, or its
    /// lease expired and the next caller takes over).
    fn busy(&self, id: &str) -> FlowError {
        let retry_after_secs = self.coordinator.lease_ttl().as_secs().max(1);
        FlowError::RefreshBusy {
            message: format!(
                "connection `{id}` is being refreshed by another request or replica; \
                 retry in {retry_after_secs} s"
            ),
            retry_after_secs,
        }
    }

    /// The connection, its token refreshed first when it is active and due
    /// (so a hook never judges a refreshable token as rejected); inactive
    /// connections as they are.
    pub(crate) async fn refreshed_if_active(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Connection, FlowError> {
        match self.get(at).await {
            Err(FlowError::NotUsable(_)) => load(&self.connections, at).await,
            other => other,
        }
    }

    /// Refreshes (when still due) and releases the lease in a task of its
    /// own, which keeps the in-process lock: a caller that goes away (an HTTP
    /// client disconnecting drops its handler) cannot cancel a refresh between
    /// the provider's answer and the commit, which would lose rotated tokens.
    async fn refresh_holding_the_lease(
        &self,
        at: ConnectionRef<'_>,
        connector: Arc<LoadedConnector>,
        want: Want,
        queued: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Connection, FlowError> {
        let fresh = self.clone();
        let (account_id, user_id, id) = (
            at.account_id.to_string(),
            at.user_id.to_string(),
            at.id.to_string(),
        );
        let refresh = tokio::spawn(async move {
            let _queued = queued;
            let renewing = fresh.coordinator.keep_renewing(&id);
            let at = ConnectionRef {
                account_id: &account_id,
                user_id: &user_id,
                id: &id,
            };
            let result = fresh.refresh_if_due(at, &connector, want).await;
            drop(renewing);
            fresh.coordinator.release(at.id).await;
            result
        });
        match refresh.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(FlowError::Provider(
                "the token refresh was cancelled: the host is shutting down".into(),
            )),
        }
    }

    /// The connection if it is active, else why not.
    pub(crate) async fn usable(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        let connection = load(&self.connections, at).await?;
        match connection.status {
            ConnectionStatus::Active => Ok(connection),
            ConnectionStatus::NeedsReauth => Err(FlowError::NotUsable(format!(
                "connection `{}` needs re-auth: the user must log in again",
                connection.id
            ))),
            ConnectionStatus::Revoked => Err(FlowError::NotUsable(format!(
                "connection `{}` is logged out",
                connection.id
            ))),
        }
    }

    /// Holding the lease: re-read, refresh if still wanted, record the outcome.
    async fn refresh_if_due(
        &self,
        at: ConnectionRef<'_>,
        connector: &LoadedConnector,
        want: Want,
    ) -> Result<Connection, FlowError> {
        let connection = self.usable(at).await?;
        if want.satisfied(&connection) {
            return Ok(connection);
        }
        let forced = want.forced_at.is_some();
        let expired = connection.expires_at.is_some_and(|t| t <= unix_seconds());
        // A client-credentials connection is renewed by a new grant, without
        // a refresh token.
        let no_refresh = !renews_by_grant(connector)
            && (connector
                .info
                .manifest
                .auth
                .oauth
                .as_ref()
                .is_some_and(|o| o.no_refresh_token)
                || !connection.has_refresh_token);
        if no_refresh && forced {
            return Err(FlowError::NotUsable(format!(
                "connection `{}` has no refresh token: its token cannot be refreshed",
                at.id
            )));
        }
        if no_refresh {
            if !expired {
                return Ok(connection); // still valid: use it until it expires
            }
            return Err(self.expired_without_refresh_token(at).await?);
        }
        let (failures, retry_at) = self.connections.refresh_state(at).await?;
        if !forced && !expired && retry_at.is_some_and(|t| t > unix_seconds()) {
            // Cooling down after a failed refresh: the token still works.
            return Ok(connection);
        }
        let owner = self.coordinator.owner();
        let outcome = self.refresh.refresh(at, Some(owner)).await;
        crate::telemetry::token_refresh(&connection.connector_id, outcome.is_ok());
        match outcome {
            Ok(refreshed) => {
                if failures > 0 {
                    self.notifier
                        .emit(
                            EventKind::Recovered,
                            &refreshed.connection,
                            "token refresh works again",
                        )
                        .await;
                }
                Ok(refreshed.connection)
            }
            // A forced refresh reports a failure even while the old token works.
            Err(error) => {
                self.refresh_failed(at, connection, failures, expired || forced, error)
                    .await
            }
        }
    }

    /// An expired token without a refresh token: the connection needs re-auth.
    async fn expired_without_refresh_token(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<FlowError, FlowError> {
        self.connections
            .set_status(at, ConnectionStatus::NeedsReauth)
            .await?;
        let connection = load(&self.connections, at).await?;
        self.notifier
            .emit(
                EventKind::NeedsReauth,
                &connection,
                "access token expired, no refresh token",
            )
            .await;
        Ok(FlowError::NotUsable(format!(
            "connection `{}`: the access token expired and the provider issues no refresh token: the user must log in again",
            at.id
        )))
    }

    /// What a failed refresh means: re-auth (`invalid_grant`, no refresh
    /// token), or a transient failure that keeps the tokens, cools down and
    /// still hands out a token that has not expired.
    async fn refresh_failed(
        &self,
        at: ConnectionRef<'_>,
        connection: Connection,
        failures: i64,
        expired: bool,
        error: RefreshError,
    ) -> Result<Connection, FlowError> {
        let error = match error {
            RefreshError::InvalidGrant(detail) => {
                let connection = load(&self.connections, at).await?;
                self.notifier
                    .emit(
                        EventKind::NeedsReauth,
                        &connection,
                        "the provider refused the refresh token",
                    )
                    .await;
                return Err(FlowError::InvalidCredentials(format!(
                    "the provider refused the refresh token{detail}: the user must log in again"
                )));
            }
            RefreshError::NoRefreshToken(_) => {
                return Err(FlowError::NotUsable(format!(
                    "connection `{}` has no refresh token: the user must log in again",
                    at.id
                )));
            }
            RefreshError::Flow(
                error @ (FlowError::NotUsable(_)
                | FlowError::Storage(_)
                | FlowError::ManagedStorage(_)),
            ) => return Err(error),
            RefreshError::Flow(error) => error,
        };
        // Transient (network, 5xx, connector): keep the tokens, cool down.
        let message = error.to_string();
        let failures = failures + 1;
        self.connections
            .record_refresh_failure(at, unix_seconds() + cooldown_secs(failures), &message)
            .await?;
        tracing::warn!(connection = %at.id, failures, error = %message, "token refresh failed");
        self.notifier
            .emit(EventKind::RefreshFailed, &connection, &message)
            .await;
        if expired {
            Err(FlowError::Provider(format!(
                "the token expired and its refresh failed ({message}); try again later"
            )))
        } else {
            Ok(connection)
        }
    }
}

/// What a caller wants of a connection's token.
#[derive(Debug, Clone, Copy)]
struct Want {
    /// The connector's refresh margin: refresh when within it of expiry.
    margin: i64,
    /// A forced refresh asked at this time (Unix milliseconds): a refresh
    /// at or after it, by anyone, will do.
    forced_at: Option<i64>,
}

impl Want {
    /// Whether `connection` already is what the caller wants.
    fn satisfied(&self, connection: &Connection) -> bool {
        match self.forced_at {
            Some(asked) => connection
                .refresh
                .as_ref()
                .and_then(|r| r.last_refreshed_at_ms)
                .is_some_and(|at| at >= asked),
            None => !due(connection, self.margin),
        }
    }
}

/// Whether the connector's tokens are renewed by a new client-credentials
/// grant (`auth.oauth.grantType`) rather than with a refresh token.
pub(crate) fn renews_by_grant(connector: &LoadedConnector) -> bool {
    connector
        .info
        .manifest
        .auth
        .oauth
        .as_ref()
        .is_some_and(|o| o.is_client_credentials())
}

/// Is the connection's access token within `margin` seconds of expiry?
pub(crate) fn due(connection: &Connection, margin: i64) -> bool {
    connection
        .expires_at
        .is_some_and(|at| at - unix_seconds() <= margin)
}

fn storage(error: sqlx::Error) -> FlowError {
    FlowError::Storage(error.into())
}
