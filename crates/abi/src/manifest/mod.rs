//! The connector manifest: what a connector is and what it may do.
//!
//! The manifest is JSON written by the connector author (`connector.json`) and
//! embedded in the component as the `connector-manifest` custom section, so a
//! `.wasm` file is the whole connector and a reviewer can read its policy without
//! running it. It accepts the App Connect `auth` block (seeds 001/002), the
//! Membrane OAuth options (seed 003) and our own fields. Unknown fields are
//! errors that name the field's path.
//!
//! - this module: [`Manifest`], its parsing and validation, and [`ManifestError`];
//! - [`auth`]: the `auth` block (OAuth options, the API-key form);
//! - [`discovery`]: `auth.oauth.discoveryUrl` and the issuer it implies;
//! - [`origin`]: `allowedHosts` entries and how a URL is matched against them;
//! - [`placement`]: `auth.apiKey.placement`, where the host may put the API key.

mod auth;
mod discovery;
mod origin;
mod placement;

pub use auth::*;
pub use discovery::*;
pub use origin::AllowedOrigin;
pub use placement::*;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The custom section that carries the manifest.
pub const MANIFEST_SECTION: &str = "connector-manifest";

/// In `revocationEndpoint`, replaced by the connection's hostname.
pub const HOSTNAME_PLACEHOLDER: &str = "{hostname}";

/// Default refresh margin: tokens expiring within it are refreshed before use.
pub const DEFAULT_REFRESH_MARGIN_SECONDS: u64 = 300;
/// Largest refresh margin a manifest may set (one day): a larger one would make
/// every token due at once, and the background refresher looks that far ahead
/// for every connector.
pub const MAX_REFRESH_MARGIN_SECONDS: u64 = 86_400;

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
        if self.refresh_margin_seconds > MAX_REFRESH_MARGIN_SECONDS {
            return Err(ManifestError::new(
                "refreshMarginSeconds",
                format!(
                    "{} is more than the largest margin, {MAX_REFRESH_MARGIN_SECONDS} seconds (one day)",
                    self.refresh_margin_seconds
                ),
            ));
        }
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
        self.auth.validate()?;
        if let Some(lifetime) = self
            .auth
            .oauth
            .as_ref()
            .and_then(|o| o.default_token_lifetime_seconds)
            && lifetime <= self.refresh_margin_seconds
        {
            return Err(ManifestError::new(
                "auth.oauth.defaultTokenLifetimeSeconds",
                format!(
                    "{lifetime} is not longer than `refreshMarginSeconds` ({}): every token would be due for refresh as soon as it is issued",
                    self.refresh_margin_seconds
                ),
            ));
        }
        Ok(())
    }

    /// The display name, or the id when none is set.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Whether `value` may stand for `{hostname}`: a DNS name or IPv4 address
/// (labels of letters, digits and `-`, separated by dots, at most 253 bytes),
/// optionally followed by `:port`, and nothing else — no scheme, path, query,
/// userinfo or whitespace that could change the URL it is put into.
pub fn is_hostname(value: &str) -> bool {
    let (host, port) = match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    };
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p != 0));
    let host = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    port_ok && labels_ok
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
    fn hostnames_are_names_with_an_optional_port_and_nothing_else() {
        for good in [
            "eu.crm.example",
            "crm.example:8443",
            "10.0.0.1",
            "localhost",
            "a-b.example.",
        ] {
            assert!(is_hostname(good), "{good}");
        }
        for bad in [
            "",
            "evil.example/path",
            "evil.example?x=1",
            "user@evil.example",
            "https://evil.example",
            "evil.example#frag",
            "evil .example",
            "-x.example",
            "crm.example:0",
            "crm.example:99999",
            "[::1]:80",
        ] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn a_refresh_margin_over_a_day_is_refused_by_name() {
        let mut manifest = oauth_manifest();
        manifest["refreshMarginSeconds"] = serde_json::json!(u64::MAX);
        let error = parse(manifest.clone()).unwrap_err();
        assert_eq!(error.path, "refreshMarginSeconds");
        manifest["refreshMarginSeconds"] = serde_json::json!(MAX_REFRESH_MARGIN_SECONDS);
        assert!(parse(manifest).is_ok());
    }

    #[test]
    fn a_default_token_lifetime_is_bounded_and_refused_by_its_path() {
        let mut manifest = oauth_manifest();
        manifest["auth"]["oauth"]["defaultTokenLifetimeSeconds"] = serde_json::json!(3600);
        let parsed = parse(manifest.clone()).unwrap();
        assert_eq!(
            parsed.auth.oauth.unwrap().default_token_lifetime_seconds,
            Some(3600)
        );
        for bad in [
            serde_json::json!(0),
            serde_json::json!(MIN_DEFAULT_TOKEN_LIFETIME_SECONDS - 1),
            serde_json::json!(MAX_DEFAULT_TOKEN_LIFETIME_SECONDS + 1),
            serde_json::json!(u64::MAX),
        ] {
            manifest["auth"]["oauth"]["defaultTokenLifetimeSeconds"] = bad.clone();
            let error = parse(manifest.clone()).unwrap_err();
            assert_eq!(
                error.path, "auth.oauth.defaultTokenLifetimeSeconds",
                "{bad}"
            );
        }
        // Not longer than the refresh margin: every token would be due at once.
        manifest["auth"]["oauth"]["defaultTokenLifetimeSeconds"] = serde_json::json!(600);
        manifest["refreshMarginSeconds"] = serde_json::json!(600);
        let error = parse(manifest.clone()).unwrap_err();
        assert_eq!(error.path, "auth.oauth.defaultTokenLifetimeSeconds");
        assert!(
            error.to_string().contains("refreshMarginSeconds"),
            "{error}"
        );
        manifest["auth"]["oauth"]["defaultTokenLifetimeSeconds"] = serde_json::json!(-1);
        let error = parse(manifest).unwrap_err();
        assert_eq!(error.path, "auth.oauth.defaultTokenLifetimeSeconds");
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
            "auth": {"type": "apiKey", "apiKey": {"placement": "bearer", "page": {"title": "T", "content": [
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
    fn secret_fields_are_text_and_the_api_key_is_always_secret() {
        let manifest = |content: serde_json::Value| {
            serde_json::json!({
                "id": "k", "version": "1.0.0",
                "auth": {"type": "apiKey", "apiKey": {"placement": "bearer", "page": {"title": "T", "content": content}}}
            })
        };
        let good = parse(manifest(serde_json::json!([
            {"const": "apiKey", "title": "Key", "type": "string"},
            {"const": "apiSecret", "title": "Secret", "type": "string", "secret": true},
            {"const": "tenantId", "title": "Tenant", "type": "string"}
        ])))
        .unwrap();
        let page = &good.auth.api_key.as_ref().unwrap().page;
        assert!(page.is_secret("apiKey") && page.is_secret("apiSecret"));
        assert!(!page.is_secret("tenantId") && !page.is_secret("unknown"));
        let secret: Vec<&str> = page.secret_fields().map(|f| f.key.as_str()).collect();
        assert_eq!(secret, ["apiSecret"]);
        // `inspect` and the auth page show the declaration; absent means not secret.
        let shown = serde_json::to_value(page).unwrap();
        assert_eq!(shown["content"][1]["secret"], true);
        assert!(shown["content"][2].get("secret").is_none());
        let err = parse(manifest(serde_json::json!([
            {"const": "apiKey", "title": "Key", "type": "string"},
            {"const": "pin", "title": "PIN", "type": "integer", "secret": true}
        ])))
        .unwrap_err();
        assert_eq!(err.path, "auth.apiKey.page.content[1].secret");
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
}
