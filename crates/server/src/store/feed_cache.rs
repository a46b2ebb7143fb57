//! A read cache kept honest by the change feed ([`super::changes`]): the
//! mechanism the API-key cache (`store/key_cache.rs`) and the connection
//! cache (`store/connections/cache.rs`) share. Each says only what it keeps
//! and which [`Change`] drops which entries.
//!
//! The rules, in one place:
//! - every change heard is applied before a lookup answers;
//! - while the feed is not live, nothing is answered from memory and nothing
//!   is kept;
//! - a value read from the database is kept only if no change that concerns
//!   this cache was heard while the read was under way (the [`Ticket`]);
//! - an entry is answered for at most the cache's time to live after it was
//!   read;
//! - at most [`MAX_ENTRIES`] are kept; when full, the older half is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::TryRecvError};

use super::changes::{Change, ChangeFeed};

/// The most entries one cache keeps; when full, the older half is dropped.
pub const MAX_ENTRIES: usize = 10_000;

/// What one change does to a cache's entries.
pub(crate) enum Invalidate<V> {
    /// It concerns nothing this cache keeps.
    Nothing,
    /// It drops the entry under this key.
    Key(String),
    /// It drops every entry whose value the predicate picks.
    Where(Box<dyn Fn(&V) -> bool>),
}

/// Values of type `V` by key, invalidated by the change feed.
pub(crate) struct FeedCache<V> {
    ttl: Duration,
    invalidate: fn(Change) -> Invalidate<V>,
    state: Mutex<State<V>>,
}

struct State<V> {
    entries: HashMap<String, Entry<V>>,
    /// `None` until the first lookup subscribes (it may need the runtime).
    changes: Option<broadcast::Receiver<Change>>,
    /// Counts every change heard that concerns this cache, so a read can
    /// tell whether one arrived while it was away at the database.
    heard: u64,
}

struct Entry<V> {
    value: V,
    read_at: Instant,
}

/// What a lookup saw, to be handed back with the database's answer.
pub(crate) struct Ticket {
    heard: u64,
    live: bool,
}

impl<V: Clone> FeedCache<V> {
    /// A cache whose entries live at most `ttl` (zero: nothing is kept), and
    /// which `invalidate` says what each change drops from.
    pub(crate) fn new(ttl: Duration, invalidate: fn(Change) -> Invalidate<V>) -> Self {
        Self {
            ttl,
            invalidate,
            state: Mutex::new(State {
                entries: HashMap::new(),
                changes: None,
                heard: 0,
            }),
        }
    }

    /// The value under `key` when it is kept, young enough, `usable` and the
    /// feed is live; otherwise a ticket for [`FeedCache::remember`] after the
    /// database read.
    pub(crate) fn lookup(
        &self,
        feed: &ChangeFeed,
        key: &str,
        usable: impl FnOnce(&V) -> bool,
    ) -> Result<V, Ticket> {
        let mut state = self.state.lock().expect("not poisoned");
        state.apply_changes(feed, self.invalidate);
        let live = feed.is_live() && !self.ttl.is_zero();
        if live
            && let Some(entry) = state.entries.get(key)
            && entry.read_at.elapsed() < self.ttl
            && usable(&entry.value)
        {
            return Ok(entry.value.clone());
        }
        Err(Ticket {
            heard: state.heard,
            live,
        })
    }

    /// Keeps what the database answered under `key`, unless a change was
    /// heard since the ticket was taken (the answer may already be stale) or
    /// the feed was not live at either end.
    pub(crate) fn remember(&self, feed: &ChangeFeed, ticket: Ticket, key: &str, value: &V) {
        let mut state = self.state.lock().expect("not poisoned");
        state.apply_changes(feed, self.invalidate);
        if !ticket.live || !feed.is_live() || state.heard != ticket.heard {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.drop_older_half();
        }
        state.entries.insert(
            key.to_string(),
            Entry {
                value: value.clone(),
                read_at: Instant::now(),
            },
        );
    }

    /// How many entries are kept (for the tests of the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().expect("not poisoned").entries.len()
    }
}

impl<V> State<V> {
    /// Applies every change heard since the last lookup. A missed change
    /// (lagged, or the feed closed) and [`Change::Everything`] drop all
    /// entries.
    fn apply_changes(&mut self, feed: &ChangeFeed, invalidate: fn(Change) -> Invalidate<V>) {
        let changes = self.changes.get_or_insert_with(|| feed.subscribe());
        loop {
            match changes.try_recv() {
                Ok(Change::Everything) | Err(TryRecvError::Lagged(_)) => {
                    self.heard += 1;
                    self.entries.clear();
                }
                Ok(change) => match invalidate(change) {
                    Invalidate::Nothing => {}
                    Invalidate::Key(key) => {
                        self.heard += 1;
                        self.entries.remove(&key);
                    }
                    Invalidate::Where(picks) => {
                        self.heard += 1;
                        self.entries.retain(|_, entry| !picks(&entry.value));
                    }
                },
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

    fn drop_older_half(&mut self) {
        let mut ages: Vec<Instant> = self.entries.values().map(|e| e.read_at).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        self.entries.retain(|_, entry| entry.read_at > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of numbers by name: `Change::ApiKey(name)` drops that name,
    /// `Change::Connection(n)` every value equal to `n`.
    fn cache(ttl: Duration) -> FeedCache<u32> {
        FeedCache::new(ttl, |change| match change {
            Change::ApiKey(name) => Invalidate::Key(name),
            Change::Connection(n) => {
                let n: u32 = n.parse().unwrap();
                Invalidate::Where(Box::new(move |value| *value == n))
            }
            _ => Invalidate::Nothing,
        })
    }

    fn remembered(cache: &FeedCache<u32>, feed: &ChangeFeed, key: &str, value: u32) {
        let ticket = cache.lookup(feed, key, |_| true).expect_err("not kept yet");
        cache.remember(feed, ticket, key, &value);
    }

    #[tokio::test]
    async fn changes_drop_by_key_by_value_or_everything() {
        let feed = ChangeFeed::in_process();
        let cache = cache(Duration::from_secs(60));
        remembered(&cache, &feed, "a", 1);
        remembered(&cache, &feed, "b", 2);
        remembered(&cache, &feed, "c", 2);
        let _ = feed.sender_for_tests().send(Change::ApiKey("a".into()));
        assert!(cache.lookup(&feed, "a", |_| true).is_err());
        assert_eq!(cache.lookup(&feed, "b", |_| true).ok(), Some(2));
        let _ = feed.sender_for_tests().send(Change::Component("x".into()));
        assert_eq!(cache.lookup(&feed, "c", |_| true).ok(), Some(2));
        assert_eq!(cache.len(), 2, "a change it is not about drops nothing");
        let _ = feed.sender_for_tests().send(Change::Connection("2".into()));
        assert!(cache.lookup(&feed, "b", |_| true).is_err());
        assert_eq!(cache.len(), 0, "both entries of value 2 are gone");
        remembered(&cache, &feed, "d", 4);
        let _ = feed.sender_for_tests().send(Change::Everything);
        assert!(cache.lookup(&feed, "d", |_| true).is_err());
    }

    #[tokio::test]
    async fn only_a_change_it_is_about_spoils_a_read_under_way() {
        let feed = ChangeFeed::in_process();
        let cache = cache(Duration::from_secs(60));
        let ticket = cache.lookup(&feed, "a", |_| true).expect_err("empty");
        let _ = feed.sender_for_tests().send(Change::Component("x".into()));
        cache.remember(&feed, ticket, "a", &1);
        assert_eq!(cache.lookup(&feed, "a", |_| true).ok(), Some(1));

        let ticket = cache.lookup(&feed, "b", |_| true).expect_err("empty");
        let _ = feed.sender_for_tests().send(Change::ApiKey("b".into()));
        cache.remember(&feed, ticket, "b", &2);
        assert!(cache.lookup(&feed, "b", |_| true).is_err());
    }

    #[tokio::test]
    async fn an_unusable_value_is_not_answered() {
        let feed = ChangeFeed::in_process();
        let cache = cache(Duration::from_secs(60));
        remembered(&cache, &feed, "a", 1);
        assert!(cache.lookup(&feed, "a", |value| *value == 7).is_err());
    }

    #[tokio::test]
    async fn nothing_is_kept_with_a_zero_lifetime_or_a_feed_that_is_not_live() {
        let feed = ChangeFeed::in_process();
        let cache = cache(Duration::ZERO);
        remembered(&cache, &feed, "a", 1);
        assert!(cache.lookup(&feed, "a", |_| true).is_err());

        let deaf = ChangeFeed::postgres("postgres://127.0.0.1:1/none");
        let cache = super::tests::cache(Duration::from_secs(60));
        remembered(&cache, &deaf, "a", 1);
        assert!(cache.lookup(&deaf, "a", |_| true).is_err());
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let feed = ChangeFeed::in_process();
        let cache = cache(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES + 10) {
            remembered(&cache, &feed, &format!("k{i}"), 0);
        }
        assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
        let newest = format!("k{}", MAX_ENTRIES + 9);
        assert!(cache.lookup(&feed, &newest, |_| true).is_ok());
    }
}
