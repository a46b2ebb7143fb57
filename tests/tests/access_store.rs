//! API keys, admin-managed credentials and the admin audit in the database:
//! a real SQLite file and, when `CONNECTOR_HOST_TEST_POSTGRES_URL` is set
//! (always in CI), PostgreSQL.

use std::sync::Arc;

use connector_server::access::{AccountScope, Principal, Role};
use connector_server::store::crypto::Keyring;
use connector_server::store::{
    AdminAudit, AdminChange, ApiKeyStore, ConnectionStore, Database, ManagedStore,
    ManagedStoreError, OAuthAppValues, Slot,
};
use connector_test_support::databases::{databases, unique};
use secrecy::{ExposeSecret, SecretString};

fn managed(database: &Database, keys: &Arc<Keyring>) -> ManagedStore {
    ConnectionStore::new(database.clone(), keys.clone()).managed()
}

#[tokio::test]
async fn api_keys_are_hashed_scoped_and_revocable() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let store = ApiKeyStore::new(database.clone());
        let account = unique("acct");
        let (record, secret) = store
            .create("platform", Role::Service, std::slice::from_ref(&account))
            .await
            .unwrap();
        let token = secret.expose_secret().to_string();
        assert!(token.starts_with("chk_") && token.len() > 40, "{backend}");
        let stored: String = sqlx_text(&database, &record.id).await;
        assert_ne!(stored, token, "{backend}: only a hash is stored");
        assert_eq!(stored.len(), 64);

        let principal = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(principal.role, Role::Service);
        assert_eq!(
            principal.accounts,
            AccountScope::Only(vec![account.clone()])
        );
        assert!(store.authenticate("chk_not-a-key").await.unwrap().is_none());
        assert!(
            store
                .authenticate(&token[..token.len() - 1])
                .await
                .unwrap()
                .is_none()
        );

        assert!(store.revoke(&record.id).await.unwrap());
        assert!(!store.revoke(&record.id).await.unwrap(), "{backend}: once");
        assert!(
            store.authenticate(&token).await.unwrap().is_none(),
            "{backend}"
        );
    }
}

/// Polls `condition` every 20 ms until it holds, for at most 20 seconds.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_kept_in_memory_hears_every_revocation() {
    for backend in databases().await {
        let (database, name) = (backend.database.clone(), backend.name);
        let store =
            ApiKeyStore::with_cache_ttl(database.clone(), std::time::Duration::from_secs(300));
        let (record, secret) = store
            .create("kept", Role::Service, &[unique("acct")])
            .await
            .unwrap();
        let token = secret.expose_secret().to_string();
        // The first lookup subscribes to change notices; on PostgreSQL the
        // listening connection then has to come up before anything is kept.
        assert!(store.authenticate(&token).await.unwrap().is_some());
        eventually("the change feed is live", || async {
            database.changes().is_live()
        })
        .await;
        assert!(store.authenticate(&token).await.unwrap().is_some());

        // Revoked behind the store's back (no notice): still answered from memory.
        let revoke = "UPDATE api_keys SET revoked_at = 1 WHERE id = $1";
        database
            .execute_for_tests(revoke, &[&record.id])
            .await
            .unwrap();
        assert!(
            store.authenticate(&token).await.unwrap().is_some(),
            "{name}: the key is kept in memory"
        );
        let restore = "UPDATE api_keys SET revoked_at = NULL WHERE id = $1";
        database
            .execute_for_tests(restore, &[&record.id])
            .await
            .unwrap();

        if name == "postgres" {
            // Revoked through another pool, as another replica would: the
            // notice reaches this one long before its five minutes are up.
            let replica = ApiKeyStore::new(Database::connect(&backend.url).await.unwrap());
            assert!(replica.revoke(&record.id).await.unwrap());
            eventually("the other replica's revocation is heard", || async {
                store.authenticate(&token).await.unwrap().is_none()
            })
            .await;
        } else {
            // Revoked through this database: refused by the very next request.
            assert!(store.revoke(&record.id).await.unwrap());
            assert!(
                store.authenticate(&token).await.unwrap().is_none(),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn a_key_revoked_behind_the_stores_back_is_refused_once_its_entry_expires() {
    for backend in databases().await {
        let (database, name) = (backend.database.clone(), backend.name);
        let store =
            ApiKeyStore::with_cache_ttl(database.clone(), std::time::Duration::from_secs(1));
        let (record, secret) = store
            .create("short", Role::Service, &[unique("acct")])
            .await
            .unwrap();
        let token = secret.expose_secret().to_string();
        assert!(store.authenticate(&token).await.unwrap().is_some());
        let revoke = "UPDATE api_keys SET revoked_at = 1 WHERE id = $1";
        database
            .execute_for_tests(revoke, &[&record.id])
            .await
            .unwrap();
        eventually(&format!("{name}: the entry expires"), || async {
            store.authenticate(&token).await.unwrap().is_none()
        })
        .await;
    }
}

async fn sqlx_text(database: &Database, id: &str) -> String {
    // The stored hash, read the way an attacker with the database would.
    database
        .api_key_hash_for_tests(id)
        .await
        .unwrap()
        .expect("stored")
}

fn app(client: &str, secret: &str) -> OAuthAppValues {
    OAuthAppValues {
        client_id: Some(client.into()),
        client_secret: Some(SecretString::from(secret)),
        token_url: Some("https://crm.example.com/oauth/token".into()),
        ..OAuthAppValues::default()
    }
}

#[tokio::test]
async fn a_pending_application_is_promoted_once_and_expires() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let keys = Arc::new(Keyring::from_spec(&Keyring::generate_entry("k1")).unwrap());
        let store = managed(&database, &keys);
        let (account, other) = (unique("acct"), unique("acct"));
        let first = store
            .set_pending(&account, "crm", &app("c1", "s1"), "key_admin")
            .await
            .unwrap();
        assert_eq!(first.slot, Slot::Pending, "{backend}");
        let v1 = first.version;
        let (active, pending) = store.oauth_apps(&account, "crm").await.unwrap();
        assert!(active.is_none());
        let pending = pending.unwrap();
        assert_eq!(pending.values.client_secret.unwrap().expose_secret(), "s1");
        assert_eq!(pending.updated_by, "key_admin");
        assert_eq!(
            store
                .oauth_apps(&other, "crm")
                .await
                .unwrap()
                .0
                .map(|a| a.version),
            None,
            "{backend}: another account sees nothing"
        );
        assert!(
            !store.promote(&other, "crm", v1).await.unwrap(),
            "{backend}"
        );

        assert!(store.promote(&account, "crm", v1).await.unwrap());
        assert!(
            !store.promote(&account, "crm", v1).await.unwrap(),
            "{backend}: once"
        );
        let second = store
            .set_pending(&account, "crm", &app("c2", "s2"), "key_admin")
            .await
            .unwrap();
        assert!(second.version > v1, "versions only grow");
        let (active, pending) = store.oauth_apps(&account, "crm").await.unwrap();
        assert_eq!(active.unwrap().values.client_id.as_deref(), Some("c1"));
        assert_eq!(pending.unwrap().values.client_id.as_deref(), Some("c2"));

        store
            .expire_pending_for_tests(&account, "crm")
            .await
            .unwrap();
        let (active, pending) = store.oauth_apps(&account, "crm").await.unwrap();
        assert!(pending.is_none(), "{backend}: expired");
        assert_eq!(active.unwrap().version, v1);
        assert!(
            !store.promote(&account, "crm", 2).await.unwrap(),
            "{backend}: expired"
        );
        assert_eq!(store.delete_oauth_apps(&account, "crm").await.unwrap(), 2);
    }
}

#[tokio::test]
async fn managed_fields_are_encrypted_per_scope_and_rotate() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let old = Keyring::generate_entry("old");
        let keys = Arc::new(Keyring::from_spec(&old).unwrap());
        let store = managed(&database, &keys);
        let account = unique("acct");
        store
            .set_fields(
                &account,
                "crm",
                None,
                &[("tenantId".into(), Some(SecretString::from("acme")))],
                "key_admin",
            )
            .await
            .unwrap();
        store
            .set_fields(
                &account,
                "crm",
                Some("u1"),
                &[("region".into(), Some(SecretString::from("eu")))],
                "key_admin",
            )
            .await
            .unwrap();
        let fields = store.fields(&account, "crm", None).await.unwrap();
        assert_eq!(fields["tenantId"].expose_secret(), "acme", "{backend}");
        assert!(
            !fields.contains_key("region"),
            "{backend}: user scope is separate"
        );
        assert!(
            store
                .fields(&account, "crm", Some("u2"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.fields(&account, "crm", Some("u1")).await.unwrap()["region"].expose_secret(),
            "eu"
        );

        // A value copied into another user's row does not decrypt.
        database
            .copy_managed_field_for_tests(&account, "crm", "u1", "u2", "region")
            .await
            .unwrap();
        assert!(matches!(
            store.fields(&account, "crm", Some("u2")).await,
            Err(ManagedStoreError::Crypto { .. })
        ));

        // Rotation re-encrypts under the new key (the copied row is reported).
        let new = Keyring::generate_entry("new");
        let rotated = Arc::new(Keyring::from_spec(&format!("{new},{old}")).unwrap());
        let report = managed(&database, &rotated).rotate_keys().await.unwrap();
        assert!(report.rotated >= 2, "{backend}: {report:?}");
        assert!(
            report.failed.iter().any(|f| f.contains(&account)),
            "{report:?}"
        );
        let only_new = Arc::new(Keyring::from_spec(&new).unwrap());
        let fields = managed(&database, &only_new)
            .fields(&account, "crm", None)
            .await
            .unwrap();
        assert_eq!(fields["tenantId"].expose_secret(), "acme");

        store
            .set_fields(
                &account,
                "crm",
                None,
                &[("tenantId".into(), None)],
                "key_admin",
            )
            .await
            .unwrap();
        assert!(
            managed(&database, &only_new)
                .fields(&account, "crm", None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn the_admin_audit_lists_changes_of_one_account_newest_first() {
    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let audit = AdminAudit::new(database.clone());
        let (account, other) = (unique("acct"), unique("acct"));
        let who = Principal {
            key_id: "key_1".into(),
            name: "admin".into(),
            role: Role::AccountAdmin,
            accounts: AccountScope::Only(vec![account.clone()]),
            raw_tokens: false,
        };
        for action in ["first", "second"] {
            audit
                .record(
                    &who,
                    AdminChange {
                        account_id: Some(&account),
                        action,
                        detail: "fields: tenantId".into(),
                        ..AdminChange::default()
                    },
                )
                .await
                .unwrap();
        }
        let events = audit.list(Some(&account), 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["second", "first"],
            "{backend}"
        );
        assert_eq!(events[0].key_id, "key_1");
        assert!(audit.list(Some(&other), 10).await.unwrap().is_empty());
    }
}
