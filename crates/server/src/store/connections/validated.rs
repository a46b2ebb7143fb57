//! When a connection's credentials were last validated (`validated_at`,
//! migration 0014), for the background validation of connections that no
//! token expiry checks: OAuth connections without `expires_at` and API-key
//! connections.

use sqlx::Row;

use super::*;

/// Which connections the background validation covers.
const UNCHECKED: &str = "status = 'active'
     AND ((auth_type = 'oauth' AND expires_at IS NULL) OR auth_type = 'apiKey')";

impl ConnectionStore {
    /// Active connections without a token expiry (OAuth without
    /// `expires_at`, API keys) of the connectors `connector_ids`, not
    /// validated since `cutoff` (Unix seconds; a connection never validated
    /// counts from its creation), longest unvalidated first, at most `limit`.
    pub async fn due_for_validation(
        &self,
        cutoff: i64,
        connector_ids: &[String],
        limit: i64,
    ) -> Result<Vec<Connection>, ConnectionStoreError> {
        if connector_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..connector_ids.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM connections WHERE {UNCHECKED}
             AND COALESCE(validated_at, created_at) <= $1 AND connector_id IN ({})
             ORDER BY COALESCE(validated_at, created_at), id LIMIT $2",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(cutoff).bind(limit);
        for id in connector_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.database.pool).await?;
        rows.iter().map(connection).collect()
    }

    /// Claims a connection for one background validation: moves its
    /// `validated_at` to `now` only if it is still active and not validated
    /// since `cutoff`, in one compare-and-set statement. Of two replicas
    /// claiming the same connection for the same interval, exactly one gets
    /// `true`; the other skips it.
    pub async fn claim_validation(
        &self,
        at: ConnectionRef<'_>,
        cutoff: i64,
        now: i64,
    ) -> Result<bool, ConnectionStoreError> {
        let done = sqlx::query(&format!(
            "UPDATE connections SET validated_at = $4
             WHERE id = $1 AND account_id = $2 AND user_id = $3 AND {UNCHECKED}
             AND COALESCE(validated_at, created_at) <= $5"
        ))
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(now)
        .bind(cutoff)
        .execute(&self.database.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that the connection was validated now (`POST …/validate`).
    pub async fn record_validated(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<(), ConnectionStoreError> {
        sqlx::query(
            "UPDATE connections SET validated_at = $4 WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .bind(unix_seconds())
        .execute(&self.database.pool)
        .await?;
        Ok(())
    }

    /// When the connection was last validated (Unix seconds), if ever.
    pub async fn validated_at(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<i64>, ConnectionStoreError> {
        let row = sqlx::query(
            "SELECT validated_at FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .fetch_optional(&self.database.pool)
        .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => None,
        })
    }
}
