//! The published layer of the registry: components stored in the database
//! (`connector-host publish`, `POST /v1/components`) and served by every
//! replica. [`Registry::check_publication`] runs the checks of `check` (and
//! the signature rule) on a candidate; [`Registry::reconcile_published`]
//! brings this replica's published layer in line with the live versions in
//! the database. A call in flight keeps the version it started with: the
//! snapshot it holds is never changed, only replaced.
//!
//! Precedence: a connector id with a live published version is served from
//! the database, even when a file of the plugins folder has the same id;
//! the folder's file serves again once no published version is live.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::inspect::{ComponentInfo, inspect, sha256_hex};
use super::signature::{ComponentSignature, SignatureError, TrustedKeys};
use super::{LoadError, LoadedConnector, Registry, Snapshot, Source, load};
use crate::store::{ComponentStore, LiveComponent};

/// `[publishing]`: signatures and how replicas follow the database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishingSettings {
    /// Refuse to publish (and to load) a component without a valid
    /// signature by one of `trusted_keys`.
    pub require_signatures: bool,
    /// Trusted Ed25519 public keys (base64), by name; the name is recorded
    /// as the signer.
    pub trusted_keys: BTreeMap<String, String>,
    /// Seconds between reconciliations with the database (the fallback for
    /// a missed PostgreSQL notification, and how SQLite replicas follow).
    pub reconcile_interval_secs: u64,
    /// This replica's name in the replica status (default: host name and
    /// process id).
    pub replica_id: Option<String>,
}

impl Default for PublishingSettings {
    fn default() -> Self {
        Self {
            require_signatures: false,
            trusted_keys: BTreeMap::new(),
            reconcile_interval_secs: 10,
            replica_id: None,
        }
    }
}

impl PublishingSettings {
    /// Checks the settings, naming the key of a bad value.
    pub fn validate(&self) -> Result<(), String> {
        TrustedKeys::from_config(&self.trusted_keys)?;
        if self.require_signatures && self.trusted_keys.is_empty() {
            return Err(
                "publishing.require_signatures: needs at least one key in publishing.trusted_keys"
                    .into(),
            );
        }
        if !(1..=3600).contains(&self.reconcile_interval_secs) {
            return Err("publishing.reconcile_interval_secs: must be between 1 and 3600".into());
        }
        if self
            .replica_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 200 || id.chars().any(char::is_control))
        {
            return Err("publishing.replica_id: 1 to 200 characters, no control characters".into());
        }
        Ok(())
    }
}

/// Why a candidate cannot be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// It fails the checks of `check`.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Its signature is missing (when required), invalid or untrusted.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// A candidate that passed every check.
#[derive(Debug)]
pub struct CheckedComponent {
    /// What it is.
    pub info: ComponentInfo,
    /// The trusted key that signed it (its name), or for a valid signature
    /// by a key this host does not know, `ed25519:<public key>`.
    pub signer: Option<String>,
}

/// What one reconciliation changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// Published versions loaded (`id@version`).
    pub loaded: Vec<String>,
    /// Connector ids no longer published here.
    pub removed: Vec<String>,
    /// Versions that could not be loaded, with the reason.
    pub failed: Vec<(String, String)>,
}

impl Registry {
    /// Uses these publishing settings (signatures, reconciliation).
    pub fn with_publishing(mut self, settings: PublishingSettings) -> Result<Self, String> {
        settings.validate()?;
        self.trusted = TrustedKeys::from_config(&settings.trusted_keys)?;
        self.publishing = settings;
        Ok(self)
    }

    /// The publishing settings.
    pub fn publishing(&self) -> &PublishingSettings {
        &self.publishing
    }

    /// Runs on `bytes` the checks of `check` (inspect, compile, link, the
    /// `auth-type` hook, the operator's settings for the connector) and the
    /// signature rule. Nothing is stored or served.
    pub async fn check_publication(
        &self,
        bytes: Vec<u8>,
        signature: Option<&ComponentSignature>,
    ) -> Result<CheckedComponent, PublishError> {
        let info = inspect(&bytes).map_err(LoadError::from)?;
        let signer = self.signer(signature, &info.sha256)?;
        let label = PathBuf::from(format!("{}@{}", info.manifest.id, info.manifest.version));
        let loaded = load(&self.runtime, &self.cache, bytes, label, &self.config).await?;
        Ok(CheckedComponent {
            info: loaded.info,
            signer,
        })
    }

    /// The signer of a component with this digest, under the signature rule:
    /// required → a trusted key's name; optional → a given signature must
    /// still verify.
    fn signer(
        &self,
        signature: Option<&ComponentSignature>,
        sha256: &str,
    ) -> Result<Option<String>, SignatureError> {
        if self.publishing.require_signatures {
            return self.trusted.signer(signature, sha256).map(Some);
        }
        let Some(signature) = signature else {
            return Ok(None);
        };
        match self.trusted.signer(Some(signature), sha256) {
            Ok(name) => Ok(Some(name)),
            Err(SignatureError::Untrusted { public_key }) => {
                Ok(Some(format!("ed25519:{public_key}")))
            }
            Err(error) => Err(error),
        }
    }

    /// Brings the published layer in line with the live versions of
    /// `store`: loads the ones this replica does not serve yet, drops the
    /// ones no longer live. A version that fails to load here is reported
    /// and the previous one (if any) keeps serving.
    pub async fn reconcile_published(
        &self,
        store: &ComponentStore,
    ) -> Result<ReconcileSummary, sqlx::Error> {
        let _one_at_a_time = self.reconciling.lock().await;
        let live = store.live().await?;
        let current = self.published.load_full();
        let mut connectors = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut summary = ReconcileSummary::default();
        for wanted in &live {
            let id = &wanted.connector_id;
            let previous = current.connectors.get(id);
            if let Some(previous) = previous.filter(|p| p.info.sha256 == wanted.sha256) {
                connectors.insert(id.clone(), previous.clone());
                continue;
            }
            let label = format!("published:{id}@{}", wanted.version);
            match self.load_published(store, wanted).await {
                Ok(loaded) => {
                    tracing::info!(connector = %id, version = %wanted.version, sha256 = %wanted.sha256, "published version loaded");
                    connectors.insert(id.clone(), Arc::new(loaded));
                    summary.loaded.push(format!("{id}@{}", wanted.version));
                }
                Err(error) => {
                    tracing::error!(connector = %id, version = %wanted.version, %error, "published version rejected; the previous one (if any) keeps serving");
                    if let Some(previous) = previous {
                        connectors.insert(id.clone(), previous.clone());
                    }
                    errors.insert(label.clone(), error.clone());
                    summary.failed.push((label, error));
                }
            }
        }
        for id in current.connectors.keys() {
            if !connectors.contains_key(id) {
                tracing::info!(connector = %id, "no published version is live any more");
                summary.removed.push(id.clone());
            }
        }
        self.published
            .store(Arc::new(Snapshot { connectors, errors }));
        self.compose();
        Ok(summary)
    }

    /// Reads, verifies and loads one live version.
    async fn load_published(
        &self,
        store: &ComponentStore,
        wanted: &LiveComponent,
    ) -> Result<LoadedConnector, String> {
        let (bytes, signature) = store
            .bytes(&wanted.connector_id, &wanted.version)
            .await
            .map_err(|e| format!("cannot read it: {e}"))?
            .ok_or("it is no longer stored")?;
        let sha256 = sha256_hex(&bytes);
        if sha256 != wanted.sha256 {
            return Err(format!(
                "its bytes have sha256 {sha256}, not the published {}",
                wanted.sha256
            ));
        }
        if self.publishing.require_signatures {
            let signature = signature
                .map(|text| ComponentSignature::parse(&text))
                .transpose()
                .map_err(|e| e.to_string())?;
            self.trusted
                .signer(signature.as_ref(), &sha256)
                .map_err(|e| e.to_string())?;
        }
        let label = PathBuf::from(format!("{}@{}", wanted.connector_id, wanted.version));
        let mut loaded = load(&self.runtime, &self.cache, bytes, label, &self.config)
            .await
            .map_err(|e| e.to_string())?;
        if loaded.info.manifest.id != wanted.connector_id {
            return Err(format!("its manifest id is `{}`", loaded.info.manifest.id));
        }
        loaded.source = Source::Published;
        Ok(loaded)
    }
}
