//! How a replica follows the published components: on PostgreSQL it
//! `LISTEN`s on [`crate::store::COMPONENTS_CHANNEL`] (sqlx `PgListener`) and
//! reconciles as soon as a live version changes; every
//! `[publishing] reconcile_interval_secs` it reconciles anyway (a missed
//! notification, a listener reconnecting, SQLite replicas sharing one file)
//! and reports what it serves ([`crate::store::ReplicaStatus`]).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};

use super::Registry;
use crate::store::{COMPONENTS_CHANNEL, ComponentStore, Database, ServedConnector, unix_seconds};

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
    let mut listener = None;
    loop {
        tokio::select! {
            notified = next_notification(&mut listener) => match notified {
                Ok(Some(notification)) => {
                    tracing::debug!(connector = notification.payload(), "published version changed");
                }
                // The connection dropped; the listener reconnects on its next
                // call, and whatever was sent meanwhile is read below.
                Ok(None) => tracing::warn!("component notifications interrupted; reconciling"),
                Err(error) => {
                    tracing::warn!(%error, "component notifications unavailable; reconciling every {}s", interval.as_secs());
                    listener = None;
                }
            },
            _ = tick.tick() => {
                if listener.is_none() && database.is_postgres() {
                    listener = listen(&database).await;
                }
            }
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

/// A listener on the components channel, or `None` (logged) when it cannot
/// be opened now (the next tick tries again).
async fn listen(database: &Database) -> Option<PgListener> {
    let opened = async {
        let mut listener = PgListener::connect(&database.url()).await?;
        listener.listen(COMPONENTS_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match opened.await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for component notifications");
            None
        }
    }
}

/// The next notification, `Ok(None)` after a reconnection; pends forever
/// without a listener.
async fn next_notification(
    listener: &mut Option<PgListener>,
) -> Result<Option<PgNotification>, sqlx::Error> {
    match listener {
        Some(listener) => listener.try_recv().await,
        None => std::future::pending().await,
    }
}
