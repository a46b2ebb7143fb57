//! The API keys recently presented, kept in memory so that a request does not
//! wait for a database read to learn who is calling.
//!
//! Staleness is bounded by push invalidation ([`super::changes`]):
//! - a key revoked through this process is refused by its next request;
//! - one revoked through another replica on PostgreSQL as soon as the
//!   notice arrives (milliseconds; `tests/benches/key_revocation.rs`);
//! - while the notice connection is down, nothing is answered from memory;
//! - in every case an entry is used for at most `ttl` after it was read
//!   (the bound when a notice is lost, and for SQLite files that another
//!   process writes).
//!
//! Only keys that exist and are live are kept (an unknown key is read from the
//! database each time, so guessing fills nothing), at most [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::TryRecvError};

use super::changes::{Change, ChangeFeed};
use crate::access::Principal;

/// The most keys kept; when full, the oldest half is dropped.
pub const MAX_ENTRIES: usize = 10_000;

/// The keys of one store, by the SHA-256 of their secret.
pub(crate) struct KeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    entries: HashMap<String, Entry>,
    /// `None` until the first lookup subscribes (it may need the runtime).
    changes: Option<broadcast::Receiver<Change>>,
    /// Counts every change heard, so a read can tell whether one arrived
    /// while it was away at the database.
    heard: u64,
}

struct Entry {
    principal: Principal,
    read_at: Instant,
}

/// What a lookup saw, to be handed back with the database's answer.
pub(crate) struct Ticket {
    heard: u64,
    live: bool,
}

impl KeyCache {
    /// A cache whose entries live at most `ttl` (zero: nothing is kept).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State {
                entries: HashMap::new(),
                changes: None,
                heard: 0,
            }),
        }
    }

    /// The live principal of `hash`, when it is known and may be trusted now;
    /// otherwise a ticket for [`KeyCache::remember`] after the database read.
    pub(crate) fn lookup(&self, feed: &ChangeFeed, hash: &str) -> Result<Principal, Ticket> {
        let mut state = self.state.lock().expect("not poisoned");
        state.apply_changes(feed);
        let live = feed.is_live() && !self.ttl.is_zero();
        if live
            && let Some(entry) = state.entries.get(hash)
            && entry.read_at.elapsed() < self.ttl
        {
            return Ok(entry.principal.clone());
        }
        Err(Ticket {
            heard: state.heard,
            live,
        })
    }

    /// Keeps what the database answered for `hash`, unless a change was heard
    /// since the ticket was taken (the answer may already be stale) or the
    /// feed was not live at either end.
    pub(crate) fn remember(
        &self,
        feed: &ChangeFeed,
        ticket: Ticket,
        hash: &str,
        principal: &Principal,
    ) {
        let mut state = self.state.lock().expect("not poisoned");
        state.apply_changes(feed);
        if !ticket.live || !feed.is_live() || state.heard != ticket.heard {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.drop_oldest_half();
        }
        state.entries.insert(
            hash.to_string(),
            Entry {
                principal: principal.clone(),
                read_at: Instant::now(),
            },
        );
    }
}

impl State {
    /// Applies every change heard since the last lookup.
    fn apply_changes(&mut self, feed: &ChangeFeed) {
        let changes = self.changes.get_or_insert_with(|| feed.subscribe());
        loop {
            match changes.try_recv() {
                Ok(Change::ApiKey(id)) => {
                    self.heard += 1;
                    self.entries.retain(|_, entry| entry.principal.key_id != id);
                }
                // Published components and connections are not keys.
                Ok(Change::Component(_)) | Ok(Change::Connection(_)) => {}
                Ok(Change::Everything) | Err(TryRecvError::Lagged(_)) => {
                    self.heard += 1;
                    self.entries.clear();
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => {
                    self.heard += 1;
                    self.entries.clear();
                    self.changes = None;
                    return;
                }
            }
        }
    }

    fn drop_oldest_half(&mut self) {
        let mut ages: Vec<Instant> = self.entries.values().map(|e| e.read_at).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        self.entries.retain(|_, entry| entry.read_at > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccountScope, Role};

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
        let kept = cache.state.lock().unwrap().entries.len();
        assert!(kept <= MAX_ENTRIES, "{kept} entries");
        assert!(
            cache
                .lookup(&feed, &format!("h{}", MAX_ENTRIES + 9))
                .is_ok()
        );
    }
}
