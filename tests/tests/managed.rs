//! Admin-managed credentials end to end through the HTTP API: an account
//! admin's OAuth application (pending, promoted by the first successful login,
//! expiring, invalidating connections when updated) and admin-managed API-key
//! fields (account and user scope, hidden fields, the
//! `missingRequiredFieldConsts` warning, the manual-form fallback).

use connector_server::access::Role;
use connector_test_support::harness::{
    Host, TENANT_CLIENT_ID, TENANT_CLIENT_SECRET, assert_no_secret_in_logs,
};
use connector_test_support::oauth::complete;
use connector_test_support::webhooks::host_with_receiver;
use serde_json::{Value, json};

const MANAGED_OAUTH: &str = "/v1/accounts/acct-1/connectors/test-managed-oauth/managed-oauth";

fn tenant_app(host: &Host) -> Value {
    json!({
        "clientId": TENANT_CLIENT_ID,
        "clientSecret": TENANT_CLIENT_SECRET,
        "tokenUrl": format!("{}/oauth/token", host.api_url()),
        "authorizationUrl": format!("{}/oauth/authorize", host.api_url()),
    })
}

/// Starts a login of `user` for the managed connector.
async fn start(host: &Host, account: &str, user: &str) -> (u16, Value) {
    host.post(
        "/v1/connectors/test-managed-oauth/oauth/start",
        json!({"accountId": account, "userId": user}),
    )
    .await
}

/// A whole login of `user`: start, provider approval, callback.
async fn login(host: &Host, user: &str) -> (u16, Value) {
    let (status, started) = start(host, "acct-1", user).await;
    assert_eq!(status, 200, "{started}");
    complete(host, &started).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_managed_oauth_is_pending_until_a_login_succeeds() {
    let (host, hooks) = host_with_receiver().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let put = |body: Value| host.send("PUT", MANAGED_OAUTH, Some(&admin), Some(body));

    // Not set up yet: users cannot start, the admin sees what is required.
    let (status, error) = start(&host, "acct-1", "user-1").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("managed_credentials_missing")),
        "{error}"
    );
    let (status, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["setup"]["required"],
        json!(["clientId", "clientSecret", "tokenUrl", "authorizationUrl"])
    );
    assert!(view["setup"]["instructions"].as_str().is_some());
    assert!(view["active"].is_null() && view["pending"].is_null());

    // Bad submissions name the field and store nothing.
    let mut missing = tenant_app(&host);
    missing.as_object_mut().unwrap().remove("clientSecret");
    let (status, error) = put(missing).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("clientSecret")),
        "{error}"
    );
    let mut outside = tenant_app(&host);
    outside["tokenUrl"] = json!("https://attacker.example.net/token");
    let (status, error) = put(outside).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("tokenUrl")));
    let mut unknown = tenant_app(&host);
    unknown["clientSecretPlain"] = json!("x");
    let (status, error) = put(unknown).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_body"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("clientSecretPlain")
    );
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert!(view["pending"].is_null(), "nothing stored: {view}");

    // Stored as pending; the secret is never shown again.
    let (status, saved) = put(tenant_app(&host)).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["pending"]["status"], "pending");
    assert_eq!(saved["pending"]["clientSecret"], "********");
    assert_eq!(saved["pending"]["clientId"], TENANT_CLIENT_ID);
    assert_eq!(saved["invalidatedConnections"], 0);
    let version = saved["pending"]["version"].as_i64().unwrap();

    // A failed login does not promote.
    let (_, started) = start(&host, "acct-1", "user-1").await;
    let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
    assert_eq!(
        authorize.origin().ascii_serialization(),
        host.api_url(),
        "the admin's authorization URL is used"
    );
    assert!(authorize.query().unwrap().contains(TENANT_CLIENT_ID));
    let state = started["state"].as_str().unwrap();
    let (status, _) = host
        .get(&format!(
            "/v1/oauth/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(status, 400);
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert!(view["active"].is_null(), "still not active: {view}");
    assert_eq!(view["pending"]["version"], version);

    // The first successful login (the provider only knows the tenant's own
    // client and secret) promotes the pending application.
    let (status, connected) = login(&host, "user-1").await;
    assert_eq!(status, 200, "{connected}");
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert_eq!(view["active"]["version"], version, "{view}");
    assert_eq!(view["active"]["status"], "active");
    assert!(view["pending"].is_null());

    // Later users connect through the normal flow, never seeing a credential.
    let (status, started) = start(&host, "acct-1", "user-2").await;
    assert_eq!(status, 200);
    assert!(!started.to_string().contains(TENANT_CLIENT_SECRET));
    let callback = host.approve(&started).await;
    let (status, _) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 200);

    // Another account has its own (absent) application.
    let (status, error) = start(&host, "acct-2", "user-1").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("managed_credentials_missing"))
    );

    // An update invalidates the account's connections and says so.
    let (status, saved) = put(tenant_app(&host)).await;
    assert_eq!(status, 200);
    assert_eq!(saved["invalidatedConnections"], 2, "{saved}");
    assert!(saved["message"].as_str().unwrap().contains("re-auth"));
    for user in ["user-1", "user-2"] {
        let (_, listed) = host
            .get(&format!("/v1/accounts/acct-1/users/{user}/connections"))
            .await;
        assert_eq!(listed[0]["status"], "needs_reauth", "{listed}");
    }
    // ...and tells the platform, one signed event per connection.
    let reauth = |events: Vec<Value>| {
        let mut users: Vec<String> = events
            .iter()
            .filter(|e| e["type"] == "connection.needs_reauth")
            .map(|e| {
                assert_eq!(e["connection"]["status"], "needs_reauth", "{e}");
                assert!(
                    e["detail"].as_str().unwrap().contains("admin-managed"),
                    "{e}"
                );
                e["connection"]["userId"].as_str().unwrap().to_string()
            })
            .collect();
        users.sort();
        users
    };
    assert_eq!(reauth(hooks.events(&host).await), ["user-1", "user-2"]);
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert_eq!(
        view["active"]["version"], version,
        "the old one stays active"
    );
    assert!(view["pending"]["version"].as_i64().unwrap() > version);

    // Pending values expire (24 h); the active application serves again.
    host.managed
        .expire_pending_for_tests("acct-1", "test-managed-oauth")
        .await
        .unwrap();
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert!(view["pending"].is_null(), "{view}");
    let (status, reconnected) = login(&host, "user-1").await;
    assert_eq!(status, 200, "{reconnected}");
    assert_eq!(reconnected["connection"]["status"], "active");

    // Every change is audited: who, what, when, never the values.
    let (status, events) = host
        .send("GET", "/v1/accounts/acct-1/admin-audit", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["action"], "managed-oauth.set");
    assert!(events[0]["keyId"].as_str().unwrap().starts_with("key_"));
    assert!(
        events[0]["detail"]
            .as_str()
            .unwrap()
            .contains("clientSecret")
    );
    assert!(
        events[0]["detail"]
            .as_str()
            .unwrap()
            .contains("2 connection(s) invalidated")
    );
    assert!(
        !events[0].to_string().contains(TENANT_CLIENT_ID),
        "no values"
    );

    // Removing the application invalidates again and stops new logins.
    let (status, deleted) = host.send("DELETE", MANAGED_OAUTH, Some(&admin), None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["invalidatedConnections"], 1);
    assert_eq!(
        reauth(hooks.events(&host).await),
        ["user-1", "user-1", "user-2"],
        "user-1's new connection too"
    );
    let (status, _) = start(&host, "acct-1", "user-3").await;
    assert_eq!(status, 409);
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_before_an_update_must_start_again() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let (status, _) = host
        .send("PUT", MANAGED_OAUTH, Some(&admin), Some(tenant_app(&host)))
        .await;
    assert_eq!(status, 200);
    let (_, started) = start(&host, "acct-1", "user-1").await;
    let callback = host.approve(&started).await;
    // The admin changes the application while the user is at the provider.
    host.send("PUT", MANAGED_OAUTH, Some(&admin), Some(tenant_app(&host)))
        .await;
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state"))
    );
    assert!(error["message"].as_str().unwrap().contains("start again"));
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]), "nothing saved");

    // The same when the login started with the active application.
    let (status, _) = login(&host, "user-1").await;
    assert_eq!(status, 200, "the newest application is now active");
    let (_, started) = start(&host, "acct-1", "user-2").await;
    let callback = host.approve(&started).await;
    host.send("PUT", MANAGED_OAUTH, Some(&admin), Some(tenant_app(&host)))
        .await;
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state"))
    );
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-2/connections")
        .await;
    assert_eq!(listed, json!([]), "nothing saved");
}

const ACCOUNT_FIELDS: &str = "/v1/accounts/acct-1/connectors/test-managed-apikey/managed-fields";

fn user_fields(user: &str) -> String {
    format!("/v1/accounts/acct-1/users/{user}/connectors/test-managed-apikey/managed-fields")
}

async fn api_key_login(host: &Host, user: &str, fields: Value, manual: bool) -> (u16, Value) {
    host.post(
        "/v1/connectors/test-managed-apikey/api-key/login",
        json!({"accountId": "acct-1", "userId": user, "fields": fields, "manual": manual}),
    )
    .await
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
async fn admin_managed_api_key_fields() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let key = json!({"apiKey": connector_test_support::harness::API_KEY});

    // Users do not see the hidden field; the manual form has every field.
    let (_, page) = host
        .get("/v1/connectors/test-managed-apikey/auth-page")
        .await;
    let consts: Vec<&str> = page["apiKey"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["const"].as_str().unwrap())
        .collect();
    assert_eq!(consts, ["apiKey", "region"]);
    let (_, page) = host
        .get("/v1/connectors/test-managed-apikey/auth-page?form=manual")
        .await;
    assert_eq!(page["apiKey"]["content"].as_array().unwrap().len(), 3);
    let (status, _) = host
        .get("/v1/connectors/test-managed-apikey/auth-page?form=admin")
        .await;
    assert_eq!(status, 400);

    // Nothing set by an admin: the warning lists the missing required fields.
    let (status, warning) = api_key_login(&host, "user-1", key.clone(), false).await;
    assert_eq!(
        (status, warning["code"].as_str()),
        (422, Some("managed_fields_missing")),
        "{warning}"
    );
    assert_eq!(warning["missingRequiredFieldConsts"], json!(["tenantId"]));

    // Scopes: the account route takes account fields only, the user route
    // user fields only.
    let (status, error) = host
        .send(
            "PUT",
            ACCOUNT_FIELDS,
            Some(&admin),
            Some(json!({"values": {"region": "eu"}})),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("values.region"))
    );
    let (status, error) = host
        .send(
            "PUT",
            &user_fields("user-1"),
            Some(&admin),
            Some(json!({"values": {"tenantId": "x"}})),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("values.tenantId"))
    );
    let (status, error) = host
        .send(
            "PUT",
            ACCOUNT_FIELDS,
            Some(&admin),
            Some(json!({"values": {"tenantId": 7}})),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("values.tenantId"))
    );
    let (status, fields) = host
        .send(
            "PUT",
            ACCOUNT_FIELDS,
            Some(&admin),
            Some(json!({"values": {"tenantId": "wrong-tenant"}})),
        )
        .await;
    assert_eq!(status, 200, "{fields}");
    assert_eq!(fields["fields"][0]["set"], true);
    let (status, _) = host
        .send(
            "PUT",
            &user_fields("user-1"),
            Some(&admin),
            Some(json!({"values": {"region": "eu"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, other) = host
        .send("GET", &user_fields("user-2"), Some(&admin), None)
        .await;
    assert_eq!(other["fields"][0]["set"], false, "user scope: {other}");

    // A managed login that fails says so; nothing is saved.
    let (status, error) = api_key_login(&host, "user-1", key.clone(), false).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("managed_login_failed")),
        "{error}"
    );
    assert_eq!(error["manualFormAvailable"], true);
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]));

    // The next attempt falls back to the full manual form.
    let manual = json!({"apiKey": connector_test_support::harness::API_KEY, "tenantId": "acme-tenant", "region": "us"});
    let (status, connection) = api_key_login(&host, "user-1", manual, true).await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(
        info(&connection, "regionSeen").as_deref(),
        Some("us"),
        "the user's values"
    );

    // With the right tenant set by the admin, users log in with the key only;
    // the hidden value is not saved with (nor returned in) the connection.
    host.send(
        "PUT",
        ACCOUNT_FIELDS,
        Some(&admin),
        Some(json!({"values": {"tenantId": "acme-tenant"}})),
    )
    .await;
    let (status, connection) = api_key_login(&host, "user-2", key.clone(), false).await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(info(&connection, "tenantId"), None, "{connection}");
    assert_eq!(info(&connection, "regionSeen").as_deref(), Some("none"));
    let (status, connection) = api_key_login(&host, "user-1", key.clone(), false).await;
    assert_eq!(status, 200);
    assert_eq!(
        info(&connection, "regionSeen").as_deref(),
        Some("eu"),
        "user-scoped value"
    );

    // Hooks of a saved connection get the admin's current values.
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-2/connections")
        .await;
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let validate = format!("/v1/accounts/acct-1/users/user-2/connections/{id}/validate");
    let (status, validation) = host.post(&validate, json!({})).await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    host.send(
        "PUT",
        ACCOUNT_FIELDS,
        Some(&admin),
        Some(json!({"values": {"tenantId": "moved"}})),
    )
    .await;
    let (_, validation) = host.post(&validate, json!({})).await;
    assert_eq!(validation["successful"], false, "{validation}");

    // Admins read values back; clearing one with null.
    let (_, fields) = host.send("GET", ACCOUNT_FIELDS, Some(&admin), None).await;
    assert_eq!(fields["fields"][0]["value"], "moved");
    let (_, fields) = host
        .send(
            "PUT",
            ACCOUNT_FIELDS,
            Some(&admin),
            Some(json!({"values": {"tenantId": null}})),
        )
        .await;
    assert_eq!(fields["fields"][0]["set"], false);
    let (_, events) = host
        .send("GET", "/v1/accounts/acct-1/admin-audit", Some(&admin), None)
        .await;
    let text = events.to_string();
    assert!(text.contains("managed-fields.set") && text.contains("tenantId (cleared)"));
    assert!(
        !text.contains("acme-tenant") && !text.contains("moved"),
        "never values"
    );
}
