//! Waiting for something another task or process does, bounded: tests poll a
//! condition until it holds or a deadline passes, and never sleep a fixed
//! time in the hope that it happened.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] re-checks its condition.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds; panics naming `what` when it still does
/// not after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}
