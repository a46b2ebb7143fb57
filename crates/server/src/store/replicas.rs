//! What each replica serves (migration 0015): every replica reports the
//! connector versions of its live snapshot periodically; the operator's
//! `GET /v1/replicas` reads them back.

use serde::Serialize;
use sqlx::Row;

use super::{Database, unix_seconds};

/// Rows of replicas silent for longer than this are deleted by the next
/// report of any replica (one day).
const FORGET_AFTER_SECS: i64 = 86_400;

/// One connector a replica serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServedConnector {
    /// The manifest id.
    pub connector_id: String,
    /// The manifest version.
    pub version: String,
    /// sha256 of the component.
    pub sha256: String,
    /// `published` (the database) or `folder` (the replica's plugins folder).
    pub source: String,
    /// Unix seconds since the replica serves this version.
    pub serving_since: i64,
}

/// One replica's last report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The replica (`[publishing] replica_id`, by default host name and process id).
    pub replica_id: String,
    /// Unix seconds of its start.
    pub started_at: i64,
    /// Unix seconds of its last report.
    pub reported_at: i64,
    /// What it serves.
    pub connectors: Vec<ServedConnector>,
}

impl Database {
    /// Replaces `replica_id`'s report with `served`, and forgets replicas
    /// silent for a day.
    pub async fn report_replica(
        &self,
        replica_id: &str,
        started_at: i64,
        served: &[ServedConnector],
    ) -> Result<(), sqlx::Error> {
        let now = unix_seconds();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO replicas (replica_id, started_at, reported_at) VALUES ($1, $2, $3)
             ON CONFLICT (replica_id) DO UPDATE SET started_at = $2, reported_at = $3",
        )
        .bind(replica_id)
        .bind(started_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM replica_connectors WHERE replica_id = $1")
            .bind(replica_id)
            .execute(&mut *tx)
            .await?;
        for served in served {
            sqlx::query(
                "INSERT INTO replica_connectors (replica_id, connector_id, version, sha256, source, serving_since, reported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(replica_id)
            .bind(&served.connector_id)
            .bind(&served.version)
            .bind(&served.sha256)
            .bind(&served.source)
            .bind(served.serving_since)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let cutoff = now - FORGET_AFTER_SECS;
        sqlx::query("DELETE FROM replica_connectors WHERE reported_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM replicas WHERE reported_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Every replica's last report, by replica id.
    pub async fn replicas(&self) -> Result<Vec<ReplicaStatus>, sqlx::Error> {
        let replicas = sqlx::query(
            "SELECT replica_id, started_at, reported_at FROM replicas ORDER BY replica_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let served = sqlx::query(
            "SELECT replica_id, connector_id, version, sha256, source, serving_since
             FROM replica_connectors ORDER BY replica_id, connector_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut statuses = replicas
            .into_iter()
            .map(|row| {
                Ok(ReplicaStatus {
                    replica_id: row.try_get(0)?,
                    started_at: row.try_get(1)?,
                    reported_at: row.try_get(2)?,
                    connectors: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        for row in served {
            let replica: String = row.try_get(0)?;
            if let Some(status) = statuses.iter_mut().find(|s| s.replica_id == replica) {
                status.connectors.push(ServedConnector {
                    connector_id: row.try_get(1)?,
                    version: row.try_get(2)?,
                    sha256: row.try_get(3)?,
                    source: row.try_get(4)?,
                    serving_since: row.try_get(5)?,
                });
            }
        }
        Ok(statuses)
    }
}
