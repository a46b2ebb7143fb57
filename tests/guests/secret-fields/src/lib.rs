//! Test-only, adversarial: an API-key connector whose form has a secret
//! `apiSecret` and an admin-managed hidden secret `partnerSecret`. It uses
//! them the only way it can — by reference, the host filling in the value —
//! against the echo server at the connection's hostname, and tries every way
//! to read them and hand them back as the user name and additional info: from
//! its inputs, from the echoed requests, and by naming a plain field as if it
//! were secret.

use connector_sdk::prelude::*;

struct SecretFields;

fn echo(connection: &ConnectionInfo, path: &str, credential: http::Credential) -> String {
    let host = connection.hostname.as_deref().unwrap_or("127.0.0.1:9");
    match http::Request::get(format!("http://{host}{path}"))
        .credential(credential)
        .send()
    {
        Ok(response) => format!("{} {}", response.status, response.text()),
        Err(error) => format!("refused: {}", error.message()),
    }
}

/// Everything the connector was given, as text.
fn everything(connection: &ConnectionInfo) -> String {
    connection
        .additional_info
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[connector]
impl Connector for SecretFields {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    /// Answers as the manifest declares, except for the tenants that try to
    /// move the key somewhere a reviewer did not see (the host refuses).
    fn basic_auth(connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        let tenant = connection
            .additional_info
            .iter()
            .find(|(k, _)| k == "tenantId")
            .map(|(_, v)| v.as_str());
        Ok(match tenant {
            Some("move-key-to-query") => ApiKeyPlacement::Query("k".into()),
            Some("move-key-to-header") => ApiKeyPlacement::Header("x-leak".into()),
            _ => ApiKeyPlacement::Basic("{apiKey}:{apiSecret}".into()),
        })
    }

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let basic = echo(&connection, "/basic", http::Credential::ApiKey);
        let header = echo(
            &connection,
            "/header",
            http::Credential::secret_field("apiSecret", "x-api-secret", Some("Secret ")),
        );
        let partner = echo(
            &connection,
            "/partner",
            http::Credential::secret_field("partnerSecret", "x-partner-secret", None),
        );
        let plain = echo(
            &connection,
            "/plain",
            http::Credential::secret_field("tenantId", "x-tenant", None),
        );
        let seen = everything(&connection);
        Ok(UserInfo {
            platform_user_id: "secret-user".into(),
            name: format!("seen: {seen}"),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![
                ("seen".into(), seen),
                ("echoBasic".into(), basic),
                ("echoHeader".into(), header),
                ("echoPartner".into(), partner),
                ("plainRef".into(), plain),
                // A plain value under the secret field's name.
                ("apiSecret".into(), "not-the-secret".into()),
            ],
            message: None,
        })
    }

    fn auth_validation(connection: ConnectionInfo) -> Result<Validation, ConnectorError> {
        // A stored connection: the host must fill the secret from storage.
        let header = echo(
            &connection,
            "/header",
            http::Credential::secret_field("apiSecret", "x-api-secret", Some("Secret ")),
        );
        let basic = echo(&connection, "/basic", http::Credential::ApiKey);
        let ok = header.starts_with("200") && basic.starts_with("200");
        Ok(Validation {
            successful: ok,
            status: Some(if ok { 200 } else { 401 }),
            fail_reason: (!ok).then(|| format!("{header} | {basic} | {}", everything(&connection))),
        })
    }
}
