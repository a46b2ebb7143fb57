//! Re-encrypting every stored secret under the keyring's current key.

use sqlx::Row;

use super::*;

impl ConnectionStore {
    /// Re-encrypts every secret not under the keyring's current key. Values
    /// that do not decrypt (a key id missing from the keyring, a tampered row)
    /// are reported and left as they are. Each value is replaced only if it
    /// did not change meanwhile.
    pub async fn rotate_keys(&self) -> Result<RotationReport, ConnectionStoreError> {
        let rows = sqlx::query("SELECT id, account_id, connector_id, access_token, refresh_token, api_key FROM connections")
            .fetch_all(&self.database.pool)
            .await?;
        let mut report = RotationReport::default();
        for row in rows {
            let (id, account, connector): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            for (offset, column) in SECRET_COLUMNS.iter().enumerate() {
                let Some(old) = row.try_get::<Option<String>, _>(3 + offset)? else {
                    continue;
                };
                if !self.keys.needs_rotation(&old) {
                    continue;
                }
                let aad = Self::aad(&account, &connector, &id, column);
                let plain = match self.keys.decrypt(&old, aad) {
                    Ok(plain) => plain,
                    Err(error) => {
                        report
                            .failed
                            .push(format!("connection {id} column {column}: {error}"));
                        continue;
                    }
                };
                let new = self.keys.encrypt(&plain, aad);
                let sql =
                    format!("UPDATE connections SET {column} = $1 WHERE id = $2 AND {column} = $3");
                let done = sqlx::query(&sql)
                    .bind(&new)
                    .bind(&id)
                    .bind(&old)
                    .execute(&self.database.pool)
                    .await?;
                report.rotated += done.rows_affected();
            }
        }
        Ok(report)
    }
}

/// What a key rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-encrypted under the current key.
    pub rotated: u64,
    /// Values that could not be decrypted (which row and column, and why).
    pub failed: Vec<String>,
}
