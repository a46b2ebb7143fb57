//! Regional CRM: an OAuth connector whose API lives on a per-region hostname
//! (`eu.regional-crm.example`, `us.regional-crm.example`, …), modelled on App
//! Connect's `getOauthInfo({ hostname })`.
//!
//! Copy this crate to start an OAuth connector. The host requires `auth_type`,
//! `oauth_info` and `user_info`; every other hook is optional: delete the ones
//! you do not need. `connector.json` next to `Cargo.toml` is the manifest: its
//! `clientId`, `redirectUri` and `secrets` must agree with the constants below.

use connector_sdk::prelude::*;
use serde_json::Value;

/// The public client id: the manifest's `auth.oauth.clientId`.
const CLIENT_ID: &str = "regional-public-client";
/// The manifest's `auth.oauth.redirectUri` (operators may override it with the
/// `redirect-uri` config key).
const REDIRECT_URI: &str = "https://apps.example.com/oauth/callback";
/// The host secret holding the client secret. The value never enters the
/// sandbox; the name must be listed in the manifest's `secrets`.
const CLIENT_SECRET: &str = "regional-crm-client-secret";
/// Used when neither the user nor the operator (`default-hostname`) chose a region.
const DEFAULT_HOSTNAME: &str = "eu.regional-crm.example";
/// Every regional hostname ends with this.
const REGIONAL_DOMAIN: &str = ".regional-crm.example";

struct RegionalCrm;

#[connector]
impl Connector for RegionalCrm {
    /// Must equal the manifest's `auth.type`.
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    /// Server-side OAuth values: the token endpoint of the user's region and a
    /// reference to the client secret. The authorize page is the manifest's
    /// `authUrl` unless the operator set the `authorize-url` config key.
    fn oauth_info(input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        let mut info = OauthInfo {
            client_id: CLIENT_ID.into(),
            client_secret: ClientSecretRef::HostSecret(CLIENT_SECRET.into()),
            access_token_uri: String::new(),
            redirect_uri: config::get("redirect-uri").unwrap_or_else(|| REDIRECT_URI.into()),
            authorization_uri: config::get("authorize-url"),
            scopes: None,
            hostname: None,
            fail_message: None,
        };
        match Region::resolve(input.hostname) {
            Ok(region) => {
                info.access_token_uri = region.url("/oauth/token");
                info.hostname = Some(region.hostname);
            }
            // A fail message stops the flow and is shown to the user.
            Err(message) => info.fail_message = Some(message),
        }
        Ok(info)
    }

    /// The code exchange tells the CRM which region issued the code, and the
    /// client authenticates in the body.
    fn overriding_oauth_option(info: OauthInfo) -> Result<TokenRequestOverride, ConnectorError> {
        let region = Region::resolve(info.hostname).map_err(ConnectorError::BadInput)?;
        Ok(TokenRequestOverride {
            token_url: None,
            extra_body_params: vec![("region".into(), region.label().into())],
            extra_headers: vec![],
            client_auth_location: Some(ClientAuthLocation::Body),
        })
    }

    /// Who the user is: `GET /api/v1/me` with the access token the host injects.
    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let region = Region::resolve(connection.hostname).map_err(ConnectorError::BadInput)?;
        let me = http::Request::get(region.url("/api/v1/me"))
            .header("accept", "application/json")
            .credential(http::Credential::AccessToken)
            .send()? // refused by the host's policy or the network failed
            .error_for_status()?; // 401 → re-auth, other non-2xx → provider error
        let me: Value = serde_json::from_slice(&me.body).map_err(|e| bad_response(&e))?;
        let id = text(&me["id"]).ok_or_else(|| bad_response(&"no `id`"))?;
        Ok(UserInfo {
            name: text(&me["name"]).unwrap_or_else(|| id.clone()),
            platform_user_id: id,
            timezone_name: text(&me["timezone"]),
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        })
    }

    /// Same call as `user_info`.
    fn refresh_user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        Self::user_info(connection)
    }

    /// The connection is valid while `/api/v1/me` answers 2xx.
    fn auth_validation(connection: ConnectionInfo) -> Result<Validation, ConnectorError> {
        let region = Region::resolve(connection.hostname).map_err(ConnectorError::BadInput)?;
        let response = http::Request::get(region.url("/api/v1/me"))
            .credential(http::Credential::AccessToken)
            .send()?;
        let successful = response.is_success();
        Ok(Validation {
            successful,
            status: Some(response.status),
            fail_reason: (!successful)
                .then(|| format!("Regional CRM answered HTTP {}", response.status)),
        })
    }
}

/// The region a call talks to: `{scheme}://{hostname}`.
struct Region {
    scheme: String,
    hostname: String,
}

impl Region {
    /// Picks the hostname (the user's, else config `default-hostname`, else
    /// [`DEFAULT_HOSTNAME`]) and refuses anything outside the regional domain.
    /// The host enforces `allowedHosts` anyway; this gives the user a clear
    /// message instead of a refused request.
    fn resolve(requested: Option<String>) -> Result<Region, String> {
        let default = config::get("default-hostname");
        let hostname = requested
            .filter(|h| !h.trim().is_empty())
            .or_else(|| default.clone())
            .unwrap_or_else(|| DEFAULT_HOSTNAME.into())
            .trim()
            .to_ascii_lowercase();
        let allowed = is_regional(&hostname)
            || default.is_some_and(|d| d.trim().eq_ignore_ascii_case(&hostname));
        if !allowed {
            return Err(format!(
                "`{hostname}` is not a Regional CRM hostname (expected <region>{REGIONAL_DOMAIN})"
            ));
        }
        let scheme = config::get("scheme").unwrap_or_else(|| "https".into());
        if scheme != "https" && scheme != "http" {
            return Err(format!(
                "unsupported scheme `{scheme}` in the connector config"
            ));
        }
        Ok(Region { scheme, hostname })
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.hostname)
    }

    /// The region's name: the hostname's first label (`eu`).
    fn label(&self) -> &str {
        self.hostname.split('.').next().unwrap_or_default()
    }
}

/// `<label>[.<label>…].regional-crm.example` with plain DNS labels.
fn is_regional(hostname: &str) -> bool {
    hostname.strip_suffix(REGIONAL_DOMAIN).is_some_and(|sub| {
        sub.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
    })
}

/// A JSON string or number as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bad_response(why: &dyn std::fmt::Display) -> ConnectorError {
    ConnectorError::Provider(ProviderError {
        status: None,
        code: Some("unexpected_response".into()),
        message: format!("unexpected /api/v1/me response: {why}"),
    })
}
