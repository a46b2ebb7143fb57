//! Store functions only tests may call, behind the `test-support` feature:
//! they play a database writer (copying or overwriting secret columns), age
//! rows, or hold a lease, so the tests can prove what the host does about it.
//! The host never calls them; a production build does not contain them.

use super::*;

impl Database {
    /// After a test's write behind the stores: drops every cached entry of
    /// this process (as [`changes::Change::Everything`]), so the next read
    /// sees the write. A real writer outside the host sends no notice: the
    /// caches then see its write when their entries expire.
    async fn written_behind_the_stores(&self) {
        self.publish(changes::Change::Everything).await;
    }

    /// Test support: runs `sql` with `binds` (all text) as someone with write
    /// access to the database would; returns the rows affected. Not used by
    /// the host.
    #[doc(hidden)]
    pub async fn execute_for_tests(&self, sql: &str, binds: &[&str]) -> anyhow::Result<u64> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        // No change notice: caches see this write when their entries expire.
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    /// Test support: copies a secret column from one connection row to another,
    /// as an attacker with database access would. Not used by the host.
    #[doc(hidden)]
    pub async fn copy_column_for_tests(
        &self,
        column: &str,
        from: &str,
        to: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key", "secret_fields"].contains(&column),
            "not a secret column"
        );
        let value: Option<String> =
            sqlx::query_scalar(&format!("SELECT {column} FROM connections WHERE id = $1"))
                .bind(from)
                .fetch_one(&self.pool)
                .await?;
        sqlx::query(&format!(
            "UPDATE connections SET {column} = $1 WHERE id = $2"
        ))
        .bind(value)
        .bind(to)
        .execute(&self.pool)
        .await?;
        self.written_behind_the_stores().await;
        Ok(())
    }

    /// Test support: renames every table except those in `keep` (adding
    /// `_aside`), so that any query touching them fails, as a way to prove
    /// that a request reads nothing else. Returns the tables moved.
    #[doc(hidden)]
    pub async fn move_tables_aside_for_tests(&self, keep: &[&str]) -> anyhow::Result<Vec<String>> {
        let sqlite: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let tables = if sqlite.is_empty() {
            sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            )
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlite
        };
        let mut moved = Vec::new();
        for table in tables {
            if keep.contains(&table.as_str()) || table == "_sqlx_migrations" {
                continue;
            }
            sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_aside"))
                .execute(&self.pool)
                .await?;
            moved.push(table);
        }
        Ok(moved)
    }

    /// Test support: the stored hash of an API key.
    #[doc(hidden)]
    pub async fn api_key_hash_for_tests(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Test support: copies a managed field's envelope from one user's row to
    /// another's, as an attacker with database access would.
    #[doc(hidden)]
    pub async fn copy_managed_field_for_tests(
        &self,
        account: &str,
        connector: &str,
        from_user: &str,
        to_user: &str,
        field: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO managed_fields (account_id, connector_id, user_id, field, value, updated_by, updated_at)
             SELECT account_id, connector_id, $4, field, value, updated_by, updated_at FROM managed_fields
             WHERE account_id = $1 AND connector_id = $2 AND user_id = $3 AND field = $5",
        )
        .bind(account)
        .bind(connector)
        .bind(from_user)
        .bind(to_user)
        .bind(field)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: sets a connection's access-token expiry (Unix seconds).
    #[doc(hidden)]
    pub async fn set_connection_expiry_for_tests(
        &self,
        id: &str,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE connections SET expires_at = $1 WHERE id = $2")
            .bind(expires_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.written_behind_the_stores().await;
        Ok(())
    }

    /// Test support: sets when a connection was created and last validated
    /// (Unix seconds), as if it were that old.
    #[doc(hidden)]
    pub async fn age_connection_for_tests(&self, id: &str, at: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE connections SET created_at = $1, validated_at = CASE WHEN validated_at IS NULL THEN NULL ELSE $1 END WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.written_behind_the_stores().await;
        Ok(())
    }

    /// Test support: takes a connection's refresh lease for `owner` until
    /// `expires_at_ms`, as a holder that then dies would.
    #[doc(hidden)]
    pub async fn hold_lease_for_tests(
        &self,
        id: &str,
        owner: &str,
        expires_at_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO refresh_leases (connection_id, owner, expires_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (connection_id) DO UPDATE SET owner = $2, expires_at_ms = $3",
        )
        .bind(id)
        .bind(owner)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: every column of a connection row as text (`NULL` for
    /// none), as a database reader sees it.
    #[doc(hidden)]
    pub async fn connection_row_for_tests(&self, id: &str) -> anyhow::Result<Vec<String>> {
        use sqlx::{Column, Row};
        let row = sqlx::query("SELECT * FROM connections WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .columns()
            .iter()
            .map(|column| {
                let i = column.ordinal();
                let text = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string())
                    })
                    .unwrap_or_else(|| "NULL".into());
                format!("{}={text}", column.name())
            })
            .collect())
    }

    /// Test support: a connection's stored (encrypted) secret column.
    #[doc(hidden)]
    pub async fn secret_column_for_tests(
        &self,
        id: &str,
        column: &str,
    ) -> anyhow::Result<Option<String>> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key", "secret_fields"].contains(&column),
            "not a secret column"
        );
        Ok(
            sqlx::query_scalar(&format!("SELECT {column} FROM connections WHERE id = $1"))
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Test support: writes back a stored secret column (a stale copy).
    #[doc(hidden)]
    pub async fn set_secret_column_for_tests(
        &self,
        id: &str,
        column: &str,
        value: Option<String>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key", "secret_fields"].contains(&column),
            "not a secret column"
        );
        sqlx::query(&format!(
            "UPDATE connections SET {column} = $1 WHERE id = $2"
        ))
        .bind(value)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.written_behind_the_stores().await;
        Ok(())
    }

    /// Test support: creates an empty database `ch_test_<unix seconds>_<random>`
    /// on the PostgreSQL server at `server` and returns its URL, so each test
    /// host has its own rows. Test databases of earlier runs (older than ten
    /// minutes and unused) are dropped on the way.
    #[doc(hidden)]
    pub async fn fresh_postgres_for_tests(server: &str) -> anyhow::Result<String> {
        use rand::RngCore as _;
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(server).await?;
        let now = unix_seconds();
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ch\\_test\\_%'",
        )
        .fetch_all(&mut admin)
        .await?;
        for name in old {
            let created = name
                .split('_')
                .nth(2)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(now);
            if created + 600 < now {
                // Fails harmlessly while someone still uses it.
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut admin)
                    .await;
            }
        }
        let mut random = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let name = format!("ch_test_{now}_{}", hex::encode(random));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url::Url::parse(server)?;
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }

    /// Test support: marks every connection's access token as expired.
    #[doc(hidden)]
    pub async fn expire_all_connections_for_tests(&self) -> anyhow::Result<u64> {
        let done =
            sqlx::query("UPDATE connections SET expires_at = 1 WHERE expires_at IS NOT NULL")
                .execute(&self.pool)
                .await?;
        self.written_behind_the_stores().await;
        Ok(done.rows_affected())
    }
}
