//! How a replica follows the published components: it subscribes to the
//! database's change feed ([`crate::store::changes`], on PostgreSQL the one
//! `LISTEN` connection of the process) and reconciles as soon as a live
//! version changes ([`Change::Component`]) or notices may have been missed
//! ([`Change::Everything`]: the listener reconnected); every
//! `[publishing] reconcile_interval_secs` it reconciles anyway (a lost
//! notification, SQLite replicas sharing one file) and reports what it serves
//! ([`crate::store::ReplicaStatus`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::Registry;
use crate::store::changes::Change;
use crate::store::{ComponentStore, Database, ServedConnector, unix_seconds};

/// This replica's name when `[publishing] replica_id` is not set: the host
/// name and the process id.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    format!("{host}-{}", std::process::id())
}

/// What this replica serves, as reported.
pub fn served(registry: &Registry) -> Vec<ServedConnector> {
    registry
        .snapshot()
        .connectors
        .values()
        .map(|c| ServedConnector {
            connector_id: c.info.manifest.id.clone(),
            version: c.info.manifest.version.clone(),
            sha256: c.info.sha256.clone(),
            source: c.source.name().into(),
            serving_since: c.loaded_at,
        })
        .collect()
}

/// Starts following the database: returns the task (abort it to stop).
pub fn start(registry: Arc<Registry>, database: Database) -> tokio::task::JoinHandle<()> {
    tokio::spawn(follow(registry, database))
}

/// The loop of [`start`].
async fn follow(registry: Arc<Registry>, database: Database) {
    let store = ComponentStore::new(database.clone());
    let replica_id = registry
        .publishing()
        .replica_id
        .clone()
        .unwrap_or_else(default_replica_id);
    let started_at = unix_seconds();
    let interval = Duration::from_secs(registry.publishing().reconcile_interval_secs.max(1));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = database.changes().subscribe();
    let mut feed_open = true;
    loop {
        tokio::select! {
            heard = changes.recv(), if feed_open => match heard {
                Ok(Change::Component(id)) => {
                    tracing::debug!(connector = %id, "published version changed");
                }
                Ok(Change::Everything) | Err(RecvError::Lagged(_)) => {
                    tracing::info!("change notices may have been missed; reconciling");
                }
                // Other changes (API keys, connections) are not this loop's concern.
                Ok(Change::ApiKey(_) | Change::Connection(_)) => continue,
                // The feed lives as long as `database`, which this loop
                // holds; should it close anyway, the interval still reconciles.
                Err(RecvError::Closed) => {
                    tracing::warn!("the change feed closed: published components are followed by the reconcile interval only");
                    feed_open = false;
                    continue;
                }
            },
            _ = tick.tick() => {}
        }
        reconcile(&registry, &store).await;
        if let Err(error) = database
            .report_replica(&replica_id, started_at, &served(&registry))
            .await
        {
            tracing::warn!(%error, "cannot report this replica's connectors");
        }
    }
}

/// One reconciliation, logged.
async fn reconcile(registry: &Registry, store: &ComponentStore) {
    match registry.reconcile_published(store).await {
        Ok(summary) if summary != Default::default() => {
            tracing::info!(loaded = ?summary.loaded, removed = ?summary.removed, failed = summary.failed.len(), "published components reconciled");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the published components"),
    }
}
