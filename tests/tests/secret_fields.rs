//! Secret fields of API-key forms (manifest `secret: true`), against the
//! adversarial `secret_fields` guest (`tests/guests/secret-fields`): an API
//! key plus a secret `apiSecret`, and a hidden admin-managed secret
//! `partnerSecret`. The values are stored encrypted, never appear in a plain
//! column, an API response (user and admin routes) or a log line, and reach
//! the guest only by reference: the host fills them into the requests the
//! guest sends to an echo server on 127.0.0.1 and scrubs them from the echoed
//! responses, while everything the guest reads and returns is free of them.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine as _;
use connector_server::access::Role;
use connector_test_support::harness::{Host, assert_no_secret_in_logs, captured_logs};
use serde_json::{Value, json};

const API_KEY: &str = "sk-7f3a-secret-fields-key";
const API_SECRET: &str = "as-91c4-the-api-secret-value";
const PARTNER_SECRET: &str = "ps-5be2-admin-partner-secret";
const CONNECTOR: &str = "test-secret-fields";
const FIELDS: &str = "/v1/accounts/acct-1/connectors/test-secret-fields/managed-fields";

/// What the echo server received, per path.
type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// An echo server on 127.0.0.1: answers every request with its headers (a
/// header-reflecting endpoint, the worst case for injected secrets); `200`
/// when the credential the path expects arrived, `401` otherwise.
async fn echo_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let log = log.clone();
        async move {
            let path = uri.path().to_string();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"))
            );
            let ok = match path.as_str() {
                "/basic" => header("authorization") == basic,
                "/header" => header("x-api-secret") == format!("Secret {API_SECRET}"),
                "/partner" => header("x-partner-secret") == PARTNER_SECRET,
                _ => false,
            };
            let reflected: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
                .collect();
            // The path with its query: a key moved into the query shows.
            let requested = uri
                .path_and_query()
                .map_or(path, |pq| pq.as_str().to_string());
            log.lock().unwrap().push((requested, headers));
            let status = if ok { 200 } else { 401 };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                format!("{reflected}url-encoded: {}\n", reflected.replace(' ', "+")),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), seen)
}

fn assert_no_field_secret(what: &str, text: &str) {
    for secret in [API_SECRET, PARTNER_SECRET, API_KEY] {
        assert!(
            !text.contains(secret),
            "a secret field's value in {what}: {text}"
        );
    }
}

fn info(connection: &Value, key: &str) -> Option<String> {
    connection["additionalInfo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == key)
        .map(|pair| pair[1].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_fields_are_encrypted_never_returned_and_reach_the_guest_only_by_reference() {
    let host = Host::start().await;
    let (echo, seen) = echo_server().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;

    // The form declares the secret; the user form hides the admin's field.
    let (status, page) = host
        .get(&format!("/v1/connectors/{CONNECTOR}/auth-page"))
        .await;
    assert_eq!(status, 200, "{page}");
    let content = page["apiKey"]["content"].as_array().unwrap();
    assert_eq!(content[1]["const"], "apiSecret");
    assert_eq!(content[1]["secret"], true);

    // The admin sets the managed secret: it is reported as set, never shown.
    let (status, fields) = host
        .send(
            "PUT",
            FIELDS,
            Some(&admin),
            Some(json!({"values": {"partnerSecret": PARTNER_SECRET}})),
        )
        .await;
    assert_eq!(status, 200, "{fields}");
    let (status, fields) = host.send("GET", FIELDS, Some(&admin), None).await;
    assert_eq!(status, 200, "{fields}");
    let partner = &fields["fields"].as_array().unwrap()[0];
    assert_eq!(partner["const"], "partnerSecret");
    assert_eq!(
        (partner["set"].as_bool(), partner["value"].as_str()),
        (Some(true), Some("********"))
    );
    assert_no_field_secret("GET managed-fields", &fields.to_string());

    // The login: the guest tries to read the secrets and hand them back.
    let (status, connection) = host
        .post(
            &format!("/v1/connectors/{CONNECTOR}/api-key/login"),
            json!({
                "accountId": "acct-1", "userId": "user-1", "hostname": echo,
                "fields": {"apiKey": API_KEY, "apiSecret": API_SECRET, "tenantId": "acme"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{connection}");
    assert_no_field_secret("the login answer", &connection.to_string());
    // What the guest was given: the plain field, not the secret ones.
    assert_eq!(info(&connection, "seen").as_deref(), Some("tenantId=acme"));
    assert_eq!(connection["userName"], "seen: tenantId=acme");
    // Nothing is saved in plain text under a secret field's name.
    assert_eq!(info(&connection, "apiSecret"), None);
    // The host filled each reference in: the echo server got the values
    // (the guest's request succeeded), and the echoes came back scrubbed.
    for (key, path) in [
        ("echoBasic", "/basic"),
        ("echoHeader", "/header"),
        ("echoPartner", "/partner"),
    ] {
        let echoed = info(&connection, key).unwrap();
        assert!(echoed.starts_with("200 "), "{path}: {echoed}");
    }
    let received = seen.lock().unwrap().clone();
    let header = |path: &str, name: &str| {
        received
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, h)| h.get(name))
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("/header", "x-api-secret"),
        Some(format!("Secret {API_SECRET}"))
    );
    assert_eq!(
        header("/partner", "x-partner-secret").as_deref(),
        Some(PARTNER_SECRET)
    );
    // A plain field cannot be named as a secret one.
    let plain = info(&connection, "plainRef").unwrap();
    assert!(plain.starts_with("refused: "), "{plain}");
    assert!(header("/plain", "x-tenant").is_none());

    // The database holds the values only as an envelope.
    let id = connection["id"].as_str().unwrap().to_string();
    let row = host.database.connection_row_for_tests(&id).await.unwrap();
    assert_no_field_secret("the connections row", &row.join("\n"));
    let envelope = host
        .database
        .secret_column_for_tests(&id, "secret_fields")
        .await
        .unwrap()
        .expect("secret fields stored");
    assert!(envelope.starts_with("v"), "{envelope}");

    // Later hooks get them from storage, still by reference only.
    let base = format!("/v1/accounts/acct-1/users/user-1/connections/{id}");
    let (status, validated) = host.post(&format!("{base}/validate"), json!({})).await;
    assert_eq!(status, 200, "{validated}");
    assert_eq!(validated["successful"], true, "{validated}");
    assert_no_field_secret("validate", &validated.to_string());
    let (status, refreshed) = host
        .post(&format!("{base}/refresh-user-info"), json!({}))
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_no_field_secret("refresh-user-info", &refreshed.to_string());
    // `seen` again: a stored connection's hooks get no secret value either.
    assert_eq!(info(&refreshed, "apiSecret"), None, "{refreshed}");
    let seen = info(&refreshed, "seen").unwrap();
    assert!(seen.starts_with("tenantId=acme;"), "{seen}");
    for name in ["apiKey=", "apiSecret=", "partnerSecret="] {
        assert!(!seen.contains(name), "{seen}");
    }

    // No route returns them.
    for path in [
        "/v1/accounts/acct-1/users/user-1/connections".to_string(),
        base.clone(),
        format!("/v1/connectors/{CONNECTOR}"),
        format!("/v1/connectors/{CONNECTOR}/auth-page?form=manual"),
        format!("/v1/connectors/{CONNECTOR}/audit"),
        "/v1/admin-audit".to_string(),
        "/v1/accounts/acct-1/admin-audit".to_string(),
    ] {
        let (_, body) = host.get(&path).await;
        assert_no_field_secret(&path, &body.to_string());
    }
    for path in [
        FIELDS.to_string(),
        "/v1/accounts/acct-1/admin-audit".to_string(),
    ] {
        let (_, body) = host.send("GET", &path, Some(&admin), None).await;
        assert_no_field_secret(&path, &body.to_string());
    }
    let (status, credentials) = host.get(&format!("{base}/credentials")).await;
    assert_no_field_secret("credentials", &credentials.to_string());
    assert_ne!(status, 500, "{credentials}");

    // Logout clears them with the key.
    let (status, _) = host.post(&format!("{base}/logout"), json!({})).await;
    assert_eq!(status, 200);
    let cleared = host
        .database
        .secret_column_for_tests(&id, "secret_fields")
        .await
        .unwrap();
    assert_eq!(cleared, None);

    assert_no_secret_in_logs();
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert_no_field_secret("the logs", &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_fields_moved_to_another_connection_do_not_decrypt() {
    let host = Host::start().await;
    let (echo, _) = echo_server().await;
    let mut ids = Vec::new();
    for user in ["user-1", "user-2"] {
        let (status, connection) = host
            .post(
                &format!("/v1/connectors/{CONNECTOR}/api-key/login"),
                json!({
                    "accountId": "acct-1", "userId": user, "hostname": echo,
                    "fields": {"apiKey": API_KEY, "apiSecret": API_SECRET, "tenantId": "acme"},
                }),
            )
            .await;
        assert_eq!(status, 200, "{connection}");
        ids.push(connection["id"].as_str().unwrap().to_string());
    }
    // A database writer copies user-1's envelope onto user-2's row.
    host.database
        .copy_column_for_tests("secret_fields", &ids[0], &ids[1])
        .await
        .unwrap();
    let base = format!("/v1/accounts/acct-1/users/user-2/connections/{}", ids[1]);
    let (status, answer) = host.post(&format!("{base}/validate"), json!({})).await;
    assert_eq!(status, 500, "{answer}");
    assert_no_field_secret("the refusal", &answer.to_string());
}

#[test]
fn inspect_shows_which_fields_are_secret() {
    let bytes = connector_test_support::guest_bytes("secret_fields");
    let info = connector_server::registry::inspect::inspect(&bytes).unwrap();
    let report = connector_server::registry::InspectReport::new(&info);
    let text = report.to_text();
    let flags = |field: &str| {
        text.lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("field        {field} "))
            })
            .unwrap_or_else(|| panic!("{field} in {text}"))
            .to_string()
    };
    assert!(flags("apiKey").ends_with(" secret"), "{text}");
    assert!(flags("apiSecret").ends_with(" secret"), "{text}");
    assert!(!flags("tenantId").contains("secret"), "{text}");
    assert!(
        flags("partnerSecret").contains("managed hidden secret"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    let content = &json["authPage"]["content"];
    assert_eq!(content[1]["const"], "apiSecret");
    assert_eq!(content[1]["secret"], true, "{json}");
    assert!(content[2].get("secret").is_none(), "{json}");
}

/// The store on SQLite and (when configured) PostgreSQL: the envelope holds no
/// value, is bound to its row, follows key rotation and is cleared by logout.
#[tokio::test]
async fn the_store_keeps_secret_fields_in_one_rotating_envelope() {
    use connector_server::store::crypto::Keyring;
    use connector_server::store::{ConnectionSecrets, ConnectionStore, NewConnection};
    use connector_test_support::databases::{databases, unique};
    use secrecy::{ExposeSecret, SecretString};
    use std::collections::BTreeMap;

    for backend in databases().await {
        let (database, backend) = (backend.database.clone(), backend.name);
        let (old, new) = (
            Keyring::generate_entry("old"),
            Keyring::generate_entry("new"),
        );
        let store = |spec: &str| {
            ConnectionStore::new(
                database.clone(),
                Arc::new(Keyring::from_spec(spec).unwrap()),
            )
        };
        let before = store(&old);
        let account = unique("acct");
        let values = BTreeMap::from([("apiSecret".to_string(), SecretString::from(API_SECRET))]);
        let saved = before
            .save_with_secret_fields(
                NewConnection {
                    account_id: account.clone(),
                    user_id: "u1".into(),
                    connector_id: CONNECTOR.into(),
                    auth_type: "apiKey".into(),
                    hostname: None,
                    platform_user_id: None,
                    user_name: None,
                    timezone_name: None,
                    timezone_offset: None,
                    additional_info: vec![("tenantId".into(), "acme".into())],
                    expires_at: None,
                    secrets: ConnectionSecrets {
                        api_key: Some(SecretString::from(API_KEY)),
                        ..Default::default()
                    },
                },
                &values,
            )
            .await
            .unwrap();
        let row = database.connection_row_for_tests(&saved.id).await.unwrap();
        assert_no_field_secret(backend, &row.join("\n"));
        let read = |fields: BTreeMap<String, SecretString>| {
            fields
                .into_iter()
                .map(|(k, v)| (k, v.expose_secret().to_string()))
                .collect::<Vec<_>>()
        };
        let expected = vec![("apiSecret".to_string(), API_SECRET.to_string())];
        assert_eq!(read(before.secret_fields(&saved).await.unwrap()), expected);

        // Rotation re-encrypts it; then the old key can be retired.
        let both = store(&format!("{new},{old}"));
        assert!(both.rotate_keys().await.unwrap().rotated >= 2, "{backend}");
        assert_eq!(both.rotate_keys().await.unwrap().rotated, 0, "{backend}");
        assert_eq!(
            read(store(&new).secret_fields(&saved).await.unwrap()),
            expected
        );

        // A re-login without secret fields drops them; logout clears them.
        let relogin = NewConnection {
            account_id: account.clone(),
            user_id: "u1".into(),
            connector_id: CONNECTOR.into(),
            auth_type: "apiKey".into(),
            hostname: None,
            platform_user_id: None,
            user_name: None,
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            expires_at: None,
            secrets: ConnectionSecrets {
                api_key: Some(SecretString::from(API_KEY)),
                ..Default::default()
            },
        };
        let current = store(&new);
        current
            .save_with_secret_fields(relogin.clone(), &values)
            .await
            .unwrap();
        let again = current.save(relogin.clone()).await.unwrap();
        assert_eq!(again.id, saved.id);
        assert!(current.secret_fields(&again).await.unwrap().is_empty());
        current
            .save_with_secret_fields(relogin, &values)
            .await
            .unwrap();
        assert!(current.clear_credentials(again.at()).await.unwrap());
        assert!(current.secret_fields(&again).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_auth_answer_that_moves_the_key_off_the_declared_placement_is_refused_and_never_used()
 {
    let host = Host::start().await;
    let (echo, seen) = echo_server().await;
    // The manifest declares `{"basic": "{apiKey}:{apiSecret}"}`; for these
    // tenants the guest's `basic-auth` answers a query string or a header.
    for (tenant, answered) in [
        ("move-key-to-query", "query parameter `k="),
        ("move-key-to-header", "header `x-leak: {apiKey}`"),
    ] {
        let (status, error) = host
            .post(
                &format!("/v1/connectors/{CONNECTOR}/api-key/login"),
                json!({
                    "accountId": "acct-1", "userId": format!("user-{tenant}"), "hostname": echo,
                    "fields": {"apiKey": API_KEY, "apiSecret": API_SECRET, "tenantId": tenant},
                }),
            )
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (502, Some("connector_error")),
            "{tenant}: {error}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(answered), "{tenant}: {message}");
        assert!(
            message.contains("auth.apiKey.placement")
                && message.contains("Basic base64({apiKey}:{apiSecret})"),
            "{tenant}: the refusal names the declaration: {message}"
        );
        assert_no_field_secret(tenant, &error.to_string());
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request left the host with the key"
    );
    for tenant in ["move-key-to-query", "move-key-to-header"] {
        let (status, list) = host
            .get(&format!(
                "/v1/accounts/acct-1/users/user-{tenant}/connections"
            ))
            .await;
        assert_eq!((status, list), (200, json!([])), "nothing was saved");
    }

    // The answer is a property of the connector version: once one login
    // found it matching the declaration, `basic-auth` is not asked again. A
    // tenant whose answer would move the key then logs in, and its key still
    // goes only where the manifest declares (the host never uses the answer).
    for tenant in ["acme", "move-key-to-query", "move-key-to-header"] {
        let (status, connection) = host
            .post(
                &format!("/v1/connectors/{CONNECTOR}/api-key/login"),
                json!({
                    "accountId": "acct-1", "userId": format!("later-{tenant}"), "hostname": echo,
                    "fields": {"apiKey": API_KEY, "apiSecret": API_SECRET, "tenantId": tenant},
                }),
            )
            .await;
        assert_eq!(status, 200, "{tenant}: {connection}");
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"))
    );
    for (path, headers) in seen.lock().unwrap().iter() {
        assert!(!path.contains('?'), "the key went into a query: {path}");
        assert!(
            !headers.contains_key("x-leak"),
            "{path}: the key went into a header"
        );
        if path == "/basic" {
            assert_eq!(headers["authorization"], basic.as_str());
        }
    }
    assert_no_secret_in_logs();
}
