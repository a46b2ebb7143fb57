//! `auth.oauth.discoveryUrl`: where the host reads an authorization server's
//! metadata (OpenID Connect Discovery 1.0 §4, RFC 8414 §3), and the issuer
//! identifier such a URL implies.
//!
//! Two forms are accepted, because only they say which issuer the document
//! must name (RFC 8414 §3.3, OIDC Discovery §4.3):
//!
//! - OIDC: `{issuer}/.well-known/openid-configuration`, e.g.
//!   `https://sso.example.com/realms/acme/.well-known/openid-configuration`;
//! - RFC 8414: the well-known segment inserted between the issuer's origin
//!   and its path, e.g.
//!   `https://sso.example.com/.well-known/oauth-authorization-server/realms/acme`.
//!
//! `{hostname}` may stand for the connection's hostname, as in
//! `revocationEndpoint` (tenant domains: Okta, Auth0).

use super::HOSTNAME_PLACEHOLDER;

/// The OIDC Discovery suffix appended to the issuer.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";

/// The RFC 8414 well-known segment inserted after the issuer's origin.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";

/// Checks a `discoveryUrl` as written in a manifest (`{hostname}` allowed):
/// an absolute `http(s)` URL without userinfo or fragment, in one of the two
/// well-known forms. `Err` says why, for a message naming the field. The
/// operator's `require_https` and the outbound policy apply when it is fetched.
pub fn check_discovery_url(value: &str) -> Result<(), String> {
    let sample = value.replace(HOSTNAME_PLACEHOLDER, "placeholder.example");
    let url =
        url::Url::parse(&sample).map_err(|e| format!("`{value}` is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("`{value}` must be an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{value}` must not contain userinfo"));
    }
    if url.fragment().is_some() {
        return Err(format!("`{value}` must not have a fragment"));
    }
    if issuer_of_discovery_url(&sample).is_none() {
        return Err(format!(
            "`{value}` is not a discovery URL: it must end with `{OPENID_CONFIGURATION}` (OpenID Connect) or have a path starting with `{OAUTH_AUTHORIZATION_SERVER}` (RFC 8414)"
        ));
    }
    Ok(())
}

/// The issuer identifier a discovery URL was formed from, without a
/// terminating `/` (both specifications remove it before forming the URL):
/// `https://sso.example.com/realms/acme` for either form above. `None` when
/// `url` is not an absolute URL in one of the two forms. The query (if any)
/// is not part of the issuer.
pub fn issuer_of_discovery_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return None;
    }
    let origin = parsed.origin().ascii_serialization();
    let path = parsed.path();
    let issuer_path = if let Some(prefix) = path.strip_suffix(OPENID_CONFIGURATION) {
        prefix
    } else {
        let rest = path.strip_prefix(OAUTH_AUTHORIZATION_SERVER)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    if issuer_path.contains("/.well-known/") {
        return None;
    }
    Some(format!("{origin}{}", issuer_path.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::super::Manifest;
    use super::*;

    fn with_oauth(oauth: serde_json::Value) -> Result<Manifest, super::super::ManifestError> {
        let value = serde_json::json!({
            "id": "demo", "version": "1.0.0",
            "auth": {"type": "oauth", "oauth": oauth}
        });
        Manifest::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn both_well_known_forms_name_their_issuer() {
        for (url, issuer) in [
            (
                "https://sso.example.com/realms/acme/.well-known/openid-configuration",
                "https://sso.example.com/realms/acme",
            ),
            (
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/acme",
                "https://sso.example.com/realms/acme",
            ),
            (
                "https://tenant.auth0.example/.well-known/openid-configuration",
                "https://tenant.auth0.example",
            ),
            (
                "https://login.example.com/.well-known/oauth-authorization-server",
                "https://login.example.com",
            ),
            (
                "http://127.0.0.1:9100/realms/acme/.well-known/openid-configuration?appid=1",
                "http://127.0.0.1:9100/realms/acme",
            ),
        ] {
            assert_eq!(
                issuer_of_discovery_url(url).as_deref(),
                Some(issuer),
                "{url}"
            );
        }
        for not_discovery in [
            "https://sso.example.com/realms/acme",
            "https://sso.example.com/.well-known/oauth-authorization-serverx",
            "https://sso.example.com/.well-known/openid-configuration/extra",
            "https://a.example/.well-known/oauth-authorization-server/.well-known/openid-configuration",
            "ftp://sso.example.com/.well-known/openid-configuration",
            "/.well-known/openid-configuration",
        ] {
            assert_eq!(
                issuer_of_discovery_url(not_discovery),
                None,
                "{not_discovery}"
            );
        }
    }

    #[test]
    fn a_discovery_url_alone_replaces_the_authorize_endpoint() {
        let manifest = with_oauth(serde_json::json!({
            "clientId": "c", "redirectUri": "https://app.example.com/cb",
            "discoveryUrl": "https://{hostname}/realms/acme/.well-known/openid-configuration"
        }))
        .unwrap();
        let oauth = manifest.auth.oauth.unwrap();
        assert_eq!(
            oauth.discovery_url.as_deref(),
            Some("https://{hostname}/realms/acme/.well-known/openid-configuration")
        );
        assert_eq!(oauth.auth_url, "");
        let json = serde_json::to_value(&oauth).unwrap();
        assert_eq!(
            json["discoveryUrl"],
            "https://{hostname}/realms/acme/.well-known/openid-configuration"
        );
        // Without one, the authorize endpoint is still required.
        let err = with_oauth(serde_json::json!({
            "clientId": "c", "redirectUri": "https://app.example.com/cb"
        }))
        .unwrap_err();
        assert_eq!(err.path, "auth.oauth.authUrl");
    }

    #[test]
    fn a_bad_discovery_url_is_refused_naming_the_field() {
        for bad in [
            "sso.example.com/.well-known/openid-configuration",
            "ftp://sso.example.com/.well-known/openid-configuration",
            "https://user:pw@sso.example.com/.well-known/openid-configuration",
            "https://sso.example.com/.well-known/openid-configuration#top",
            "https://sso.example.com/realms/acme",
            "https://sso.example.com/realms/acme/.well-known/jwks.json",
            "",
        ] {
            let err = with_oauth(serde_json::json!({
                "clientId": "c", "redirectUri": "https://app.example.com/cb",
                "discoveryUrl": bad
            }))
            .unwrap_err();
            assert_eq!(err.path, "auth.oauth.discoveryUrl", "{bad}: {err}");
            assert!(err.message.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }
}
