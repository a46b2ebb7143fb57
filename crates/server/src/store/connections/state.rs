//! Changes to a stored connection after its login: status, refresh state and
//! failures, identity, logout, and the tokens of a refresh.

use sqlx::Row;

use super::*;
use crate::store::changes::Change;

impl ConnectionStore {
    /// Sets a connection's status.
    pub async fn set_status(
        &self,
        at: ConnectionRef<'_>,
        status: ConnectionStatus,
    ) -> Result<bool, ConnectionStoreError> {
        let done = sqlx::query(
            "UPDATE connections SET status = $4, updated_at = $5 WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(status.as_str())
        .bind(unix_seconds())
        .execute(&self.database.pool)
        .await?;
        self.changed(at.id).await;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed refresh that left the tokens as they were (network
    /// error, 5xx): the count of consecutive failures, when the background
    /// refresher may try again, and why. Returns the new count.
    pub async fn record_refresh_failure(
        &self,
        at: ConnectionRef<'_>,
        retry_at: i64,
        error: &str,
    ) -> Result<i64, ConnectionStoreError> {
        sqlx::query(
            "UPDATE connections SET refresh_failures = refresh_failures + 1, next_refresh_at = $4,
             last_refresh_error = $5 WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(retry_at)
        .bind(error)
        .execute(&self.database.pool)
        .await?;
        self.changed(at.id).await;
        Ok(self.refresh_state(at).await?.0)
    }

    /// Consecutive failed refreshes and the earliest next attempt.
    pub async fn refresh_state(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<(i64, Option<i64>), ConnectionStoreError> {
        let row = sqlx::query(
            "SELECT refresh_failures, next_refresh_at FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .fetch_optional(&self.database.pool)
        .await?;
        Ok(match row {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            None => (0, None),
        })
    }

    /// Active OAuth connections whose token expires before `horizon` (Unix
    /// seconds) and that are not cooling down after a failure, soonest first,
    /// after the `(expires_at, id)` cursor `after` (a page of a pass). Those
    /// with a refresh token, and those of the connectors in `by_grant`
    /// (client-credentials connectors: renewed by a new grant, without one).
    pub async fn due_for_refresh(
        &self,
        horizon: i64,
        after: Option<(i64, &str)>,
        limit: i64,
        by_grant: &[String],
    ) -> Result<Vec<Connection>, ConnectionStoreError> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, ""));
        let by_grant_ids = (0..by_grant.len())
            .map(|i| format!("${}", 6 + i))
            .collect::<Vec<_>>()
            .join(", ");
        let renewable = if by_grant.is_empty() {
            "refresh_token IS NOT NULL".to_string()
        } else {
            format!("(refresh_token IS NOT NULL OR connector_id IN ({by_grant_ids}))")
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM connections WHERE status = 'active' AND auth_type = 'oauth'
             AND expires_at IS NOT NULL AND expires_at <= $1 AND {renewable}
             AND (next_refresh_at IS NULL OR next_refresh_at <= $2)
             AND (expires_at > $4 OR (expires_at = $4 AND id > $5))
             ORDER BY expires_at, id LIMIT $3"
        );
        let mut query = sqlx::query(&sql)
            .bind(horizon)
            .bind(unix_seconds())
            .bind(limit)
            .bind(after_at)
            .bind(after_id);
        for id in by_grant {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.database.pool).await?;
        rows.iter().map(connection).collect()
    }

    /// The database (for stores that live next to connections).
    pub(crate) fn database(&self) -> &Database {
        &self.database
    }

    /// Marks every active connection of an account to a connector as needing
    /// re-auth (its admin-managed credentials changed); returns them, as
    /// they are now (for their `connection.needs_reauth` events).
    pub async fn invalidate_account_connector(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<Vec<Connection>, ConnectionStoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE connections SET status = 'needs_reauth', updated_at = $3
             WHERE account_id = $1 AND connector_id = $2 AND status = 'active' RETURNING {COLUMNS}"
        ))
        .bind(account_id)
        .bind(connector_id)
        .bind(unix_seconds())
        .fetch_all(&self.database.pool)
        .await?;
        if !rows.is_empty() {
            self.database.publish(Change::Everything).await;
        }
        rows.iter().map(connection).collect()
    }

    /// Replaces the identity and non-secret values of a connection.
    pub async fn update_identity(
        &self,
        at: ConnectionRef<'_>,
        identity: &Identity,
        additional_info: &[(String, String)],
    ) -> Result<bool, ConnectionStoreError> {
        let info = serde_json::to_string(additional_info).expect("pairs of strings serialise");
        let done = sqlx::query(
            "UPDATE connections SET platform_user_id = $4, user_name = $5, timezone_name = $6, timezone_offset = $7,
             additional_info = $8, updated_at = $9 WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(&identity.platform_user_id)
        .bind(&identity.user_name)
        .bind(&identity.timezone_name)
        .bind(&identity.timezone_offset)
        .bind(&info)
        .bind(unix_seconds())
        .execute(&self.database.pool)
        .await?;
        self.changed(at.id).await;
        Ok(done.rows_affected() == 1)
    }

    /// Logout: clears every secret and marks the connection revoked.
    pub async fn clear_credentials(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<bool, ConnectionStoreError> {
        let done = sqlx::query(
            "UPDATE connections SET access_token = NULL, refresh_token = NULL, api_key = NULL, secret_fields = NULL, expires_at = NULL,
             status = 'revoked', updated_at = $4 WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(unix_seconds())
        .execute(&self.database.pool)
        .await?;
        self.changed(at.id).await;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the tokens of a token refresh: a new access token, its expiry,
    /// and the new refresh token when the provider rotated it (`None` keeps
    /// the stored one). Only an `active` connection is updated: one logged
    /// out or marked `needs_reauth` meanwhile is left alone (`Ok(false)`), and
    /// so is one whose refresh lease `lease_owner` no longer holds.
    pub async fn update_tokens(
        &self,
        connection: &Connection,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        expires_at: Option<i64>,
        lease_owner: Option<&str>,
    ) -> Result<bool, ConnectionStoreError> {
        let seal = |column: &'static str, value: &SecretString| {
            self.keys.encrypt(
                value.expose_secret().as_bytes(),
                Self::aad(
                    (&connection.account_id, &connection.user_id),
                    &connection.connector_id,
                    &connection.id,
                    column,
                ),
            )
        };
        let access = seal("access_token", access_token);
        let refresh = refresh_token.map(|t| seal("refresh_token", t));
        // Fenced by the refresh lease when there is one: a holder whose lease
        // another replica took over cannot write older tokens over newer.
        let fence = if lease_owner.is_some() {
            " AND EXISTS (SELECT 1 FROM refresh_leases WHERE connection_id = $1 AND owner = $9)"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE connections SET access_token = $3, refresh_token = COALESCE($4, refresh_token),
             expires_at = $5, updated_at = $6, last_refreshed_at_ms = $8, refresh_failures = 0,
             next_refresh_at = NULL, last_refresh_error = NULL
             WHERE id = $1 AND account_id = $2 AND user_id = $7 AND status = 'active'{fence}"
        );
        let mut query = sqlx::query(&sql)
            .bind(&connection.id)
            .bind(&connection.account_id)
            .bind(&access)
            .bind(&refresh)
            .bind(expires_at)
            .bind(unix_seconds())
            .bind(&connection.user_id)
            .bind(crate::store::unix_millis());
        if let Some(owner) = lease_owner {
            query = query.bind(owner);
        }
        let done = query.execute(&self.database.pool).await?;
        self.changed(&connection.id).await;
        Ok(done.rows_affected() == 1)
    }
}
