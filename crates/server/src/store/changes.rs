//! Change notices: after a write that readers cache (an API key revoked, a
//! connector version published or rolled back, a connection's tokens or
//! status written), the writer publishes a [`Change`], and every cache of
//! every replica hears it and drops (or reloads) what it holds.
//!
//! - In one process the notice goes through a broadcast channel at once.
//! - Across replicas on PostgreSQL it goes through `pg_notify` on
//!   [`CHANNEL`]; each process keeps one `LISTEN` connection (started on the
//!   first subscription) and forwards what it hears into its channel.
//! - When that connection is lost, or has not connected yet, the feed is not
//!   [`live`](ChangeFeed::is_live): caches must not answer from memory then,
//!   and on reconnection every subscriber gets [`Change::Everything`] (what
//!   was published while nobody listened is lost).
//!
//! SQLite has no notification channel: only writes of this process are heard
//! (another process writing the same file, such as `connector-host api-keys
//! revoke`, is seen when cached entries expire).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, oneshot};

/// The PostgreSQL notification channel of every change notice.
pub const CHANNEL: &str = "connector_host_changes";

/// How many notices a slow subscriber may fall behind before it is told to
/// drop everything ([`Change::Everything`]).
const BUFFER: usize = 1024;

/// The longest wait between two attempts to (re)connect the listener.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The API key with this id was revoked (or otherwise changed).
    ApiKey(String),
    /// The live published version of the connector with this id changed
    /// (published, pinned, unpinned, rolled back or retired).
    Component(String),
    /// The connection with this id was written (tokens, status, identity).
    Connection(String),
    /// Notices may have been missed: drop every cached entry.
    Everything,
}

impl Change {
    /// The notification payload: `api-key:<id>`, `component:<id>`,
    /// `connection:<id>`, `everything`.
    pub(crate) fn payload(&self) -> Option<String> {
        match self {
            Change::ApiKey(id) => Some(format!("api-key:{id}")),
            Change::Component(id) => Some(format!("component:{id}")),
            Change::Connection(id) => Some(format!("connection:{id}")),
            Change::Everything => Some("everything".to_string()),
        }
    }

    /// A payload read back; anything unknown (a newer replica's notice)
    /// drops everything, which is always safe.
    fn parse(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("api-key", id)) => Change::ApiKey(id.to_string()),
            Some(("component", id)) => Change::Component(id.to_string()),
            Some(("connection", id)) => Change::Connection(id.to_string()),
            _ => Change::Everything,
        }
    }
}

/// One database's change notices (shared by every clone of the database).
pub struct ChangeFeed {
    sender: broadcast::Sender<Change>,
    /// PostgreSQL: the URL the listener connects to. `None` on SQLite.
    postgres_url: Option<String>,
    /// Whether notices from other processes are being heard now.
    live: Arc<AtomicBool>,
    /// Dropped with the feed, which stops the listener task.
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    started: AtomicBool,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("postgres", &self.postgres_url.is_some())
            .field("live", &self.is_live())
            .finish()
    }
}

impl ChangeFeed {
    /// The feed of a SQLite database: this process only, always live.
    pub(crate) fn in_process() -> Self {
        Self::new(None)
    }

    /// The feed of the PostgreSQL database at `url` (already checked for TLS).
    pub(crate) fn postgres(url: &str) -> Self {
        Self::new(Some(url.to_string()))
    }

    fn new(postgres_url: Option<String>) -> Self {
        let (sender, _) = broadcast::channel(BUFFER);
        Self {
            sender,
            live: Arc::new(AtomicBool::new(postgres_url.is_none())),
            postgres_url,
            stop: std::sync::Mutex::new(None),
            started: AtomicBool::new(false),
        }
    }

    /// Whether a subscriber hears every change published anywhere now (on
    /// PostgreSQL: the listener is connected and listening).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// A receiver of every later change. On PostgreSQL the first subscription
    /// starts the listener (it needs a tokio runtime); until it listens, the
    /// feed is not live.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        let receiver = self.sender.subscribe();
        self.start_listener();
        receiver
    }

    /// Tells this process's subscribers at once; `pg_notify` then tells the
    /// other replicas (and this process again, harmlessly). A failed
    /// notification is logged: other replicas then see the change when their
    /// cached entries expire.
    pub(crate) async fn publish(&self, pool: &sqlx::AnyPool, change: Change) {
        let payload = change.payload();
        let _ = self.sender.send(change);
        let (Some(payload), Some(_)) = (payload, &self.postgres_url) else {
            return;
        };
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "could not notify the other replicas of a change; they see it when their cached entries expire");
        }
    }

    /// The in-process sender, for tests that play a notice arriving.
    #[cfg(test)]
    pub(crate) fn sender_for_tests(&self) -> &broadcast::Sender<Change> {
        &self.sender
    }

    /// Starts listening now (PostgreSQL, inside a tokio runtime), rather
    /// than at the first subscription, so the feed is live before the first
    /// request needs it.
    pub fn start(&self) {
        self.start_listener();
    }

    fn start_listener(&self) {
        let Some(url) = &self.postgres_url else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.started.store(false, Ordering::Release);
            return;
        };
        let (stop, stopped) = oneshot::channel();
        *self.stop.lock().expect("not poisoned") = Some(stop);
        runtime.spawn(listen(
            url.clone(),
            self.sender.clone(),
            self.live.clone(),
            stopped,
        ));
    }
}

/// Forwards the notices of [`CHANNEL`] into `sender` until `stopped`,
/// reconnecting (with a growing delay) when the connection fails.
async fn listen(
    url: String,
    sender: broadcast::Sender<Change>,
    live: Arc<AtomicBool>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut delay = Duration::from_millis(50);
    loop {
        let heard = tokio::select! {
            _ = &mut stopped => return,
            outcome = listen_once(&url, &sender, &live) => outcome,
        };
        live.store(false, Ordering::Release);
        let _ = sender.send(Change::Everything);
        if let Err(error) = heard {
            tracing::warn!(%error, "change notices: the listening connection failed; cached API keys and connections are bypassed until it is back");
        }
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

/// One listening connection: live from `LISTEN` until the connection is lost.
async fn listen_once(
    url: &str,
    sender: &broadcast::Sender<Change>,
    live: &AtomicBool,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    // Anything published before this point was missed.
    let _ = sender.send(Change::Everything);
    live.store(true, Ordering::Release);
    // `try_recv` answers `None` when the connection is lost (and would
    // reconnect on the next call, silently): stop at the first `None`.
    while let Some(notification) = listener.try_recv().await? {
        let _ = sender.send(Change::parse(notification.payload()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_drop_everything() {
        for change in [
            Change::ApiKey("key_0123".into()),
            Change::Component("insightly".into()),
            Change::Connection("conn_0123".into()),
        ] {
            assert_eq!(Change::parse(&change.payload().unwrap()), change);
        }
        assert_eq!(Change::parse("webhook:x"), Change::Everything);
        assert_eq!(Change::parse("garbage"), Change::Everything);
        assert_eq!(
            Change::parse(&Change::Everything.payload().unwrap()),
            Change::Everything
        );
    }

    #[test]
    fn an_in_process_feed_is_live_and_a_postgres_one_waits_for_its_listener() {
        assert!(ChangeFeed::in_process().is_live());
        // No runtime here: the listener cannot start, so the feed stays not live.
        let feed = ChangeFeed::postgres("postgres://127.0.0.1:1/none");
        let _receiver = feed.subscribe();
        assert!(!feed.is_live());
    }
}
