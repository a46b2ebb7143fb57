//! Re-encrypting every stored secret under the keyring's current key.

use sqlx::Row;

use super::*;

impl ConnectionStore {
    /// Re-encrypts every secret not under the keyring's current key, or not
    /// yet bound to its user (`v1`). Values that do not decrypt (a key id
    /// missing from the keyring, a tampered row) are reported and left as they
    /// are. Each value is replaced only if it did not change meanwhile.
    pub async fn rotate_keys(&self) -> Result<RotationReport, ConnectionStoreError> {
        self.reencrypt("", |keys, envelope| keys.needs_rotation(envelope))
            .await
    }

    /// The upgrade to user-bound ciphertexts: re-encrypts the secrets written
    /// before the user was part of their associated data. Runs once per
    /// database, at startup ([`crate::store::upgrades`]).
    pub async fn bind_secrets_to_users(&self) -> Result<RotationReport, ConnectionStoreError> {
        let unbound =
            " WHERE access_token LIKE 'v1.%' OR refresh_token LIKE 'v1.%' OR api_key LIKE 'v1.%'";
        self.reencrypt(unbound, |_, envelope| Keyring::is_unbound(envelope))
            .await
    }

    /// Re-encrypts, bound to its row's user and under the current key, every
    /// secret of the rows `filter` selects for which `wanted` holds.
    async fn reencrypt(
        &self,
        filter: &str,
        wanted: impl Fn(&Keyring, &str) -> bool,
    ) -> Result<RotationReport, ConnectionStoreError> {
        let sql = format!(
            "SELECT id, account_id, user_id, connector_id, access_token, refresh_token, api_key, secret_fields FROM connections{filter}"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.database.pool).await?;
        let mut report = RotationReport::default();
        for row in rows {
            let (id, account, user, connector): (String, String, String, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let columns = SECRET_COLUMNS.iter().chain([&SECRET_FIELDS_COLUMN]);
            for (offset, column) in columns.enumerate() {
                let Some(old) = row.try_get::<Option<String>, _>(4 + offset)? else {
                    continue;
                };
                if !wanted(&self.keys, &old) {
                    continue;
                }
                let aad = Self::aad((&account, &user), &connector, &id, column);
                let plain = match self.keys.decrypt_unbound(&old, aad) {
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
        if report.rotated > 0 {
            self.database
                .publish(crate::store::changes::Change::Everything)
                .await;
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
