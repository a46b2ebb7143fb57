//! `auth.oauth`: App Connect's OAuth values with the Membrane options (grant
//! type, discovery, admin-managed applications), and their validation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::super::{ManifestError, absolute_url};

/// Where the OAuth client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ClientAuthLocation {
    /// HTTP Basic header.
    Header,
    /// Form body fields.
    Body,
    /// Both.
    Both,
}

/// How the host obtains an OAuth connection's tokens (`auth.oauth.grantType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1: a user logs in at the provider and is redirected back
    /// with a code (the default).
    #[default]
    AuthorizationCode,
    /// RFC 6749 §4.4 (Nango `OAUTH2_CC`, Membrane client credentials): the
    /// host requests tokens with the client's own credentials, with no user
    /// and no redirect, and requests a new one the same way when it expires.
    ClientCredentials,
}

impl GrantType {
    /// True for the default, `authorization_code` (left out when serialised).
    pub fn is_authorization_code(&self) -> bool {
        *self == GrantType::AuthorizationCode
    }
}

/// App Connect `auth.oauth` plus the Membrane OAuth options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthBlock {
    /// The CRM's authorize endpoint. Required for `authorization_code`
    /// (unless `discoveryUrl` supplies it); absent for `client_credentials`
    /// (no user is redirected).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_url: String,
    /// The public client id.
    pub client_id: String,
    /// The redirect URI registered with the CRM. Required for
    /// `authorization_code`; absent for `client_credentials`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub redirect_uri: String,
    /// How the host obtains tokens: `authorization_code` (default) or
    /// `client_credentials` (no user redirect; the host requests and renews
    /// the tokens itself with the client id and secret `oauth-info` names).
    #[serde(default, skip_serializing_if = "GrantType::is_authorization_code")]
    pub grant_type: GrantType,
    /// Scope query fragment, e.g. `scope=contacts.read contacts.write`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Extra content kept in the state (not the CSRF value).
    #[serde(default)]
    pub custom_state: Option<String>,
    /// Where client credentials go at the token, refresh and revocation
    /// endpoints (default: `header`, HTTP Basic only; RFC 6749 §2.3 allows
    /// one method per request).
    #[serde(default)]
    pub client_auth_location: Option<ClientAuthLocation>,
    /// The authorization server's issuer identifier (RFC 8414 §2), e.g.
    /// `https://sso.example.com/realms/acme`. When set, a callback's `iss`
    /// (RFC 9207) must equal it exactly; when absent, `iss` is compared with
    /// the origins of the authorize and token endpoints.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The authorization server's metadata document: an OpenID Connect
    /// `…/.well-known/openid-configuration` or RFC 8414
    /// `…/.well-known/oauth-authorization-server…` URL (`{hostname}` is
    /// replaced by the connection's hostname). The host fetches it and fills
    /// in what is declared nowhere else: the authorize, token and revocation
    /// endpoints, the issuer, the client authentication method and whether
    /// PKCE S256 is supported. With it, `authUrl` may be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// The access token's lifetime in seconds when a token response (at the
    /// login or a refresh) has no `expires_in`: such a connection then gets
    /// an expiry and is refreshed like any other. Absent: a token without
    /// `expires_in` never expires for the host. Between
    /// [`MIN_DEFAULT_TOKEN_LIFETIME_SECONDS`] and
    /// [`MAX_DEFAULT_TOKEN_LIFETIME_SECONDS`], and longer than the
    /// manifest's `refreshMarginSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_token_lifetime_seconds: Option<u64>,
    /// The provider issues no refresh tokens.
    #[serde(default)]
    pub no_refresh_token: bool,
    /// Do not use PKCE (for providers that break on it).
    #[serde(default)]
    pub skip_pkce: bool,
    /// Extra authorize-URL parameters.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    /// Callback query parameters the connector reads (regional providers
    /// send e.g. `location` or `accounts-server`), handed to
    /// `credentials-from-token-response`; every other parameter is dropped.
    #[serde(default)]
    pub callback_params: Vec<String>,
    /// Each customer account brings its own OAuth application, set up by an
    /// account admin (App Connect admin-managed OAuth).
    #[serde(default)]
    pub admin_managed: Option<AdminManagedOAuth>,
}

/// `auth.oauth.adminManaged`: which values an account admin must submit, and
/// how to find them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminManagedOAuth {
    /// The values the admin must submit (others are optional).
    pub required: Vec<ManagedOAuthValue>,
    /// Instructions shown to the admin: where in the CRM's developer portal to
    /// register the application and which redirect URI to enter.
    #[serde(default)]
    pub instructions: Option<String>,
}

/// One value of an admin-managed OAuth application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ManagedOAuthValue {
    /// The client id.
    ClientId,
    /// The client secret (stored encrypted, never shown again).
    ClientSecret,
    /// The token endpoint.
    TokenUrl,
    /// The authorization endpoint.
    AuthorizationUrl,
    /// The redirect URI registered with the application.
    RedirectUri,
    /// The CRM hostname.
    Hostname,
    /// The authorization server's issuer identifier (RFC 8414), compared
    /// exactly with a callback's `iss`.
    Issuer,
}

impl ManagedOAuthValue {
    /// The JSON name (`clientId`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedOAuthValue::ClientId => "clientId",
            ManagedOAuthValue::ClientSecret => "clientSecret",
            ManagedOAuthValue::TokenUrl => "tokenUrl",
            ManagedOAuthValue::AuthorizationUrl => "authorizationUrl",
            ManagedOAuthValue::RedirectUri => "redirectUri",
            ManagedOAuthValue::Hostname => "hostname",
            ManagedOAuthValue::Issuer => "issuer",
        }
    }
}

/// Shortest `auth.oauth.defaultTokenLifetimeSeconds` (one minute).
pub const MIN_DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 60;
/// Longest `auth.oauth.defaultTokenLifetimeSeconds` (one year).
pub const MAX_DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 365 * 86_400;

/// Checks an issuer identifier (RFC 8414 §2): an absolute `https` URL (or
/// `http` on a loopback host, for local providers) without userinfo, query or
/// fragment. The value is kept as written: issuers are compared as exact
/// strings, so `https://sso.example.com/` and `https://sso.example.com` are
/// different issuers. `Err` says why, for a message naming the field.
pub fn check_issuer(value: &str) -> Result<(), String> {
    let url =
        url::Url::parse(value).map_err(|e| format!("`{value}` is not an absolute URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "`{value}` must be an https URL (http only on a loopback host)"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{value}` must not contain userinfo"));
    }
    if url.query().is_some() || url.fragment().is_some() || value.contains(['?', '#']) {
        return Err(format!(
            "`{value}` must not have a query or fragment (RFC 8414 §2)"
        ));
    }
    Ok(())
}

impl OAuthBlock {
    /// Checks `auth.oauth`, naming the field at fault.
    pub(super) fn validate(&self) -> Result<(), ManifestError> {
        self.validate_grant()?;
        if let Some(issuer) = &self.issuer {
            check_issuer(issuer)
                .map_err(|message| ManifestError::new("auth.oauth.issuer", message))?;
        }
        if let Some(url) = &self.discovery_url {
            super::super::check_discovery_url(url)
                .map_err(|message| ManifestError::new("auth.oauth.discoveryUrl", message))?;
        }
        if let Some(lifetime) = self.default_token_lifetime_seconds
            && !(MIN_DEFAULT_TOKEN_LIFETIME_SECONDS..=MAX_DEFAULT_TOKEN_LIFETIME_SECONDS)
                .contains(&lifetime)
        {
            return Err(ManifestError::new(
                "auth.oauth.defaultTokenLifetimeSeconds",
                format!(
                    "{lifetime} is outside {MIN_DEFAULT_TOKEN_LIFETIME_SECONDS} to {MAX_DEFAULT_TOKEN_LIFETIME_SECONDS} seconds (one minute to one year)"
                ),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ManifestError::new(
                "auth.oauth.clientId",
                "must not be empty",
            ));
        }
        for (i, name) in self.callback_params.iter().enumerate() {
            let reserved = ["code", "state", "iss", "error", "error_description"];
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid || reserved.contains(&name.as_str()) {
                return Err(ManifestError::new(
                    format!("auth.oauth.callbackParams[{i}]"),
                    format!(
                        "`{name}` cannot be a callback parameter (letters, digits, `-_.`; not one the host reads itself)"
                    ),
                ));
            }
        }
        if let Some(managed) = &self.admin_managed {
            let mut seen = BTreeSet::new();
            for (i, value) in managed.required.iter().enumerate() {
                if !seen.insert(value) {
                    return Err(ManifestError::new(
                        format!("auth.oauth.adminManaged.required[{i}]"),
                        format!("`{}` is listed twice", value.as_str()),
                    ));
                }
            }
            if !seen.contains(&ManagedOAuthValue::ClientId) {
                return Err(ManifestError::new(
                    "auth.oauth.adminManaged.required",
                    "must contain `clientId`: the tenant's application is what makes it admin-managed",
                ));
            }
        }
        Ok(())
    }

    /// True when the host obtains the tokens with the client-credentials
    /// grant (no user redirect, no refresh token: renewed by a new grant).
    pub fn is_client_credentials(&self) -> bool {
        self.grant_type == GrantType::ClientCredentials
    }

    /// The authorization-code grant needs the authorize endpoint and the
    /// redirect URI; the client-credentials grant uses neither, nor the
    /// options of the redirect.
    fn validate_grant(&self) -> Result<(), ManifestError> {
        if !self.is_client_credentials() {
            // With a discovery document, the authorize endpoint may come from it.
            if self.discovery_url.is_none() || !self.auth_url.is_empty() {
                absolute_url("auth.oauth.authUrl", &self.auth_url)?;
            }
            absolute_url("auth.oauth.redirectUri", &self.redirect_uri)?;
            return Ok(());
        }
        let redirect_only = [
            ("auth.oauth.authUrl", !self.auth_url.is_empty()),
            ("auth.oauth.redirectUri", !self.redirect_uri.is_empty()),
            (
                "auth.oauth.callbackParams",
                !self.callback_params.is_empty(),
            ),
            ("auth.oauth.customState", self.custom_state.is_some()),
            ("auth.oauth.extra", !self.extra.is_empty()),
            ("auth.oauth.skipPkce", self.skip_pkce),
        ];
        match redirect_only.into_iter().find(|(_, set)| *set) {
            Some((path, _)) => Err(ManifestError::new(
                path,
                "does not apply to `grantType: client_credentials` (no user is redirected)",
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod issuer_tests {
    use super::check_issuer;
    use crate::manifest::Manifest;

    fn with_issuer(issuer: &str) -> Result<Manifest, super::ManifestError> {
        let value = serde_json::json!({
            "id": "demo", "version": "1.0.0",
            "auth": {"type": "oauth", "oauth": {
                "authUrl": "https://sso.example.com/realms/acme/protocol/openid-connect/auth",
                "clientId": "c", "redirectUri": "https://app.example.com/cb",
                "issuer": issuer
            }}
        });
        Manifest::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn issuers_with_paths_are_kept_exactly_as_written() {
        for good in [
            "https://sso.example.com/realms/acme",
            "https://acme.okta.com/oauth2/default",
            "https://accounts.example.com/",
            "http://127.0.0.1:9100/realms/acme",
            "http://localhost:8080",
            "http://[::1]:8080/tenant",
        ] {
            let manifest = with_issuer(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            let oauth = manifest.auth.oauth.unwrap();
            assert_eq!(oauth.issuer.as_deref(), Some(good));
        }
    }

    #[test]
    fn a_bad_issuer_is_refused_naming_the_field() {
        for bad in [
            "sso.example.com/realms/acme",
            "http://sso.example.com/realms/acme",
            "ftp://sso.example.com",
            "https://sso.example.com/realms/acme?x=1",
            "https://sso.example.com/realms/acme?",
            "https://sso.example.com/realms/acme#top",
            "https://user:pw@sso.example.com/realms/acme",
        ] {
            let err = with_issuer(bad).unwrap_err();
            assert_eq!(err.path, "auth.oauth.issuer", "{bad}");
            assert!(err.message.contains(bad), "{bad}: {}", err.message);
            assert!(check_issuer(bad).is_err());
        }
    }
}

#[cfg(test)]
mod grant_tests {
    use super::GrantType;
    use crate::manifest::Manifest;

    fn with_oauth(oauth: serde_json::Value) -> Result<Manifest, super::ManifestError> {
        let value = serde_json::json!({
            "id": "demo", "version": "1.0.0",
            "auth": {"type": "oauth", "oauth": oauth}
        });
        Manifest::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn client_credentials_need_no_redirect_and_refuse_its_options() {
        let manifest = with_oauth(serde_json::json!({
            "clientId": "c", "grantType": "client_credentials", "scope": "scope=reports.read"
        }))
        .unwrap();
        let oauth = manifest.auth.oauth.unwrap();
        assert_eq!(oauth.grant_type, GrantType::ClientCredentials);
        assert!(oauth.is_client_credentials());
        let json = serde_json::to_value(&oauth).unwrap();
        assert_eq!(json["grantType"], "client_credentials");
        assert!(json.get("authUrl").is_none(), "{json}");

        for (field, value) in [
            (
                "authUrl",
                serde_json::json!("https://crm.example.com/authorize"),
            ),
            (
                "redirectUri",
                serde_json::json!("https://app.example.com/cb"),
            ),
            ("callbackParams", serde_json::json!(["location"])),
            ("skipPkce", serde_json::json!(true)),
        ] {
            let mut oauth = serde_json::json!({"clientId": "c", "grantType": "client_credentials"});
            oauth[field] = value;
            let err = with_oauth(oauth).unwrap_err();
            assert_eq!(err.path, format!("auth.oauth.{field}"), "{err}");
            assert!(err.message.contains("client_credentials"), "{err}");
        }
        let err =
            with_oauth(serde_json::json!({"clientId": "c", "grantType": "password"})).unwrap_err();
        assert_eq!(err.path, "auth.oauth.grantType", "{err}");
    }

    #[test]
    fn the_authorization_code_grant_still_needs_its_endpoints() {
        let err = with_oauth(serde_json::json!({
            "clientId": "c", "redirectUri": "https://app.example.com/cb"
        }))
        .unwrap_err();
        assert_eq!(err.path, "auth.oauth.authUrl");
        let err = with_oauth(serde_json::json!({
            "clientId": "c", "authUrl": "https://crm.example.com/authorize",
            "grantType": "authorization_code"
        }))
        .unwrap_err();
        assert_eq!(err.path, "auth.oauth.redirectUri");
        let manifest = with_oauth(serde_json::json!({
            "clientId": "c", "authUrl": "https://crm.example.com/authorize",
            "redirectUri": "https://app.example.com/cb"
        }))
        .unwrap();
        let oauth = manifest.auth.oauth.unwrap();
        assert!(!oauth.is_client_credentials());
        assert!(
            serde_json::to_value(&oauth)
                .unwrap()
                .get("grantType")
                .is_none()
        );
    }
}
