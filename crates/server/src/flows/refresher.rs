//! The background refresher: connections whose token is about to expire are
//! refreshed ahead of use, in batches with bounded concurrency, through the
//! same single-flight path as the proxy (so it never races a caller or another
//! replica). Connections cooling down after a transient failure wait
//! (`next_refresh_at`); those needing re-auth are left alone.

use std::sync::Arc;
use std::time::Duration;

use super::FlowError;
use super::common::Connectors;
use super::fresh::{FreshConnections, renews_by_grant};
use crate::store::{ConnectionStore, unix_seconds};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshRun {
    /// Connections found due.
    pub due: usize,
    /// Refreshed (or found fresh: another caller did it).
    pub refreshed: usize,
    /// Failed (transient failures cool down, `invalid_grant` needs re-auth).
    pub failed: usize,
}

/// How the refresher works.
#[derive(Debug, Clone, Copy)]
pub struct RefresherSettings {
    /// Connections fetched per batch.
    pub batch: i64,
    /// Refreshes in flight at once.
    pub concurrency: usize,
    /// Pause between passes.
    pub interval: Duration,
}

impl Default for RefresherSettings {
    fn default() -> Self {
        Self {
            batch: 500,
            concurrency: 16,
            interval: Duration::from_secs(30),
        }
    }
}

/// Refreshes due connections in the background.
#[derive(Clone)]
pub(crate) struct BackgroundRefresher {
    connectors: Connectors,
    connections: ConnectionStore,
    fresh: FreshConnections,
}

impl BackgroundRefresher {
    /// A refresher of `connections`, through `fresh` (single flight).
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        fresh: FreshConnections,
    ) -> Self {
        Self {
            connectors,
            connections,
            fresh,
        }
    }

    /// One pass: refreshes every due connection once (batch after batch),
    /// at most `settings.concurrency` at a time.
    pub(crate) async fn refresh_due(
        &self,
        settings: RefresherSettings,
    ) -> Result<RefreshRun, FlowError> {
        let horizon_margin = self
            .connectors
            .snapshot()
            .connectors
            .values()
            .map(|c| c.info.manifest.refresh_margin_seconds as i64)
            .max()
            .unwrap_or(connector_abi::manifest::DEFAULT_REFRESH_MARGIN_SECONDS as i64);
        // Client-credentials connectors' connections have no refresh token:
        // they are renewed by a new grant.
        let by_grant: Vec<String> = self
            .connectors
            .snapshot()
            .connectors
            .values()
            .filter(|c| renews_by_grant(c))
            .map(|c| c.info.manifest.id.clone())
            .collect();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
        let mut cursor: Option<(i64, String)> = None;
        // A token whose new lifetime is shorter than the margin would come
        // back later in the same pass: each connection once per pass.
        let mut seen = std::collections::HashSet::new();
        let mut run = RefreshRun::default();
        loop {
            let now = unix_seconds();
            let page = self
                .connections
                .due_for_refresh(
                    now + horizon_margin,
                    cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
                    settings.batch.max(1),
                    &by_grant,
                )
                .await?;
            let Some(last) = page.last() else {
                return Ok(run);
            };
            cursor = Some((last.expires_at.unwrap_or_default(), last.id.clone()));
            // Due by its own connector's margin (the page used the largest);
            // connectors not loaded are left alone.
            let due: Vec<_> = page
                .into_iter()
                .filter(|c| seen.insert(c.id.clone()))
                .filter(|c| {
                    self.connectors
                        .loaded(&c.connector_id)
                        .is_some_and(|connector| {
                            let margin = connector.info.manifest.refresh_margin_seconds as i64;
                            c.expires_at.is_some_and(|at| at - now <= margin)
                        })
                })
                .collect();
            run.due += due.len();
            let mut tasks = tokio::task::JoinSet::new();
            for connection in due {
                let fresh = self.fresh.clone();
                let permit = semaphore
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("open semaphore");
                tasks.spawn(async move {
                    let _permit = permit;
                    let outcome = fresh.get(connection.at()).await;
                    if let Err(error) = &outcome {
                        tracing::info!(connection = %connection.id, %error, "background refresh failed");
                    }
                    // A pass that kept the old token (a transient failure)
                    // leaves the expiry unchanged: counted as failed.
                    matches!(outcome, Ok(after) if after.expires_at != connection.expires_at)
                });
            }
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(true) => run.refreshed += 1,
                    _ => run.failed += 1,
                }
            }
        }
    }

    /// Runs [`BackgroundRefresher::refresh_due`] every `settings.interval`
    /// until the task is dropped or aborted.
    pub(crate) fn start(&self, settings: RefresherSettings) -> tokio::task::JoinHandle<()> {
        let refresher = self.clone();
        tokio::spawn(async move {
            loop {
                match refresher.refresh_due(settings).await {
                    Ok(run) if run.due > 0 => tracing::info!(
                        due = run.due,
                        refreshed = run.refreshed,
                        failed = run.failed,
                        "background refresh pass"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "background refresh pass failed"),
                }
                tokio::time::sleep(settings.interval).await;
            }
        })
    }
}
