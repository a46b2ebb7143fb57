//! The connection flows end to end through the HTTP API: an in-process host and
//! the local test provider, both on 127.0.0.1.

use connector_test_support::harness::{
    API_KEY, CLIENT_SECRET, Host, Options, assert_no_secret_in_logs,
};
use std::collections::BTreeMap;

use serde_json::json;

async fn host() -> Host {
    Host::start().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_login_validation_refresh_and_logout() {
    let host = host().await;
    let (status, page) = host.get("/v1/connectors/local-insightly/auth-page").await;
    assert_eq!(status, 200);
    assert_eq!(page["authType"], "apiKey");
    let consts: Vec<&str> = page["apiKey"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["const"].as_str().unwrap())
        .collect();
    assert_eq!(consts, ["insightlyGetApiKey", "apiKey", "apiUrl"]);

    let login = json!({
        "accountId": "acct-1", "userId": "user-1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, connection) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(connection["platformUserId"], "12345");
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert_eq!(connection["status"], "active");
    assert_eq!(connection["hasApiKey"], true);
    let id = connection["id"].as_str().unwrap().to_string();

    // The key reached the provider as Basic auth, injected by the host; the
    // audit names the credential kind only.
    let events = host.audit.events();
    let users_me = events
        .iter()
        .find(|e| e.path.as_deref() == Some("/v3.1/Users/Me"))
        .unwrap();
    assert_eq!(
        (users_me.status, users_me.credential.as_deref()),
        (Some(200), Some("api-key"))
    );

    let (status, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!((status, listed.as_array().unwrap().len()), (200, 1));
    let (status, _) = host
        .get(&format!(
            "/v1/accounts/acct-2/users/user-1/connections/{id}"
        ))
        .await;
    assert_eq!(status, 404, "another account cannot read it");

    let (status, validation) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/validate"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    let (status, refreshed) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/refresh-user-info"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, refreshed["userName"].as_str()),
        (200, Some("Ada Lovelace")),
        "{refreshed}"
    );

    let (status, logout) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/logout"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["connection"]["status"], "revoked");
    assert_eq!(logout["connection"]["hasApiKey"], false);
    let (status, error) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/validate"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable"))
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_login_rejects_bad_input_and_saves_nothing() {
    let host = host().await;
    let url = host.api_url();
    let cases = [
        (
            json!({"apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": API_KEY}),
            400,
            "invalid_field",
            Some("fields.apiUrl"),
        ),
        (
            json!({"apiKey": API_KEY, "apiUrl": url, "tenant": "x"}),
            400,
            "invalid_field",
            Some("fields.tenant"),
        ),
        (
            json!({"apiKey": 42, "apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": "   ", "apiUrl": url}),
            400,
            "invalid_field",
            Some("fields.apiKey"),
        ),
        (
            json!({"apiKey": "wrong-key", "apiUrl": url}),
            401,
            "invalid_credentials",
            None,
        ),
        (
            json!({"apiKey": API_KEY, "apiUrl": "https://evil.example"}),
            502,
            "provider_error",
            None,
        ),
    ];
    for (fields, status, code, field) in cases {
        let body = json!({"accountId": "acct-1", "userId": "user-1", "fields": fields});
        let (got, error) = host
            .post("/v1/connectors/local-insightly/api-key/login", body)
            .await;
        assert_eq!(
            (got, error["code"].as_str()),
            (status, Some(code)),
            "{fields}: {error}"
        );
        assert_eq!(error["field"].as_str(), field, "{fields}: {error}");
    }
    let (status, error) = host
        .post(
            "/v1/connectors/local-insightly/api-key/login",
            json!({"accountId": "a"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (status, error) = host
        .post(
            "/v1/connectors/local-regional/api-key/login",
            json!({"accountId": "a", "userId": "u", "fields": {}}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("wrong_auth_type"))
    );
    let (status, error) = host
        .post(
            "/v1/connectors/nope/api-key/login",
            json!({"accountId": "a", "userId": "u", "fields": {}}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("unknown_connector"))
    );

    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]), "nothing is saved when a login fails");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_login_with_pkce_through_the_local_provider() {
    let host = host().await;
    let (started, callback) = host.authorize("acct-1", &host.provider_host()).await;
    let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
    let params: BTreeMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["client_id"], "regional-public-client");
    assert_eq!(
        params["redirect_uri"],
        "https://apps.example.com/oauth/callback"
    );
    assert_eq!(params["scope"], "contacts.read contacts.write");
    assert_eq!(params["prompt"], "consent", "manifest `extra` parameters");
    assert_eq!(params["state"], started["state"].as_str().unwrap());
    assert!(params["state"].len() >= 43, "at least 256 bits of state");

    let (status, connected) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 200, "{connected}");
    let connection = &connected["connection"];
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert_eq!(connection["authType"], "oauth");
    assert_eq!(
        (
            connection["hasAccessToken"].as_bool(),
            connection["hasRefreshToken"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(connection["expiresAt"].as_i64().unwrap() > 0);
    assert_eq!(connection["hostname"], host.provider_host());
    assert_eq!(
        connected["customState"], "platform=regional-crm",
        "customState is kept, not used as the CSRF value"
    );
    assert_eq!(host.provider.stats().authorization_code_grants, 1);
    // user-info reached the CRM with the access token injected by the host.
    let me = host
        .audit
        .events()
        .into_iter()
        .find(|e| e.path.as_deref() == Some("/api/v1/me"))
        .unwrap();
    assert_eq!(
        (me.status, me.credential.as_deref()),
        (Some(200), Some("access-token"))
    );

    // Client credentials went in the body, as the connector's override says.
    assert!(host.provider.stats().client_auth_body >= 1);

    // Logout revokes at the provider (RFC 7009) and clears our copy.
    let id = connection["id"].as_str().unwrap();
    let (status, logout) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/logout"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["revokedAtProvider"], true, "{logout}");
    assert_eq!(host.provider.stats().revocations, 1);
    // The host's own requests for the connector are audited like the guest's.
    let events = host.audit.events();
    let exchange = events
        .iter()
        .find(|e| e.path.as_deref() == Some("/oauth/token"))
        .expect("code exchange audited");
    assert_eq!(
        exchange.credential.as_deref(),
        Some("client-credentials (code exchange)")
    );
    let revoke = events
        .iter()
        .find(|e| e.path.as_deref() == Some("/oauth/revoke"))
        .expect("revocation audited");
    assert_eq!(
        (revoke.status, revoke.account_id.as_deref()),
        (Some(200), Some("acct-1"))
    );
    assert!(
        !format!("{events:?}").contains(CLIENT_SECRET),
        "no secret in the audit"
    );
    assert_eq!(logout["connection"]["hasRefreshToken"], false);

    // The same redirect again: the state is single-use.
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state")),
        "{error}"
    );
    assert!(error["message"].as_str().unwrap().contains("already used"));
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_callbacks_that_must_fail_save_nothing() {
    let host = host().await;
    let provider_host = host.provider_host();

    let (status, error) = host
        .get("/v1/oauth/callback?code=x&state=never-issued")
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state"))
    );
    let (status, error) = host.get("/v1/oauth/callback?code=x").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state"))
    );

    // Expired.
    let (started, callback) = host.authorize("acct-1", &provider_host).await;
    host.states
        .expire_for_tests(started["state"].as_str().unwrap())
        .await
        .unwrap();
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("expired"),
        "{error}"
    );

    // A mismatched issuer (RFC 9207): a mix-up attack.
    let (_, callback) = host.authorize("acct-1", &provider_host).await;
    let forged = callback.replace("iss=", "iss=https%3A%2F%2Fevil.example&was=");
    let (status, error) = host.get(&format!("/v1/oauth/callback?{forged}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state")),
        "{error}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("issuer"),
        "{error}"
    );

    // The provider refused (user denied).
    let (started, _) = host.authorize("acct-1", &provider_host).await;
    let state = started["state"].as_str().unwrap();
    let (status, error) = host
        .get(&format!(
            "/v1/oauth/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("oauth_failed"))
    );

    // A code obtained with the attacker's own PKCE challenge (code injection):
    // the host's verifier does not match, the provider refuses the exchange.
    let (started, _) = host.authorize("acct-1", &provider_host).await;
    let state = started["state"].as_str().unwrap();
    let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
    let tampered: String = authorize
        .query_pairs()
        .map(|(k, v)| {
            if k == "code_challenge" {
                (k, "A".repeat(43).into())
            } else {
                (k, v)
            }
        })
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish();
    let response = host
        .http
        .get(format!(
            "{}/oauth/authorize?{tampered}",
            host.provider.base_url()
        ))
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.query().unwrap().contains(state));
    let (status, error) = host
        .get(&format!("/v1/oauth/callback?{}", location.query().unwrap()))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("token_exchange_failed")),
        "{error}"
    );
    assert!(error["message"].as_str().unwrap().contains("invalid_grant"));

    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]), "no failed callback saved anything");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_redirect_is_not_followed() {
    let elsewhere =
        connector_test_support::servers::start(connector_test_support::servers::Behaviour::Echo)
            .await;
    let redirect = connector_test_support::servers::start(
        connector_test_support::servers::Behaviour::Redirect(elsewhere.url("/oauth/token")),
    )
    .await;
    let host = Host::with(Options {
        regional_host: Some(redirect.addr.to_string()),
        ..Options::default()
    })
    .await;
    // The regional connector derives its token URL from the hostname.
    let (_, callback) = host.authorize("acct-1", &redirect.addr.to_string()).await;
    // A provider without RFC 9207 sends no `iss` (with it, the mix-up check
    // would already refuse this token endpoint).
    let callback: String = callback
        .split('&')
        .filter(|p| !p.starts_with("iss="))
        .collect::<Vec<_>>()
        .join("&");
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("provider_error")),
        "{error}"
    );
    assert_eq!(
        redirect.seen.requests().len(),
        1,
        "the token request went to the checked endpoint"
    );
    assert!(
        elsewhere.seen.requests().is_empty(),
        "the redirect (with the code and client secret) was not followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_without_pkce_and_with_client_auth_in_headers() {
    let host = host().await;
    let (started, callback) = host.authorize_with("test-oauth-basic", "acct-9", "").await;
    let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
    let params: BTreeMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert!(
        !params.contains_key("code_challenge"),
        "skipPkce sends no challenge"
    );
    assert_eq!(params["scope"], "api", "scopes from oauth-info");
    // The provider's redirect with a declared parameter and a smuggled one.
    let (status, connected) = host
        .get(&format!(
            "/v1/oauth/callback?{callback}&location=eu&smuggled=payload"
        ))
        .await;
    assert_eq!(status, 200, "{connected}");
    assert_eq!(connected["connection"]["userName"], "Ada Lovelace");
    // credentials-from-token-response saw the response without its token fields.
    let info: BTreeMap<String, String> = connected["connection"]["additionalInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(info["instance_url"], host.provider.base_url());
    assert_eq!(info["seen_expires_in"], "3600");
    assert_eq!(
        info["seen_callback_query"], "location=eu",
        "only the declared callback parameter reached the guest"
    );
    for token_field in ["access_token", "refresh_token", "id_token"] {
        assert!(
            !info["seen_fields"].split(',').any(|f| f == token_field),
            "{token_field} reached the guest"
        );
    }
    let stats = host.provider.stats();
    assert_eq!(
        (stats.client_auth_header, stats.client_auth_body),
        (1, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let host = host().await;
    let (status, doc) = host.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/connectors",
        "/v1/connectors/{id}",
        "/v1/connectors/{id}/versions",
        "/v1/connectors/{id}/audit",
        "/v1/connectors/{id}/auth-page",
        "/v1/connectors/{id}/api-key/login",
        "/v1/connectors/{id}/oauth/start",
        "/v1/oauth/callback",
        "/v1/accounts/{account}/users/{user}/connections",
        "/v1/accounts/{account}/users/{user}/connections/{id}",
        "/v1/accounts/{account}/users/{user}/connections/{id}/logout",
        "/v1/accounts/{account}/users/{user}/connections/{id}/validate",
        "/v1/accounts/{account}/users/{user}/connections/{id}/refresh-user-info",
        "/v1/accounts/{account}/users/{user}/connections/{id}/test",
        "/v1/accounts/{account}/users/{user}/connections/{id}/refresh",
        "/v1/accounts/{account}/users/{user}/connections/{id}/proxy/{path}",
        "/v1/accounts/{account}/connectors/{connector}/managed-oauth",
        "/v1/accounts/{account}/connectors/{connector}/managed-fields",
        "/v1/accounts/{account}/users/{user}/connectors/{connector}/managed-fields",
        "/v1/accounts/{account}/admin-audit",
        "/v1/admin-audit",
        "/v1/whoami",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Connection",
        "ApiKeyLogin",
        "OAuthStart",
        "ApiError",
        "AuditEvent",
        "InspectReport",
        "ManagedOAuthInput",
        "ManagedFieldsUpdate",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert!(
        schemas["Connection"]["properties"].get("apiKey").is_none(),
        "no secret field in the schema"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_message_from_oauth_info_stops_the_login() {
    let host = host().await;
    // The regional connector refuses hostnames outside its regions.
    let start = json!({"accountId": "acct-1", "userId": "user-1", "hostname": "crm.evil.example"});
    let (status, error) = host
        .post("/v1/connectors/local-regional/oauth/start", start)
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("oauth_failed")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("crm.evil.example"),
        "{error}"
    );
    let (status, error) = host
        .post(
            "/v1/connectors/local-insightly/oauth/start",
            json!({"accountId": "a", "userId": "u"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("wrong_auth_type"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_failing_after_the_code_exchange_revokes_the_new_grant() {
    // Access tokens are born expired: the exchange succeeds, user-info gets 401.
    let host = Host::with(Options {
        token_lifetime_secs: 0,
        ..Options::default()
    })
    .await;
    let (_, callback) = host.authorize("acct-1", &host.provider_host()).await;
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_credentials")),
        "{error}"
    );
    assert_eq!(host.provider.stats().authorization_code_grants, 1);
    assert_eq!(
        host.provider.stats().revocations,
        1,
        "the grant of the failed login was revoked"
    );
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_hostname_must_be_a_host_name_and_nothing_else() {
    let host = host().await;
    for bad in [
        "evil.example/steal?x=",
        "user@evil.example",
        "evil.example#",
        "https://evil.example",
    ] {
        let start = json!({"accountId": "acct-1", "userId": "user-1", "hostname": bad});
        let (status, error) = host
            .post("/v1/connectors/local-regional/oauth/start", start)
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some("hostname")),
            "{bad}: {error}"
        );
        let login = json!({
            "accountId": "acct-1", "userId": "user-1", "hostname": bad,
            "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
        });
        let (status, error) = host
            .post("/v1/connectors/local-insightly/api-key/login", login)
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some("hostname")),
            "{bad}: {error}"
        );
    }
    let (_, connections) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(
        connections.as_array().map(Vec::len),
        Some(0),
        "{connections}"
    );
    // A host name with a port is fine.
    let start =
        json!({"accountId": "acct-1", "userId": "user-1", "hostname": host.provider_host()});
    let (status, started) = host
        .post("/v1/connectors/local-regional/oauth/start", start)
        .await;
    assert_eq!(status, 200, "{started}");
}
