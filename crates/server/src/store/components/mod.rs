//! Published components (migration 0015): each version's bytes, digest,
//! manifest, publisher and signer; which version of each connector is live
//! (and whether an operator pinned it). Every change of a live version
//! notifies the replicas on PostgreSQL (a [`Change::Component`] notice on the
//! change feed's channel, sent when the transaction commits); SQLite has no
//! notifications, the replicas' periodic reconciliation reads the same rows. Changing which version is
//! live (pin, unpin, roll back) and retiring one: [`versions`].

use serde::Serialize;
use sqlx::Row;

mod versions;

use super::changes::{self, Change};
use super::{Database, leases::unix_millis};

/// A component that passed the checks, to store.
#[derive(Debug, Clone)]
pub struct NewComponent {
    /// The manifest id.
    pub connector_id: String,
    /// The manifest version.
    pub version: String,
    /// sha256 (hex) of `bytes`.
    pub sha256: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// The manifest, as JSON.
    pub manifest: String,
    /// Who published it (the API key's id and name).
    pub publisher: String,
    /// The trusted key that signed it, if signed.
    pub signer: Option<String>,
    /// The detached signature (JSON), if signed.
    pub signature: Option<String>,
}

/// One published version, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedVersion {
    /// The manifest id.
    pub connector_id: String,
    /// The manifest version.
    pub version: String,
    /// sha256 of the component.
    pub sha256: String,
    /// Who published it.
    pub publisher: String,
    /// Unix milliseconds of the publication.
    pub published_at_ms: i64,
    /// The trusted key that signed it, if signed.
    pub signer: Option<String>,
    /// Unix milliseconds of its retirement, if retired.
    pub retired_at_ms: Option<i64>,
    /// Whether this is the version replicas serve.
    pub live: bool,
    /// Whether it is live because an operator pinned it.
    pub pinned: bool,
}

/// The live version of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveComponent {
    /// The manifest id.
    pub connector_id: String,
    /// The manifest version.
    pub version: String,
    /// sha256 of the component.
    pub sha256: String,
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored and made live.
    Live,
    /// Stored; another version stays live because it is pinned.
    StoredPinned {
        /// The pinned version.
        pinned: String,
    },
    /// The very same bytes were already published under this version.
    Unchanged,
}

/// Why a change of published components was refused.
#[derive(Debug, thiserror::Error)]
pub enum ComponentStoreError {
    /// No such connector or version.
    #[error("{0}")]
    NotFound(String),
    /// The version exists with other bytes.
    #[error(
        "version {version} of `{connector_id}` is already published with other bytes (sha256 {sha256}): publish under a new manifest version"
    )]
    VersionTaken {
        /// The connector.
        connector_id: String,
        /// The version.
        version: String,
        /// The digest already stored.
        sha256: String,
    },
    /// The change is not possible in the current state.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// The published-components tables.
#[derive(Clone)]
pub struct ComponentStore {
    database: Database,
}

impl ComponentStore {
    /// The published components of `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Whether the database is PostgreSQL (it notifies replicas).
    pub fn is_postgres(&self) -> bool {
        self.database.is_postgres()
    }

    /// Stores a checked component and makes it live unless the connector is
    /// pinned to another version.
    pub async fn publish(&self, new: &NewComponent) -> Result<Published, ComponentStoreError> {
        let mut tx = self.database.pool.begin().await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT sha256 FROM published_components WHERE connector_id = $1 AND version = $2",
        )
        .bind(&new.connector_id)
        .bind(&new.version)
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            Some(sha256) if sha256 == new.sha256 => return Ok(Published::Unchanged),
            Some(sha256) => {
                return Err(ComponentStoreError::VersionTaken {
                    connector_id: new.connector_id.clone(),
                    version: new.version.clone(),
                    sha256,
                });
            }
            None => {}
        }
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT version FROM published_components WHERE connector_id = $1 AND sha256 = $2",
        )
        .bind(&new.connector_id)
        .bind(&new.sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(version) = taken {
            return Err(ComponentStoreError::Conflict(format!(
                "these bytes (sha256 {}) are already published as version {version} of `{}`",
                new.sha256, new.connector_id
            )));
        }
        sqlx::query(
            "INSERT INTO published_components (connector_id, version, sha256, bytes, manifest, publisher, published_at_ms, signer, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&new.connector_id)
        .bind(&new.version)
        .bind(&new.sha256)
        .bind(new.bytes.clone())
        .bind(&new.manifest)
        .bind(&new.publisher)
        .bind(unix_millis())
        .bind(new.signer.clone())
        .bind(new.signature.clone())
        .execute(&mut *tx)
        .await?;
        let pinned: Option<String> = sqlx::query_scalar(
            "SELECT version FROM live_components WHERE connector_id = $1 AND pinned = 1",
        )
        .bind(&new.connector_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(pinned) = pinned {
            tx.commit().await?;
            return Ok(Published::StoredPinned { pinned });
        }
        self.set_live(
            &mut tx,
            &new.connector_id,
            &new.version,
            false,
            &new.publisher,
        )
        .await?;
        tx.commit().await?;
        Ok(Published::Live)
    }

    /// Every published version of a connector, newest first.
    pub async fn versions(
        &self,
        connector_id: &str,
    ) -> Result<Vec<PublishedVersion>, ComponentStoreError> {
        let rows = sqlx::query(
            "SELECT c.connector_id, c.version, c.sha256, c.publisher, c.published_at_ms, c.signer, c.retired_at_ms,
                    l.version, l.pinned
             FROM published_components c LEFT JOIN live_components l ON l.connector_id = c.connector_id
             WHERE c.connector_id = $1 ORDER BY c.published_at_ms DESC, c.version DESC",
        )
        .bind(connector_id)
        .fetch_all(&self.database.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let version: String = row.try_get(1)?;
                let live_version: Option<String> = row.try_get(7)?;
                let live = live_version.as_deref() == Some(version.as_str());
                let pinned: Option<i64> = row.try_get(8)?;
                Ok(PublishedVersion {
                    connector_id: row.try_get(0)?,
                    sha256: row.try_get(2)?,
                    publisher: row.try_get(3)?,
                    published_at_ms: row.try_get(4)?,
                    signer: row.try_get(5)?,
                    retired_at_ms: row.try_get(6)?,
                    pinned: live && pinned == Some(1),
                    live,
                    version,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The live version of every connector that has one.
    pub async fn live(&self) -> Result<Vec<LiveComponent>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT l.connector_id, l.version, c.sha256 FROM live_components l
             JOIN published_components c ON c.connector_id = l.connector_id AND c.version = l.version
             WHERE c.retired_at_ms IS NULL ORDER BY l.connector_id",
        )
        .fetch_all(&self.database.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(LiveComponent {
                    connector_id: row.try_get(0)?,
                    version: row.try_get(1)?,
                    sha256: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// The bytes and the detached signature (JSON) of one version.
    pub async fn bytes(
        &self,
        connector_id: &str,
        version: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT bytes, signature FROM published_components WHERE connector_id = $1 AND version = $2",
        )
        .bind(connector_id)
        .bind(version)
        .fetch_optional(&self.database.pool)
        .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// Points `connector_id` at `version` and, on PostgreSQL, notifies the
    /// replicas (delivered when `tx` commits).
    async fn set_live(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        connector_id: &str,
        version: &str,
        pinned: bool,
        by: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO live_components (connector_id, version, pinned, changed_by, changed_at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (connector_id) DO UPDATE SET version = $2, pinned = $3, changed_by = $4, changed_at_ms = $5",
        )
        .bind(connector_id)
        .bind(version)
        .bind(i64::from(pinned))
        .bind(by)
        .bind(unix_millis())
        .execute(&mut **tx)
        .await?;
        if self.is_postgres() {
            // Selecting the `void` of pg_notify itself is not decodable
            // through the Any driver: count it instead.
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_notify($1, $2)) AS sent")
                .bind(changes::CHANNEL)
                .bind(Change::Component(connector_id.to_string()).payload())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
