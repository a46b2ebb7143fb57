//! Operators' changes of the live version of a published connector: pin,
//! roll back, unpin; and retiring a version that is not live.

use super::{ComponentStore, ComponentStoreError};
use crate::store::leases::unix_millis;

impl ComponentStore {
    /// Makes `version` live and pins it: later publications are stored but
    /// not made live until [`ComponentStore::unpin`].
    pub async fn pin(
        &self,
        connector_id: &str,
        version: &str,
        by: &str,
    ) -> Result<(), ComponentStoreError> {
        let mut tx = self.database.pool.begin().await?;
        let retired: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT retired_at_ms FROM published_components WHERE connector_id = $1 AND version = $2",
        )
        .bind(connector_id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        match retired {
            None => {
                return Err(ComponentStoreError::NotFound(format!(
                    "version {version} of `{connector_id}` was never published"
                )));
            }
            Some(Some(_)) => {
                return Err(ComponentStoreError::Conflict(format!(
                    "version {version} of `{connector_id}` is retired and cannot be served"
                )));
            }
            Some(None) => {}
        }
        self.set_live(&mut tx, connector_id, version, true, by)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes the version published before the live one live, and pins it;
    /// the version it returns.
    pub async fn rollback(
        &self,
        connector_id: &str,
        by: &str,
    ) -> Result<String, ComponentStoreError> {
        let versions = self.versions(connector_id).await?;
        let live = versions.iter().position(|v| v.live).ok_or_else(|| {
            ComponentStoreError::NotFound(format!("`{connector_id}` has no live published version"))
        })?;
        let previous = versions[live + 1..]
            .iter()
            .find(|v| v.retired_at_ms.is_none())
            .ok_or_else(|| {
                ComponentStoreError::Conflict(format!(
                    "`{connector_id}` has no earlier unretired version than {} to roll back to",
                    versions[live].version
                ))
            })?;
        self.pin(connector_id, &previous.version, by).await?;
        Ok(previous.version.clone())
    }

    /// Unpins a connector: its newest unretired version becomes live; the
    /// version it returns.
    pub async fn unpin(&self, connector_id: &str, by: &str) -> Result<String, ComponentStoreError> {
        let versions = self.versions(connector_id).await?;
        let newest = versions
            .iter()
            .find(|v| v.retired_at_ms.is_none())
            .ok_or_else(|| {
                ComponentStoreError::NotFound(format!(
                    "`{connector_id}` has no published, unretired version"
                ))
            })?;
        let mut tx = self.database.pool.begin().await?;
        self.set_live(&mut tx, connector_id, &newest.version, false, by)
            .await?;
        tx.commit().await?;
        Ok(newest.version.clone())
    }

    /// Retires a version that is not live: it can no longer be pinned or
    /// rolled back to (its bytes stay, for the record).
    pub async fn retire(
        &self,
        connector_id: &str,
        version: &str,
    ) -> Result<(), ComponentStoreError> {
        let versions = self.versions(connector_id).await?;
        let found = versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| {
                ComponentStoreError::NotFound(format!(
                    "version {version} of `{connector_id}` was never published"
                ))
            })?;
        if found.live {
            return Err(ComponentStoreError::Conflict(format!(
                "version {version} of `{connector_id}` is live: pin or roll back to another version first"
            )));
        }
        sqlx::query(
            "UPDATE published_components SET retired_at_ms = $3
             WHERE connector_id = $1 AND version = $2 AND retired_at_ms IS NULL",
        )
        .bind(connector_id)
        .bind(version)
        .bind(unix_millis())
        .execute(&self.database.pool)
        .await?;
        Ok(())
    }
}
