//! The connection cache of the proxy routes' read
//! (`ConnectionStore::get_with_secrets`, `store/connections/cache.rs`) on a
//! real SQLite file and, when `CONNECTOR_HOST_TEST_POSTGRES_URL` is set, on
//! PostgreSQL: every write through the store is seen by the next read; a
//! write through another replica's pool is heard through `LISTEN`/`NOTIFY`;
//! a write behind every store's back is seen once the entry expires; a
//! cached row is never answered for another account or user.

use std::sync::Arc;
use std::time::Duration;

use connector_server::store::crypto::Keyring;
use connector_server::store::{
    ConnectionRef, ConnectionSecrets, ConnectionStatus, ConnectionStore, Database, NewConnection,
};
use connector_test_support::databases::{databases, unique};
use secrecy::{ExposeSecret, SecretString};

fn login(account: &str, token: &str) -> NewConnection {
    NewConnection {
        account_id: account.into(),
        user_id: "user".into(),
        connector_id: "regional".into(),
        auth_type: "oauth".into(),
        hostname: None,
        platform_user_id: Some("12345".into()),
        user_name: None,
        timezone_name: None,
        timezone_offset: None,
        additional_info: Vec::new(),
        expires_at: Some(4_000_000_000),
        secrets: ConnectionSecrets {
            access_token: Some(SecretString::from(token)),
            refresh_token: Some(SecretString::from("refresh")),
            ..Default::default()
        },
    }
}

/// The access token and status the proxy routes would read now.
async fn proxied(
    store: &ConnectionStore,
    at: ConnectionRef<'_>,
) -> Option<(ConnectionStatus, Option<String>)> {
    let (connection, secrets) = store.get_with_secrets(at).await.unwrap()?;
    let token = secrets.access_token.map(|t| t.expose_secret().to_string());
    Some((connection.status, token))
}

/// Polls `condition` every 20 ms until it holds, for at most 20 seconds.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn keys() -> Arc<Keyring> {
    Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_through_the_store_is_seen_by_the_next_read() {
    for backend in databases().await {
        let (database, name) = (backend.database.clone(), backend.name);
        let store = ConnectionStore::new(database.clone(), keys());
        let saved = store.save(login(&unique("acct"), "token-1")).await.unwrap();
        let at = saved.at();
        assert_eq!(
            proxied(&store, at).await,
            Some((ConnectionStatus::Active, Some("token-1".into())))
        );
        eventually("the change feed is live", || async {
            database.changes().is_live()
        })
        .await;
        // Cached now (read twice), then written: the next read sees each write.
        proxied(&store, at).await;
        store
            .update_tokens(
                &saved,
                &SecretString::from("token-2"),
                None,
                Some(4_000_000_001),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            proxied(&store, at).await,
            Some((ConnectionStatus::Active, Some("token-2".into()))),
            "{name}"
        );
        store
            .set_status(at, ConnectionStatus::NeedsReauth)
            .await
            .unwrap();
        assert_eq!(
            proxied(&store, at).await.unwrap().0,
            ConnectionStatus::NeedsReauth,
            "{name}"
        );
        let mut again = login(&saved.account_id, "token-3");
        again.user_id = saved.user_id.clone();
        store.save(again).await.unwrap();
        assert_eq!(
            proxied(&store, at).await,
            Some((ConnectionStatus::Active, Some("token-3".into()))),
            "{name}: a new login replaces the cached row"
        );
        store.clear_credentials(at).await.unwrap();
        assert_eq!(
            proxied(&store, at).await,
            Some((ConnectionStatus::Revoked, None)),
            "{name}: a logged-out connection is never proxied"
        );
    }
}

#[tokio::test]
async fn a_cached_connection_is_not_read_with_another_account_or_user() {
    for backend in databases().await {
        let store = ConnectionStore::new(backend.database.clone(), keys());
        let saved = store.save(login(&unique("acct"), "token-1")).await.unwrap();
        proxied(&store, saved.at()).await;
        proxied(&store, saved.at()).await;
        let other_user = ConnectionRef {
            user_id: "attacker",
            ..saved.at()
        };
        let other_account = ConnectionRef {
            account_id: "attacker-acct",
            ..saved.at()
        };
        assert_eq!(proxied(&store, other_user).await, None, "{}", backend.name);
        assert_eq!(
            proxied(&store, other_account).await,
            None,
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_through_another_replica_is_heard_or_expires() {
    for backend in databases().await {
        let (database, name) = (backend.database.clone(), backend.name);
        let keys = keys();
        let store = ConnectionStore::new(database.clone(), keys.clone());
        let saved = store.save(login(&unique("acct"), "token-1")).await.unwrap();
        let at = saved.at();
        proxied(&store, at).await;
        eventually("the change feed is live", || async {
            database.changes().is_live()
        })
        .await;
        assert_eq!(
            proxied(&store, at).await.unwrap().0,
            ConnectionStatus::Active
        );
        // Another replica (its own pool and change feed) logs the user out.
        let replica = ConnectionStore::new(Database::connect(&backend.url).await.unwrap(), keys);
        assert!(replica.clear_credentials(at).await.unwrap());
        // PostgreSQL: the notice arrives within milliseconds. SQLite (another
        // process writing the file): the entry expires within its TTL.
        eventually(&format!("{name}: the logout is seen"), || async {
            proxied(&store, at).await == Some((ConnectionStatus::Revoked, None))
        })
        .await;
    }
}
