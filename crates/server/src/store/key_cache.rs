//! The API keys recently presented, kept in memory so that a request does not
//! wait for a database read to learn who is calling.
//!
//! Staleness is bounded by push invalidation ([`super::changes`], through
//! the shared [`super::feed_cache::FeedCache`]):
//! - a key revoked through this process is refused by its next request;
//! - one revoked through another replica on PostgreSQL as soon as the
//!   notice arrives (milliseconds; `tests/benches/key_revocation.rs`);
//! - while the notice connection is down, nothing is answered from memory;
//! - in every case an entry is used for at most `ttl` after it was read
//!   (the bound when a notice is lost, and for SQLite files that another
//!   process writes).
//!
//! Only keys that exist and are live are kept (an unknown key is read from the
//! database each time, so guessing fills nothing), at most [`crate::store::feed_cache::MAX_ENTRIES`].

use std::time::Duration;

use super::changes::{Change, ChangeFeed};
use super::feed_cache::{FeedCache, Invalidate, Ticket};
use crate::access::Principal;

/// The keys of one store, by the SHA-256 of their secret.
pub(crate) struct KeyCache {
    keys: FeedCache<Principal>,
}

impl KeyCache {
    /// A cache whose entries live at most `ttl` (zero: nothing is kept).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            keys: FeedCache::new(ttl, invalidated),
        }
    }

    /// The live principal of `hash`, when it is known and may be trusted now;
    /// otherwise a ticket for [`KeyCache::remember`] after the database read.
    pub(crate) fn lookup(&self, feed: &ChangeFeed, hash: &str) -> Result<Principal, Ticket> {
        self.keys.lookup(feed, hash, |_| true)
    }

    /// Keeps what the database answered for `hash`, unless a change was heard
    /// since the ticket was taken or the feed was not live at either end.
    pub(crate) fn remember(
        &self,
        feed: &ChangeFeed,
        ticket: Ticket,
        hash: &str,
        principal: &Principal,
    ) {
        self.keys.remember(feed, ticket, hash, principal);
    }
}

/// A key's change drops its entry (cached by hash, so found by key id);
/// published components and connections are not keys.
fn invalidated(change: Change) -> Invalidate<Principal> {
    match change {
        Change::ApiKey(id) => Invalidate::Where(Box::new(move |p: &Principal| p.key_id == id)),
        Change::Component(_) | Change::Connection(_) | Change::Everything => Invalidate::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccountScope, Role};
    use crate::store::feed_cache::MAX_ENTRIES;

    fn principal(id: &str) -> Principal {
        Principal {
            key_id: id.into(),
            name: "test".into(),
            role: Role::Service,
            accounts: AccountScope::from_list(vec!["*".into()]),
            raw_tokens: false,
        }
    }

    fn remembered(cache: &KeyCache, feed: &ChangeFeed, hash: &str, id: &str) {
        let ticket = cache.lookup(feed, hash).expect_err("not cached yet");
        cache.remember(feed, ticket, hash, &principal(id));
    }

    #[tokio::test]
    async fn a_change_drops_the_key_it_names_and_only_that_key() {
        let feed = ChangeFeed::in_process();
        let cache = KeyCache::new(Duration::from_secs(60));
        remembered(&cache, &feed, "h1", "key_1");
        remembered(&cache, &feed, "h2", "key_2");
        assert_eq!(cache.lookup(&feed, "h1").ok().unwrap().key_id, "key_1");
        let _ = feed.sender_for_tests().send(Change::ApiKey("key_1".into()));
        assert!(cache.lookup(&feed, "h1").is_err());
        assert!(cache.lookup(&feed, "h2").is_ok());
        let _ = feed.sender_for_tests().send(Change::Everything);
        assert!(cache.lookup(&feed, "h2").is_err());
    }

    #[tokio::test]
    async fn an_answer_read_while_a_change_arrived_is_not_kept() {
        let feed = ChangeFeed::in_process();
        let cache = KeyCache::new(Duration::from_secs(60));
        let ticket = cache.lookup(&feed, "h1").expect_err("not cached");
        // The key is revoked while the database read is under way.
        let _ = feed.sender_for_tests().send(Change::ApiKey("key_1".into()));
        cache.remember(&feed, ticket, "h1", &principal("key_1"));
        assert!(cache.lookup(&feed, "h1").is_err());
    }

    #[tokio::test]
    async fn nothing_is_kept_with_a_zero_lifetime_or_a_feed_that_is_not_live() {
        let feed = ChangeFeed::in_process();
        let cache = KeyCache::new(Duration::ZERO);
        remembered(&cache, &feed, "h1", "key_1");
        assert!(cache.lookup(&feed, "h1").is_err());

        let deaf = ChangeFeed::postgres("postgres://127.0.0.1:1/none");
        let cache = KeyCache::new(Duration::from_secs(60));
        remembered(&cache, &deaf, "h1", "key_1");
        assert!(cache.lookup(&deaf, "h1").is_err());
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let feed = ChangeFeed::in_process();
        let cache = KeyCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES + 10) {
            remembered(&cache, &feed, &format!("h{i}"), &format!("key_{i}"));
        }
        let kept = cache.keys.len();
        assert!(kept <= MAX_ENTRIES, "{kept} entries");
        assert!(
            cache
                .lookup(&feed, &format!("h{}", MAX_ENTRIES + 9))
                .is_ok()
        );
    }
}
