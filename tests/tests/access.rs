//! Access control and tenant isolation of the HTTP API. Every `/v1` route is
//! tried without a key, with each role, with the ids of another account and
//! of another user; each attempt must be refused (401/403/404) and the
//! database must be exactly as before. A revoked key stops working at once.

use connector_server::access::Role;
use connector_test_support::harness::{API_KEY, Host, TENANT_CLIENT_ID, TENANT_CLIENT_SECRET};
use serde_json::{Value, json};

/// One request of the attack matrix.
struct Attempt {
    method: &'static str,
    path: String,
    body: Option<Value>,
}

fn attempt(method: &'static str, path: impl Into<String>, body: Option<Value>) -> Attempt {
    Attempt {
        method,
        path: path.into(),
        body,
    }
}

/// Everything tenant `acct-a` owns, as text: its users' connections, its
/// managed credentials, its admin audit, and the API keys.
async fn snapshot(host: &Host) -> String {
    let mut text = String::new();
    for user in ["ua1", "ua2"] {
        let connections = host.connections.list("acct-a", user).await.unwrap();
        text += &serde_json::to_string(&connections).unwrap();
    }
    let (active, pending) = host
        .managed
        .oauth_apps("acct-a", "test-managed-oauth")
        .await
        .unwrap();
    for app in [active, pending].into_iter().flatten() {
        text += &format!("{:?}{}{:?}", app.slot, app.version, app.values.client_id);
    }
    for user in [None, Some("ua1")] {
        let fields = host
            .managed
            .fields("acct-a", "test-managed-apikey", user)
            .await
            .unwrap();
        text += &format!("{:?}", fields.keys().collect::<Vec<_>>());
    }
    let audit = connector_server::store::AdminAudit::new(host.database.clone())
        .list(None, 1000)
        .await
        .unwrap();
    text += &serde_json::to_string(&audit).unwrap();
    text += &serde_json::to_string(&host.api_keys.list().await.unwrap()).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_reaches_another_tenant_and_each_role_stays_in_its_lane() {
    let host = Host::start().await;
    let service_a = host.key(Role::Service, &["acct-a"]).await;
    let service_b = host.key(Role::Service, &["acct-b"]).await;
    let admin_a = host.key(Role::AccountAdmin, &["acct-a"]).await;
    let admin_b = host.key(Role::AccountAdmin, &["acct-b"]).await;
    let operator = host.key(Role::Operator, &[]).await;

    // Tenant acct-a: two users with connections, managed credentials.
    let mut ids = Vec::new();
    for user in ["ua1", "ua2"] {
        let (status, connection) = host
            .send(
                "POST",
                "/v1/connectors/local-insightly/api-key/login",
                Some(&service_a),
                Some(json!({"accountId": "acct-a", "userId": user,
                    "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}})),
            )
            .await;
        assert_eq!(status, 200, "{connection}");
        ids.push(connection["id"].as_str().unwrap().to_string());
    }
    let (a1, a2) = (ids[0].clone(), ids[1].clone());
    let app = json!({"clientId": TENANT_CLIENT_ID, "clientSecret": TENANT_CLIENT_SECRET,
        "tokenUrl": format!("{}/oauth/token", host.api_url()),
        "authorizationUrl": format!("{}/oauth/authorize", host.api_url())});
    let oauth_a = "/v1/accounts/acct-a/connectors/test-managed-oauth/managed-oauth";
    let fields_a = "/v1/accounts/acct-a/connectors/test-managed-apikey/managed-fields";
    let user_fields_a =
        "/v1/accounts/acct-a/users/ua1/connectors/test-managed-apikey/managed-fields";
    for (path, body) in [
        (oauth_a, app.clone()),
        (fields_a, json!({"values": {"tenantId": "acme-tenant"}})),
        (user_fields_a, json!({"values": {"region": "eu"}})),
    ] {
        let (status, answer) = host.send("PUT", path, Some(&admin_a), Some(body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    // A login of acct-a in progress (its state must survive foreign attempts).
    let (status, started) = host
        .send(
            "POST",
            "/v1/connectors/local-regional/oauth/start",
            Some(&service_a),
            Some(json!({"accountId": "acct-a", "userId": "ua1", "hostname": host.provider_host()})),
        )
        .await;
    assert_eq!(status, 200);
    let callback_a = host.approve(&started).await;

    let before = snapshot(&host).await;
    let conn = |account: &str, user: &str, id: &str, suffix: &str| {
        format!("/v1/accounts/{account}/users/{user}/connections/{id}{suffix}")
    };
    let login_a = json!({"accountId": "acct-a", "userId": "ua1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}});
    let start_a = json!({"accountId": "acct-a", "userId": "ua1", "hostname": host.provider_host()});

    // acct-a's resources through acct-a paths: refused to every key not
    // scoped to acct-a with the right role.
    let acct_a_flows = vec![
        attempt("GET", "/v1/accounts/acct-a/users/ua1/connections", None),
        attempt("GET", conn("acct-a", "ua1", &a1, ""), None),
        attempt("POST", conn("acct-a", "ua1", &a1, "/logout"), None),
        attempt("POST", conn("acct-a", "ua1", &a1, "/validate"), None),
        attempt(
            "POST",
            conn("acct-a", "ua1", &a1, "/refresh-user-info"),
            None,
        ),
        attempt(
            "POST",
            "/v1/connectors/local-insightly/api-key/login",
            Some(login_a.clone()),
        ),
        attempt(
            "POST",
            "/v1/connectors/local-regional/oauth/start",
            Some(start_a.clone()),
        ),
        attempt("GET", format!("/v1/oauth/callback?{callback_a}"), None),
        attempt("GET", conn("acct-a", "ua1", &a1, "/proxy/api/v1/me"), None),
    ];
    let acct_a_admin = vec![
        attempt("GET", oauth_a, None),
        attempt("PUT", oauth_a, Some(app.clone())),
        attempt("DELETE", oauth_a, None),
        attempt("GET", fields_a, None),
        attempt(
            "PUT",
            fields_a,
            Some(json!({"values": {"tenantId": "evil"}})),
        ),
        attempt("GET", user_fields_a, None),
        attempt(
            "PUT",
            user_fields_a,
            Some(json!({"values": {"region": "evil"}})),
        ),
        attempt("GET", "/v1/accounts/acct-a/admin-audit", None),
    ];
    let operator_only = vec![
        attempt("GET", "/v1/connectors/local-insightly/versions", None),
        attempt("GET", "/v1/connectors/local-insightly/audit", None),
        attempt("GET", "/v1/admin-audit", None),
    ];
    // acct-a's ids smuggled into acct-b paths, and ua1's connection under ua2.
    let foreign_ids = vec![
        attempt("GET", conn("acct-b", "ua1", &a1, ""), None),
        attempt("GET", conn("acct-b", "ua1", &a1, "/proxy/api/v1/me"), None),
        attempt("POST", conn("acct-b", "ua1", &a1, "/logout"), None),
        attempt("POST", conn("acct-b", "ua1", &a1, "/validate"), None),
        attempt(
            "POST",
            conn("acct-b", "ua1", &a1, "/refresh-user-info"),
            None,
        ),
    ];
    let other_user = vec![
        attempt("GET", conn("acct-a", "ua2", &a1, ""), None),
        attempt("GET", conn("acct-a", "ua2", &a1, "/proxy/api/v1/me"), None),
        attempt("POST", conn("acct-a", "ua2", &a1, "/logout"), None),
        attempt("POST", conn("acct-a", "ua2", &a1, "/validate"), None),
        attempt(
            "POST",
            conn("acct-a", "ua2", &a1, "/refresh-user-info"),
            None,
        ),
        attempt("GET", conn("acct-a", "ua1", &a2, ""), None),
        attempt("POST", conn("acct-a", "ua1", &a2, "/logout"), None),
    ];

    let expect = |key: Option<&str>, attempts: &[Attempt], allowed: &[u16]| {
        let host = &host;
        let key = key.map(str::to_string);
        let allowed = allowed.to_vec();
        let attempts: Vec<(String, String, Option<Value>)> = attempts
            .iter()
            .map(|a| (a.method.to_string(), a.path.clone(), a.body.clone()))
            .collect();
        async move {
            for (method, path, body) in attempts {
                let (status, answer) = host.send(&method, &path, key.as_deref(), body).await;
                assert!(
                    allowed.contains(&status),
                    "{method} {path} with {key:?}: {status} {answer}"
                );
            }
        }
    };
    let all: Vec<&Vec<Attempt>> = vec![
        &acct_a_flows,
        &acct_a_admin,
        &operator_only,
        &foreign_ids,
        &other_user,
    ];
    // No key, a malformed key, an unknown key: 401 everywhere.
    for key in [None, Some("not-a-key"), Some("chk_unknown")] {
        for group in &all {
            expect(key, group, &[401]).await;
        }
    }
    let (status, _) = host.send("GET", "/v1/connectors", None, None).await;
    assert_eq!(status, 401);

    // Another tenant's service and admin keys.
    expect(Some(&service_b), &acct_a_flows, &[403]).await;
    expect(Some(&service_b), &acct_a_admin, &[403]).await;
    expect(Some(&service_b), &foreign_ids, &[403, 404]).await;
    expect(Some(&admin_b), &acct_a_flows, &[403]).await;
    expect(Some(&admin_b), &acct_a_admin, &[403]).await;
    // The tenant's own keys outside their role.
    expect(Some(&admin_a), &acct_a_flows, &[403]).await;
    expect(Some(&admin_a), &operator_only, &[403]).await;
    expect(Some(&service_a), &acct_a_admin, &[403]).await;
    expect(Some(&service_a), &operator_only, &[403]).await;
    // The operator runs the host, not tenants' flows or credentials.
    expect(Some(&operator), &acct_a_flows, &[403]).await;
    expect(Some(&operator), &acct_a_admin, &[403]).await;
    // The right tenant, but another user's or account's ids.
    expect(Some(&service_a), &foreign_ids, &[403]).await;
    expect(Some(&service_a), &other_user, &[404]).await;
    expect(Some(&service_b), &other_user, &[403]).await;

    assert_eq!(snapshot(&host).await, before, "nothing changed");

    // The foreign callback attempts did not consume acct-a's state.
    let (status, connected) = host
        .send(
            "GET",
            &format!("/v1/oauth/callback?{callback_a}"),
            Some(&service_a),
            None,
        )
        .await;
    assert_eq!(status, 200, "{connected}");

    // What each role may do, it can.
    for (key, path) in [
        (&operator, "/v1/connectors/local-insightly/audit"),
        (&operator, "/v1/admin-audit"),
        (&admin_a, "/v1/accounts/acct-a/admin-audit"),
        (&service_a, "/v1/accounts/acct-a/users/ua1/connections"),
        (&admin_b, "/v1/connectors"),
    ] {
        let (status, answer) = host.send("GET", path, Some(key), None).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (_, me) = host.send("GET", "/v1/whoami", Some(&admin_a), None).await;
    assert_eq!(
        (me["role"].as_str(), me["accounts"].clone()),
        (Some("account-admin"), json!(["acct-a"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_working_at_once() {
    let host = Host::start().await;
    let (record, secret) = host
        .api_keys
        .create("to revoke", Role::Service, &["acct-1".to_string()])
        .await
        .unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&secret).to_string();
    let path = "/v1/accounts/acct-1/users/u/connections";
    assert_eq!(host.send("GET", path, Some(&key), None).await.0, 200);
    assert!(host.api_keys.revoke(&record.id).await.unwrap());
    let (status, error) = host.send("GET", path, Some(&key), None).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let listed = host.api_keys.list().await.unwrap();
    let revoked = listed.iter().find(|k| k.id == record.id).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(
        !serde_json::to_string(&listed).unwrap().contains(&key),
        "never the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_validated_when_created() {
    let host = Host::start().await;
    for (role, accounts, field) in [
        (Role::Operator, vec!["acct-1"], "accounts"),
        (Role::Service, vec![], "accounts"),
        (Role::AccountAdmin, vec!["*"], "accounts"),
        (Role::Service, vec!["has space"], "accounts"),
    ] {
        let accounts: Vec<String> = accounts.into_iter().map(String::from).collect();
        let error = host
            .api_keys
            .create("k", role, &accounts)
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with(field), "{error}");
    }
}

/// Every `/v1` route of the OpenAPI document, with its parameters filled in:
/// connection ids with `connection`, other ids with a loaded connector.
fn every_route(document: &Value, connection: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let filled = path
            .replace("{account}", "acct-1")
            .replace("{user}", "user-1")
            .replace("connections/{id}", &format!("connections/{connection}"))
            .replace("{id}", "local-insightly");
        for method in operations.as_object().unwrap().keys() {
            routes.push((method.to_uppercase(), filled.clone()));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_reads_the_database_before_the_caller_is_checked() {
    let host = Host::start().await;
    let (status, connection) = host
        .post(
            "/v1/connectors/local-insightly/api-key/login",
            json!({"accountId": "acct-1", "userId": "user-1",
                "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}}),
        )
        .await;
    assert_eq!(status, 200, "{connection}");
    let other_tenant = host.key(Role::Service, &["acct-other"]).await;
    let (_, document) = host.send("GET", "/openapi.json", None, None).await;
    let routes = every_route(&document, connection["id"].as_str().unwrap());
    assert!(routes.len() > 20, "{routes:?}");

    // From here any query outside `api_keys` fails, so a route that reads
    // (or decrypts) anything before checking the caller answers 5xx.
    let moved = host
        .database
        .move_tables_aside_for_tests(&["api_keys"])
        .await
        .unwrap();
    assert!(moved.iter().any(|t| t == "connections"), "{moved:?}");
    let body = json!({"accountId": "acct-1", "userId": "user-1"});
    for (method, path) in &routes {
        for key in [None, Some("ch_live_not-a-key")] {
            let (status, answer) = host.send(method, path, key, Some(body.clone())).await;
            assert_eq!(status, 401, "{method} {path} with key {key:?}: {answer}");
        }
        // Another tenant's key passes the key check; a route over acct-1's
        // data must refuse it before reading, any other route (the connector
        // list, the auth page) answers from memory: never a 5xx.
        let (status, answer) = host
            .send(method, path, Some(&other_tenant), Some(body.clone()))
            .await;
        let tenant_data = path.contains("acct-1") || path.contains("/connections/");
        if tenant_data {
            assert!(
                [403, 404].contains(&status),
                "{method} {path} with another tenant's key: {status} {answer}"
            );
        } else {
            assert!(
                status < 500,
                "{method} {path} with another tenant's key: {status} {answer}"
            );
        }
    }
}
