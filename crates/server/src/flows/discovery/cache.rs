//! The in-memory cache of discovery documents: one entry per connector
//! version and resolved URL, fresh for [`FRESH_FOR`], fetched by one caller
//! at a time (callers waiting meanwhile take that fetch's result), and kept
//! for [`KEEP_STALE_FOR`] past its freshness when a refresh fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::document::{Discovered, DiscoveryError};

/// How long a fetched document is used without asking again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(3600);

/// How long past [`FRESH_FOR`] the last good document is still used while
/// refreshing it fails (each failure logged).
pub(crate) const KEEP_STALE_FOR: Duration = Duration::from_secs(6 * 3600);

/// After a failed refresh, how long the stale document is used before the
/// next attempt (so an outage costs one request a minute, not one a login).
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Entries kept; beyond it, entries nobody is using are dropped.
const MAX_ENTRIES: usize = 1024;

/// Which document: connector id, connector version, resolved URL.
pub(crate) type Key = (String, String, String);

/// The cache.
#[derive(Default)]
pub(crate) struct DocumentCache {
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
}

/// One document's slot.
#[derive(Default)]
struct Entry {
    /// Fetches finished so far (read before waiting for the lock).
    fetches: AtomicU64,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    good: Option<Good>,
    /// The last fetch's error, when it failed.
    failed: Option<DiscoveryError>,
}

struct Good {
    document: Arc<Discovered>,
    fetched_at: Instant,
    /// Used without asking until then.
    fresh_until: Instant,
}

impl DocumentCache {
    /// The document for `key` at `now`: the cached one while fresh, else the
    /// result of `fetch` (at most one running per key; callers that waited
    /// for it share its result, good or bad). A failed refresh falls back to
    /// the last good document for up to [`KEEP_STALE_FOR`] past freshness.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: Key,
        now: Instant,
        fetch: F,
    ) -> Result<Arc<Discovered>, DiscoveryError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Discovered, DiscoveryError>>,
    {
        let entry = self.entry(key);
        let seen = entry.fetches.load(Ordering::Acquire);
        let mut state = entry.state.lock().await;
        if let Some(good) = &state.good
            && now < good.fresh_until
        {
            return Ok(good.document.clone());
        }
        if entry.fetches.load(Ordering::Acquire) != seen
            && let Some(error) = &state.failed
        {
            // Someone fetched while this caller waited, and failed.
            return Err(error.clone());
        }
        let fetched = fetch().await;
        entry.fetches.fetch_add(1, Ordering::AcqRel);
        match fetched {
            Ok(document) => {
                let document = Arc::new(document);
                state.failed = None;
                state.good = Some(Good {
                    document: document.clone(),
                    fetched_at: now,
                    fresh_until: now + FRESH_FOR,
                });
                Ok(document)
            }
            Err(error) => {
                state.failed = Some(error.clone());
                match &mut state.good {
                    Some(good) if now < good.fetched_at + FRESH_FOR + KEEP_STALE_FOR => {
                        tracing::warn!(
                            %error,
                            age_secs = now.saturating_duration_since(good.fetched_at).as_secs(),
                            "refreshing an OAuth discovery document failed; using the last good one"
                        );
                        good.fresh_until = now + RETRY_AFTER;
                        Ok(good.document.clone())
                    }
                    _ => {
                        state.good = None;
                        Err(error)
                    }
                }
            }
        }
    }

    /// The entry of `key`, created if needed.
    fn entry(&self, key: Key) -> Arc<Entry> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, entry| Arc::strong_count(entry) > 1);
        }
        entries.entry(key).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key() -> Key {
        (
            "c".into(),
            "1.0.0".into(),
            "https://sso.example.com/.well-known/openid-configuration".into(),
        )
    }

    fn document(issuer: &str) -> Discovered {
        Discovered {
            url: key().2,
            issuer: issuer.into(),
            authorization_endpoint: None,
            token_endpoint: "https://sso.example.com/token".into(),
            revocation_endpoint: None,
            client_auth: None,
            pkce_methods: None,
        }
    }

    fn down() -> DiscoveryError {
        DiscoveryError::Status {
            url: key().2,
            status: 503,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_uses_fetch_once() {
        let cache = Arc::new(DocumentCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let now = Instant::now();
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (cache, fetches, mut gate) = (cache.clone(), fetches.clone(), gate.clone());
                tokio::spawn(async move {
                    cache
                        .get(key(), now, || async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            gate.wait_for(|open| *open).await.unwrap();
                            Ok(document("https://sso.example.com"))
                        })
                        .await
                })
            })
            .collect();
        release.send(true).unwrap();
        for caller in callers {
            assert_eq!(
                caller.await.unwrap().unwrap().issuer,
                "https://sso.example.com"
            );
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_document_is_refreshed_after_expiry_and_kept_while_refreshing_fails() {
        let cache = DocumentCache::default();
        let start = Instant::now();
        let got = |at: Instant, answer: Result<Discovered, DiscoveryError>| {
            cache.get(key(), at, move || async move { answer })
        };
        assert_eq!(got(start, Ok(document("one"))).await.unwrap().issuer, "one");
        // Fresh: the fetch is not made (its answer would differ).
        let later = start + FRESH_FOR - Duration::from_secs(1);
        assert_eq!(got(later, Ok(document("two"))).await.unwrap().issuer, "one");
        // Expired: refreshed.
        let expired = start + FRESH_FOR + Duration::from_secs(1);
        assert_eq!(
            got(expired, Ok(document("two"))).await.unwrap().issuer,
            "two"
        );
        // The next refresh fails: the last good one is used, and not asked
        // again until RETRY_AFTER has passed.
        let failing = expired + FRESH_FOR + Duration::from_secs(1);
        assert_eq!(got(failing, Err(down())).await.unwrap().issuer, "two");
        assert_eq!(
            got(failing + Duration::from_secs(1), Ok(document("x")))
                .await
                .unwrap()
                .issuer,
            "two"
        );
        let retry = failing + RETRY_AFTER;
        assert_eq!(got(retry, Err(down())).await.unwrap().issuer, "two");
        // Too stale: the error comes through.
        let too_old = expired + FRESH_FOR + KEEP_STALE_FOR;
        assert_eq!(got(too_old, Err(down())).await.unwrap_err(), down());
        assert_eq!(
            got(too_old, Ok(document("three"))).await.unwrap().issuer,
            "three"
        );
    }

    #[tokio::test]
    async fn a_first_fetch_that_fails_is_not_kept() {
        let cache = DocumentCache::default();
        let now = Instant::now();
        let error = cache.get(key(), now, || async { Err(down()) }).await;
        assert_eq!(error.unwrap_err(), down());
        let document = cache.get(key(), now, || async { Ok(document("ok")) }).await;
        assert_eq!(document.unwrap().issuer, "ok");
    }
}
