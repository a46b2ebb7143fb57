//! Test-only: API-key login with admin-managed fields. The CRM accepts only
//! the tenant `acme-tenant` (a wrong managed tenant makes the login fail, as
//! a real CRM would); the user-scoped `region` is echoed back so tests can see
//! which value the connector received.

use connector_sdk::prelude::*;

struct ManagedApiKey;

fn value<'a>(connection: &'a ConnectionInfo, key: &str) -> Option<&'a str> {
    connection
        .additional_info
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[connector]
impl Connector for ManagedApiKey {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    // No `basic_auth`: the host places the key as connector.json declares
    // (`auth.apiKey.placement`).

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        if value(&connection, "tenantId") != Some("acme-tenant") {
            return Err(ConnectorError::Provider(ProviderError {
                status: Some(401),
                code: Some("unknown_tenant".into()),
                message: "the CRM does not know this tenant".into(),
            }));
        }
        let base = config::get("api-base").ok_or_else(|| {
            ConnectorError::BadInput("operator config `api-base` is not set".into())
        })?;
        http::Request::get(format!("{base}/v3.1/Users/Me"))
            .credential(http::Credential::ApiKey)
            .send()?
            .error_for_status()?;
        Ok(UserInfo {
            platform_user_id: "12345".into(),
            name: "Ada Lovelace".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![(
                "regionSeen".into(),
                value(&connection, "region").unwrap_or("none").into(),
            )],
            message: None,
        })
    }

    fn auth_validation(connection: ConnectionInfo) -> Result<Validation, ConnectorError> {
        // Validation sees the admin's current tenant, not a saved copy.
        let ok = value(&connection, "tenantId") == Some("acme-tenant");
        Ok(Validation {
            successful: ok,
            status: Some(if ok { 200 } else { 401 }),
            fail_reason: (!ok).then(|| "unknown tenant".into()),
        })
    }
}
