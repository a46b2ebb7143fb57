//! Encrypted connection storage on a real SQLite file and, when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set (always in CI), on PostgreSQL.

use std::sync::Arc;

use connector_server::store::crypto::{Aad, CryptoError, Keyring};
use connector_server::store::{
    ConnectionRef, ConnectionSecrets, ConnectionStatus, ConnectionStore, ConnectionStoreError,
    LeaseStore, NewConnection,
};
use connector_test_support::databases::{databases, unique};
use secrecy::{ExposeSecret, SecretString};

const API_KEY: &str = "key-0a1b-secret";

fn login(account: &str, user: &str, api_key: &str) -> NewConnection {
    NewConnection {
        account_id: account.into(),
        user_id: user.into(),
        connector_id: "insightly".into(),
        auth_type: "apiKey".into(),
        hostname: None,
        platform_user_id: Some("12345".into()),
        user_name: Some("Ada Lovelace".into()),
        timezone_name: None,
        timezone_offset: None,
        additional_info: vec![("apiUrl".into(), "https://api.na1.insightly.com".into())],
        expires_at: None,
        secrets: ConnectionSecrets {
            api_key: Some(SecretString::from(api_key)),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn secrets_are_encrypted_bound_to_their_row_and_scoped_by_account() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = ConnectionStore::new(database.clone(), keys);
        let (account, other) = (unique("acct"), unique("acct"));
        let saved = store.save(login(&account, "u1", API_KEY)).await.unwrap();
        assert!(saved.has_api_key && !saved.has_access_token, "{backend}");
        assert_eq!(saved.status, ConnectionStatus::Active);
        let json = serde_json::to_string(&saved).unwrap();
        assert!(
            !json.contains(API_KEY),
            "{backend}: a connection never carries its secrets"
        );

        let secrets = store.secrets(&saved).await.unwrap();
        assert_eq!(secrets.api_key.unwrap().expose_secret(), API_KEY);
        let elsewhere = ConnectionRef {
            account_id: &other,
            ..saved.at()
        };
        assert!(
            store.get(elsewhere).await.unwrap().is_none(),
            "{backend}: other account reads nothing"
        );
        assert!(
            !store.clear_credentials(elsewhere).await.unwrap(),
            "{backend}: nor clears it"
        );
        let other_user = ConnectionRef {
            user_id: "u2",
            ..saved.at()
        };
        assert!(
            store.get(other_user).await.unwrap().is_none(),
            "{backend}: another user of the account reads nothing"
        );
        assert!(
            !store.clear_credentials(other_user).await.unwrap(),
            "{backend}: nor clears it"
        );

        // The same user logging in again replaces the connection, same id.
        let again = store
            .save(login(&account, "u1", "key-rotated"))
            .await
            .unwrap();
        assert_eq!(again.id, saved.id);
        assert_eq!(
            store
                .secrets(&again)
                .await
                .unwrap()
                .api_key
                .unwrap()
                .expose_secret(),
            "key-rotated"
        );
        assert_eq!(store.list(&account, "u1").await.unwrap().len(), 1);

        let cleared = store.clear_credentials(saved.at()).await.unwrap();
        assert!(cleared);
        let after = store.get(saved.at()).await.unwrap().unwrap();
        assert_eq!(after.status, ConnectionStatus::Revoked);
        assert!(!after.has_api_key);
        assert!(store.secrets(&after).await.unwrap().api_key.is_none());
    }
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_row_fails_to_decrypt() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = ConnectionStore::new(database.clone(), keys);
        let account = unique("acct");
        let victim = store
            .save(login(&account, "victim", API_KEY))
            .await
            .unwrap();
        let attacker = store
            .save(login(&account, "attacker", "attacker-key"))
            .await
            .unwrap();
        database
            .copy_column_for_tests("api_key", &victim.id, &attacker.id)
            .await
            .unwrap();
        match store.secrets(&attacker).await {
            Err(ConnectionStoreError::Crypto {
                column: "api_key",
                source: CryptoError::Authentication,
                ..
            }) => {}
            other => panic!("{backend}: expected an authentication failure, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_row_moved_to_another_user_fails_to_decrypt() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = ConnectionStore::new(database.clone(), keys);
        let account = unique("acct");
        let victim = store
            .save(login(&account, "victim", API_KEY))
            .await
            .unwrap();
        // A database writer hands the victim's connection to another user of
        // the same account: every column but user_id stays as it was.
        let moved = database
            .execute_for_tests(
                "UPDATE connections SET user_id = 'attacker' WHERE id = $1",
                &[&victim.id],
            )
            .await
            .unwrap();
        assert_eq!(moved, 1, "{backend}");
        let at = ConnectionRef {
            user_id: "attacker",
            ..victim.at()
        };
        let stolen = store.get(at).await.unwrap().expect("the moved row");
        match store.secrets(&stolen).await {
            Err(ConnectionStoreError::Crypto {
                column: "api_key",
                source: CryptoError::Authentication,
                ..
            }) => {}
            other => panic!("{backend}: expected an authentication failure, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn secrets_written_before_user_binding_are_refused_until_the_upgrade_binds_them() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = ConnectionStore::new(database.clone(), keys.clone());
        let account = unique("acct");
        let saved = store.save(login(&account, "u1", API_KEY)).await.unwrap();
        // The row as a host before the upgrade wrote it: a `v1` envelope,
        // whose associated data has no user.
        let aad = Aad {
            tenant: &account,
            user: "",
            connector: "insightly",
            record: &saved.id,
            purpose: "api_key",
        };
        let legacy = keys.encrypt_unbound_for_tests(API_KEY.as_bytes(), aad);
        database
            .set_secret_column_for_tests(&saved.id, "api_key", Some(legacy))
            .await
            .unwrap();
        match store.secrets(&saved).await {
            Err(ConnectionStoreError::Crypto {
                source: CryptoError::UnboundToUser,
                ..
            }) => {}
            other => panic!("{backend}: a v1 user secret is refused, got {other:?}"),
        }

        let report = store.bind_secrets_to_users().await.unwrap();
        // (The PostgreSQL database outlives a run: look at this row only.)
        assert!(report.rotated >= 1, "{backend}: {report:?}");
        assert!(
            !report.failed.iter().any(|f| f.contains(&saved.id)),
            "{backend}: {report:?}"
        );
        let stored = database
            .secret_column_for_tests(&saved.id, "api_key")
            .await
            .unwrap()
            .unwrap();
        assert!(stored.starts_with("v2.k1."), "{backend}: {stored}");
        let secrets = store.secrets(&saved).await.unwrap();
        assert_eq!(secrets.api_key.unwrap().expose_secret(), API_KEY);
        // Nothing of this row is left to upgrade: it stays as it is.
        store.bind_secrets_to_users().await.unwrap();
        let stored_again = database
            .secret_column_for_tests(&saved.id, "api_key")
            .await
            .unwrap();
        assert_eq!(stored_again, Some(stored), "{backend}");
    }
}

#[tokio::test]
async fn keys_rotate_and_unknown_key_ids_fail() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let old = Keyring::generate_entry("old");
        let new = Keyring::generate_entry("new");
        let account = unique("acct");
        let before = ConnectionStore::new(
            database.clone(),
            Arc::new(Keyring::from_spec(&old).unwrap()),
        );
        let saved = before.save(login(&account, "u1", API_KEY)).await.unwrap();

        let only_new = ConnectionStore::new(
            database.clone(),
            Arc::new(Keyring::from_spec(&new).unwrap()),
        );
        match only_new.secrets(&saved).await {
            Err(ConnectionStoreError::Crypto {
                source: CryptoError::UnknownKeyId(id),
                ..
            }) => assert_eq!(id, "old"),
            other => panic!("{backend}: expected unknown key id, got {other:?}"),
        }

        let both = ConnectionStore::new(
            database.clone(),
            Arc::new(Keyring::from_spec(&format!("{new},{old}")).unwrap()),
        );
        assert_eq!(
            both.secrets(&saved)
                .await
                .unwrap()
                .api_key
                .unwrap()
                .expose_secret(),
            API_KEY
        );
        assert!(both.rotate_keys().await.unwrap().rotated >= 1, "{backend}");
        assert_eq!(
            both.rotate_keys().await.unwrap().rotated,
            0,
            "{backend}: nothing left to rotate"
        );
        // After rotation the old key can be retired.
        assert_eq!(
            only_new
                .secrets(&saved)
                .await
                .unwrap()
                .api_key
                .unwrap()
                .expose_secret(),
            API_KEY
        );
    }
}

#[tokio::test]
async fn a_refresh_commit_is_fenced_by_the_lease() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = ConnectionStore::new(database.clone(), keys);
        let account = unique("acct");
        let saved = store.save(login(&account, "u1", API_KEY)).await.unwrap();
        let far = i64::MAX / 2;
        database
            .hold_lease_for_tests(&saved.id, "current-holder", far)
            .await
            .unwrap();
        let token = SecretString::from("new-access");
        assert!(
            !store
                .update_tokens(&saved, &token, None, Some(1), Some("former-holder"))
                .await
                .unwrap(),
            "{backend}: a holder that lost the lease cannot commit"
        );
        assert!(store.secrets(&saved).await.unwrap().access_token.is_none());
        assert!(
            store
                .update_tokens(&saved, &token, None, Some(1), Some("current-holder"))
                .await
                .unwrap(),
            "{backend}: the holder commits"
        );
        let secrets = store.secrets(&saved).await.unwrap();
        assert_eq!(secrets.access_token.unwrap().expose_secret(), "new-access");
    }
}

#[tokio::test]
async fn only_the_holder_renews_a_lease() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let leases = LeaseStore::new(database.clone());
        let id = unique("conn");
        assert!(leases.try_acquire(&id, "holder", 1_000).await.unwrap());
        let (_, first) = leases.holder(&id).await.unwrap().unwrap();
        assert!(
            !leases.renew(&id, "another", 60_000).await.unwrap(),
            "{backend}: only the holder renews"
        );
        assert!(leases.renew(&id, "holder", 60_000).await.unwrap());
        let (owner, renewed) = leases.holder(&id).await.unwrap().unwrap();
        assert_eq!(owner, "holder");
        assert!(renewed > first, "{backend}: the expiry moved forward");
        assert!(!leases.try_acquire(&id, "another", 1_000).await.unwrap());
        leases.release(&id, "holder").await.unwrap();
        assert!(
            !leases.renew(&id, "holder", 60_000).await.unwrap(),
            "{backend}: a released lease is not renewed back"
        );
        assert!(leases.holder(&id).await.unwrap().is_none());
    }
}
