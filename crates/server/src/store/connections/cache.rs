//! The connections the proxy routes read, kept in memory so that a proxied
//! request does not wait for a database read. What is kept is the row as
//! stored: the connection and its secrets still **encrypted** (each read
//! decrypts them again); nothing decrypted stays in memory.
//!
//! Staleness is bounded as for API keys (`store/key_cache.rs`), by push
//! invalidation ([`crate::store::changes`], through the shared
//! [`crate::store::feed_cache::FeedCache`]):
//! - every write of [`super::ConnectionStore`] publishes
//!   [`Change::Connection`]: this process's next read goes to the database;
//! - another replica on PostgreSQL drops its entry when the notice arrives
//!   (`pg_notify`, milliseconds);
//! - while the notice connection is down, nothing is answered from memory;
//! - in every case an entry is used for at most [`TTL`] after it was read
//!   (the bound when a notice is lost, or for a SQLite file that another
//!   process writes).
//!
//! Only connections that exist are kept, at most [`crate::store::feed_cache::MAX_ENTRIES`].

use std::time::Duration;

use super::Connection;
use crate::store::changes::{Change, ChangeFeed};
use crate::store::feed_cache::{FeedCache, Invalidate, Ticket};

/// The longest an entry is answered from memory after it was read.
pub const TTL: Duration = Duration::from_secs(5);

/// A connection's row as read: the connection, and its three secret
/// envelopes (access token, refresh token, API key), still encrypted.
#[derive(Clone)]
pub(super) struct Row {
    pub connection: Connection,
    pub envelopes: [Option<String>; 3],
}

/// The cached rows of one store, by connection id.
pub(super) struct ConnectionCache {
    rows: FeedCache<Row>,
}

impl Default for ConnectionCache {
    fn default() -> Self {
        Self {
            rows: FeedCache::new(TTL, invalidated),
        }
    }
}

impl ConnectionCache {
    /// The row of connection `id` of `account`/`user` when it is kept and
    /// may be trusted now; otherwise a ticket for [`ConnectionCache::remember`].
    pub(super) fn lookup(
        &self,
        feed: &ChangeFeed,
        id: &str,
        account_id: &str,
        user_id: &str,
    ) -> Result<Row, Ticket> {
        self.rows.lookup(feed, id, |row| {
            row.connection.account_id == account_id && row.connection.user_id == user_id
        })
    }

    /// Keeps a row the database answered, unless a change was heard since
    /// the ticket was taken (the row may already be stale) or the feed was
    /// not live at either end.
    pub(super) fn remember(&self, feed: &ChangeFeed, ticket: Ticket, row: &Row) {
        self.rows.remember(feed, ticket, &row.connection.id, row);
    }
}

/// A connection's change drops that connection; API keys and published
/// components are not connections.
fn invalidated(change: Change) -> Invalidate<Row> {
    match change {
        Change::Connection(id) => Invalidate::Key(id),
        Change::ApiKey(_) | Change::Component(_) | Change::Everything => Invalidate::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ConnectionStatus;
    use crate::store::feed_cache::MAX_ENTRIES;

    fn row(id: &str) -> Row {
        Row {
            connection: Connection {
                id: id.into(),
                account_id: "acct".into(),
                user_id: "user".into(),
                connector_id: "c".into(),
                auth_type: "oauth".into(),
                status: ConnectionStatus::Active,
                hostname: None,
                platform_user_id: None,
                user_name: None,
                timezone_name: None,
                timezone_offset: None,
                additional_info: Vec::new(),
                expires_at: None,
                has_access_token: true,
                has_refresh_token: false,
                has_api_key: false,
                created_at: 0,
                updated_at: 0,
                refresh: None,
            },
            envelopes: [Some("v3.envelope".into()), None, None],
        }
    }

    fn remembered(cache: &ConnectionCache, feed: &ChangeFeed, id: &str) {
        let ticket = cache
            .lookup(feed, id, "acct", "user")
            .err()
            .expect("not cached yet");
        cache.remember(feed, ticket, &row(id));
    }

    #[tokio::test]
    async fn a_change_drops_the_connection_it_names_and_only_that_one() {
        let feed = ChangeFeed::in_process();
        let cache = ConnectionCache::default();
        remembered(&cache, &feed, "c1");
        remembered(&cache, &feed, "c2");
        assert!(cache.lookup(&feed, "c1", "acct", "user").is_ok());
        let _ = feed
            .sender_for_tests()
            .send(Change::Connection("c1".into()));
        assert!(cache.lookup(&feed, "c1", "acct", "user").is_err());
        assert!(cache.lookup(&feed, "c2", "acct", "user").is_ok());
        let _ = feed.sender_for_tests().send(Change::ApiKey("key_1".into()));
        assert!(
            cache.lookup(&feed, "c2", "acct", "user").is_ok(),
            "an API-key change leaves connections alone"
        );
        let _ = feed.sender_for_tests().send(Change::Everything);
        assert!(cache.lookup(&feed, "c2", "acct", "user").is_err());
    }

    #[tokio::test]
    async fn a_row_read_while_its_connection_changed_is_not_kept() {
        let feed = ChangeFeed::in_process();
        let cache = ConnectionCache::default();
        let ticket = cache
            .lookup(&feed, "c1", "acct", "user")
            .err()
            .expect("not cached");
        // Logged out while the database read is under way.
        let _ = feed
            .sender_for_tests()
            .send(Change::Connection("c1".into()));
        cache.remember(&feed, ticket, &row("c1"));
        assert!(cache.lookup(&feed, "c1", "acct", "user").is_err());
    }

    #[tokio::test]
    async fn a_cached_row_is_not_answered_for_another_account_or_user() {
        let feed = ChangeFeed::in_process();
        let cache = ConnectionCache::default();
        remembered(&cache, &feed, "c1");
        assert!(cache.lookup(&feed, "c1", "acct", "attacker").is_err());
        assert!(cache.lookup(&feed, "c1", "other", "user").is_err());
    }

    #[tokio::test]
    async fn nothing_is_kept_while_the_feed_is_not_live_and_the_cache_stays_bounded() {
        let deaf = ChangeFeed::postgres("postgres://127.0.0.1:1/none");
        let cache = ConnectionCache::default();
        remembered(&cache, &deaf, "c1");
        assert!(cache.lookup(&deaf, "c1", "acct", "user").is_err());

        let feed = ChangeFeed::in_process();
        let cache = ConnectionCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            remembered(&cache, &feed, &format!("c{i}"));
        }
        let kept = cache.rows.len();
        assert!(kept <= MAX_ENTRIES, "{kept} entries");
    }
}
