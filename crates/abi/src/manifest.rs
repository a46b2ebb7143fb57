//! The connector manifest: what a connector is and what it may do.
//!
//! The manifest is JSON written by the connector author (`connector.json`) and
//! embedded in the component as the `connector-manifest` custom section, so a
//! `.wasm` file is the whole connector and a reviewer can read its policy without
//! running it. It accepts the App Connect `auth` block (seeds 001/002), the
//! Membrane OAuth options (seed 003) and our own fields. Unknown fields are
//! errors that name the field's path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The custom section that carries the manifest.
pub const MANIFEST_SECTION: &str = "connector-manifest";

/// In `revocationEndpoint`, replaced by the connection's hostname.
pub const HOSTNAME_PLACEHOLDER: &str = "{hostname}";

/// Default refresh margin: tokens expiring within it are refreshed before use.
pub const DEFAULT_REFRESH_MARGIN_SECONDS: u64 = 300;

/// A connector's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier (`a-z`, `0-9`, `-`; up to 63 characters).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Semantic version of the connector.
    pub version: String,
    /// What the connector connects to.
    #[serde(default)]
    pub description: Option<String>,
    /// Origins the connector may call through `http`: `https://api.example.com`,
    /// `https://*.example.com`, with an optional port.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Names of host secrets the connector refers to (client secrets, header secrets).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Tokens expiring within this many seconds are refreshed before use.
    #[serde(default = "default_refresh_margin")]
    pub refresh_margin_seconds: u64,
    /// RFC 7009 revocation endpoint the host calls on logout; `{hostname}` is
    /// replaced by the connection's hostname.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The auth block (App Connect `auth`).
    pub auth: AuthBlock,
}

fn default_refresh_margin() -> u64 {
    DEFAULT_REFRESH_MARGIN_SECONDS
}

/// The manifest's auth mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthKind {
    /// OAuth 2.0 authorization code.
    #[serde(rename = "oauth")]
    OAuth,
    /// API key plus form fields.
    #[serde(rename = "apiKey")]
    ApiKey,
}

impl std::fmt::Display for AuthKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthKind::OAuth => "oauth",
            AuthKind::ApiKey => "apiKey",
        })
    }
}

/// App Connect's `auth` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthBlock {
    /// `oauth` or `apiKey`.
    #[serde(rename = "type")]
    pub kind: AuthKind,
    /// Client-visible OAuth values; required when `type` is `oauth`.
    #[serde(default)]
    pub oauth: Option<OAuthBlock>,
    /// The API-key login page; required when `type` is `apiKey`.
    #[serde(default)]
    pub api_key: Option<ApiKeyBlock>,
}

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

/// App Connect `auth.oauth` plus the Membrane OAuth options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthBlock {
    /// The CRM's authorize endpoint.
    pub auth_url: String,
    /// The public client id.
    pub client_id: String,
    /// The redirect URI registered with the CRM.
    pub redirect_uri: String,
    /// Scope query fragment, e.g. `scope=contacts.read contacts.write`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Extra content kept in the state (not the CSRF value).
    #[serde(default)]
    pub custom_state: Option<String>,
    /// Where client credentials go at the token endpoint (default: both).
    #[serde(default)]
    pub client_auth_location: Option<ClientAuthLocation>,
    /// The provider issues no refresh tokens.
    #[serde(default)]
    pub no_refresh_token: bool,
    /// Do not use PKCE (for providers that break on it).
    #[serde(default)]
    pub skip_pkce: bool,
    /// Extra authorize-URL parameters.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
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
        }
    }
}

/// App Connect `auth.apiKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBlock {
    /// The login form.
    pub page: ApiKeyPage,
}

/// The API-key login form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyPage {
    /// Form title.
    pub title: String,
    /// Text shown above the form.
    #[serde(default)]
    pub warning: Option<String>,
    /// The fields.
    pub content: Vec<FormField>,
}

/// Value type of a form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// Text.
    String,
    /// A number.
    Number,
    /// A whole number.
    Integer,
    /// true/false.
    Boolean,
}

/// Who an admin-managed value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ManagedScope {
    /// One value per account.
    Account,
    /// One value per user.
    User,
}

/// One field of the API-key form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormField {
    /// The field's key (`apiKey` is the API key itself).
    #[serde(rename = "const")]
    pub key: String,
    /// Label.
    pub title: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The user must fill it.
    #[serde(default)]
    pub required: bool,
    /// An admin provides the value.
    #[serde(default)]
    pub managed: bool,
    /// Whose value an admin provides (`account` or `user`; `account` when
    /// absent).
    #[serde(default)]
    pub managed_scope: Option<ManagedScope>,
    /// Not shown to normal users.
    #[serde(default)]
    pub hidden: bool,
    /// Rendering hints passed to the client as is.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub ui_schema: Option<serde_json::Value>,
}

/// The const of the form field that holds the API key.
pub const API_KEY_FIELD: &str = "apiKey";

/// A manifest problem, naming the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest field `{path}`: {message}")]
pub struct ManifestError {
    /// Path of the field, e.g. `auth.oauth.authUrl` or `allowedHosts[1]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ManifestError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Manifest {
    /// Parses and validates manifest JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "(root)".to_string()
            } else {
                path
            };
            ManifestError::new(path, e.into_inner().to_string())
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_id(&self.id)?;
        semver::Version::parse(&self.version).map_err(|e| {
            ManifestError::new(
                "version",
                format!("`{}` is not a semantic version: {e}", self.version),
            )
        })?;
        for (i, origin) in self.allowed_hosts.iter().enumerate() {
            AllowedOrigin::parse(origin)
                .map_err(|message| ManifestError::new(format!("allowedHosts[{i}]"), message))?;
        }
        let mut seen = BTreeSet::new();
        for (i, secret) in self.secrets.iter().enumerate() {
            let valid = !secret.is_empty()
                && secret.len() <= 128
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(ManifestError::new(
                    format!("secrets[{i}]"),
                    format!("`{secret}` is not a secret name (letters, digits, `-`, `_`, `.`)"),
                ));
            }
            if !seen.insert(secret) {
                return Err(ManifestError::new(
                    format!("secrets[{i}]"),
                    format!("`{secret}` is listed twice"),
                ));
            }
        }
        if let Some(endpoint) = &self.revocation_endpoint {
            // `{hostname}` stands for the connection's hostname (regional CRMs).
            let sample = endpoint.replace(HOSTNAME_PLACEHOLDER, "placeholder.example");
            absolute_url("revocationEndpoint", &sample)?;
        }
        self.auth.validate()
    }

    /// The display name, or the id when none is set.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

impl AuthBlock {
    fn validate(&self) -> Result<(), ManifestError> {
        match self.kind {
            AuthKind::OAuth => {
                let oauth = self.oauth.as_ref().ok_or_else(|| {
                    ManifestError::new("auth.oauth", "required when `auth.type` is `oauth`")
                })?;
                if self.api_key.is_some() {
                    return Err(ManifestError::new(
                        "auth.apiKey",
                        "only allowed when `auth.type` is `apiKey`",
                    ));
                }
                absolute_url("auth.oauth.authUrl", &oauth.auth_url)?;
                absolute_url("auth.oauth.redirectUri", &oauth.redirect_uri)?;
                if oauth.client_id.trim().is_empty() {
                    return Err(ManifestError::new(
                        "auth.oauth.clientId",
                        "must not be empty",
                    ));
                }
                if let Some(managed) = &oauth.admin_managed {
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
            AuthKind::ApiKey => {
                let api_key = self.api_key.as_ref().ok_or_else(|| {
                    ManifestError::new("auth.apiKey", "required when `auth.type` is `apiKey`")
                })?;
                if self.oauth.is_some() {
                    return Err(ManifestError::new(
                        "auth.oauth",
                        "only allowed when `auth.type` is `oauth`",
                    ));
                }
                api_key.page.validate()
            }
        }
    }
}

impl ApiKeyPage {
    fn validate(&self) -> Result<(), ManifestError> {
        let mut seen = BTreeSet::new();
        for (i, field) in self.content.iter().enumerate() {
            let path = format!("auth.apiKey.page.content[{i}]");
            let valid_key = !field.key.is_empty()
                && field
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_key {
                return Err(ManifestError::new(
                    format!("{path}.const"),
                    format!(
                        "`{}` is not a field key (letters, digits, `_`, `-`)",
                        field.key
                    ),
                ));
            }
            if !seen.insert(field.key.as_str()) {
                return Err(ManifestError::new(
                    format!("{path}.const"),
                    format!("`{}` is used twice", field.key),
                ));
            }
            if field.managed_scope.is_some() && !field.managed {
                return Err(ManifestError::new(
                    format!("{path}.managedScope"),
                    "only allowed with `managed: true`",
                ));
            }
        }
        if !seen.contains(API_KEY_FIELD) {
            return Err(ManifestError::new(
                "auth.apiKey.page.content",
                format!("needs a field with `const: \"{API_KEY_FIELD}\"` (the API key itself)"),
            ));
        }
        Ok(())
    }

    /// The managed fields of one scope (fields without `managedScope` are
    /// account-scoped).
    pub fn managed_fields(&self, scope: ManagedScope) -> impl Iterator<Item = &FormField> {
        self.content
            .iter()
            .filter(move |f| f.managed && f.managed_scope.unwrap_or(ManagedScope::Account) == scope)
    }

    /// The fields a normal user fills in: without hidden managed fields.
    pub fn user_fields(&self) -> impl Iterator<Item = &FormField> {
        self.content.iter().filter(|f| !(f.hidden && f.managed))
    }
}

fn validate_id(id: &str) -> Result<(), ManifestError> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(ManifestError::new(
            "id",
            format!("`{id}` is not a connector id (a-z, 0-9 and `-`, up to 63)"),
        ))
    }
}

fn absolute_url(path: &str, value: &str) -> Result<url::Url, ManifestError> {
    let url = url::Url::parse(value)
        .map_err(|e| ManifestError::new(path, format!("`{value}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ManifestError::new(
            path,
            format!("`{value}` must be an http(s) URL"),
        ));
    }
    Ok(url)
}

/// One entry of `allowedHosts`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedOrigin {
    /// `https` or `http`.
    pub scheme: String,
    /// The host, lower-case, without a `*.` prefix.
    pub host: String,
    /// True for `*.host`: any subdomain of `host` (not `host` itself).
    pub wildcard: bool,
    /// The port; the scheme's default when absent; `None` for `:*` (any port).
    pub port: Option<u16>,
}

impl AllowedOrigin {
    /// Parses `scheme://host[:port]` or `scheme://*.host[:port]`; `:*` allows
    /// any port.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (text_without_port, any_port) = match text.strip_suffix(":*") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let (scheme, rest) = text_without_port
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin like `https://api.example.com`"))?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = url::Url::parse(&format!("{scheme}://{rest}"))
            .map_err(|e| format!("`{text}` is not an origin: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("`{text}`: only http and https origins are allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}`: an origin carries no user or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{text}`: an origin has no path, query or fragment"
            ));
        }
        // The same normal form as request URLs: IPv6 without brackets, no
        // trailing dot, lower case.
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("`{text}` has no host")),
        };
        if host.contains('*') {
            return Err(format!("`{text}`: `*` is only allowed as a leading `*.`"));
        }
        if wildcard && !matches!(url.host(), Some(url::Host::Domain(_))) {
            return Err(format!(
                "`{text}`: a wildcard needs a domain name, not an IP address"
            ));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "`{text}`: a wildcard must sit under a registrable domain, not a top-level domain"
            ));
        }
        Ok(Self {
            scheme: url.scheme().to_string(),
            host,
            wildcard,
            port: if any_port {
                None
            } else {
                url.port_or_known_default()
            },
        })
    }

    /// Whether a request to `scheme://host:port` matches this origin. `host`
    /// must be lower-case without a trailing dot.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if scheme != self.scheme || self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth_manifest() -> serde_json::Value {
        serde_json::json!({
            "id": "demo", "version": "1.0.0",
            "allowedHosts": ["https://*.example.com", "https://api.example.com:8443"],
            "auth": {"type": "oauth", "oauth": {
                "authUrl": "https://example.com/authorize", "clientId": "c",
                "redirectUri": "https://app.example.com/cb", "extra": {"prompt": "consent"}
            }}
        })
    }

    fn parse(value: serde_json::Value) -> Result<Manifest, ManifestError> {
        Manifest::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn accepts_a_valid_oauth_manifest() {
        let manifest = parse(oauth_manifest()).unwrap();
        assert_eq!(manifest.auth.kind, AuthKind::OAuth);
        assert_eq!(
            manifest.refresh_margin_seconds,
            DEFAULT_REFRESH_MARGIN_SECONDS
        );
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let mut value = oauth_manifest();
        value["auth"]["oauth"]["clientSecret"] = "s".into();
        let err = parse(value).unwrap_err();
        assert_eq!(err.path, "auth.oauth.clientSecret");
        assert!(
            err.message.contains("unknown field `clientSecret`"),
            "{err}"
        );
    }

    #[test]
    fn bad_origin_names_its_index() {
        let mut value = oauth_manifest();
        value["allowedHosts"][1] = "https://user@api.example.com".into();
        let err = parse(value).unwrap_err();
        assert_eq!(err.path, "allowedHosts[1]");
        for bad in [
            "ftp://x.com",
            "https://x.com/path",
            "https://a.*.com",
            "https://*.10.0.0.1",
            "x.com",
        ] {
            assert!(AllowedOrigin::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn api_key_form_needs_the_api_key_field_and_unique_consts() {
        let value = serde_json::json!({
            "id": "k", "version": "1.0.0",
            "auth": {"type": "apiKey", "apiKey": {"page": {"title": "T", "content": [
                {"const": "tenantId", "title": "Tenant", "type": "string", "required": true}
            ]}}}
        });
        let err = parse(value.clone()).unwrap_err();
        assert_eq!(err.path, "auth.apiKey.page.content");
        let mut dup = value;
        dup["auth"]["apiKey"]["page"]["content"] = serde_json::json!([
            {"const": "apiKey", "title": "Key", "type": "string"},
            {"const": "apiKey", "title": "Key", "type": "string"}
        ]);
        assert_eq!(
            parse(dup).unwrap_err().path,
            "auth.apiKey.page.content[1].const"
        );
    }

    #[test]
    fn auth_block_must_match_its_type() {
        let mut value = oauth_manifest();
        value["auth"]["type"] = "apiKey".into();
        assert_eq!(parse(value).unwrap_err().path, "auth.apiKey");
        let mut value = oauth_manifest();
        value["version"] = "one".into();
        assert_eq!(parse(value).unwrap_err().path, "version");
    }

    #[test]
    fn origin_parsing_normalises() {
        let origin = AllowedOrigin::parse("https://*.Example.COM").unwrap();
        assert!(origin.wildcard);
        assert_eq!(
            (origin.host.as_str(), origin.port),
            ("example.com", Some(443))
        );
        assert_eq!(
            AllowedOrigin::parse("http://127.0.0.1:8080").unwrap().port,
            Some(8080)
        );
        assert_eq!(
            AllowedOrigin::parse("http://127.0.0.1:*").unwrap().port,
            None
        );
    }

    #[test]
    fn origins_match_scheme_host_and_port_exactly() {
        let wildcard = AllowedOrigin::parse("https://*.example.com").unwrap();
        assert!(wildcard.matches("https", "api.example.com", 443));
        assert!(wildcard.matches("https", "a.b.example.com", 443));
        assert!(
            !wildcard.matches("https", "example.com", 443),
            "the apex is not a subdomain"
        );
        assert!(!wildcard.matches("https", "evilexample.com", 443));
        assert!(!wildcard.matches("http", "api.example.com", 443));
        assert!(!wildcard.matches("https", "api.example.com", 8443));
        let any_port = AllowedOrigin::parse("http://127.0.0.1:*").unwrap();
        assert!(any_port.matches("http", "127.0.0.1", 9999));
        assert!(!any_port.matches("http", "127.0.0.2", 9999));
        let v6 = AllowedOrigin::parse("http://[::1]:8080").unwrap();
        assert!(
            v6.matches("http", "::1", 8080),
            "IPv6 origins compare without brackets"
        );
        assert!(AllowedOrigin::parse("https://*.com").is_err());
    }
}
