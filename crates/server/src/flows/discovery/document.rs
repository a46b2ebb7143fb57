//! An authorization server's metadata document (RFC 8414 §2, OpenID Connect
//! Discovery §3) as the host reads it: only the fields it uses, each checked,
//! and every problem a [`DiscoveryError`] naming the field.

use connector_abi::manifest::{ClientAuthLocation, OAuthBlock, check_issuer};
use connector_sandbox::wit::hooks::OauthValues;
use serde_json::{Map, Value};

use crate::flows::FlowError;

/// Largest discovery document read (real ones are a few KiB).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64 << 10;

/// Why discovery failed. Messages name the discovery URL (it holds no
/// secret) and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DiscoveryError {
    /// `{hostname}` is in the URL and the login or connection has none.
    #[error("`auth.oauth.discoveryUrl` needs the connection's hostname: {0}")]
    Hostname(String),
    /// The outbound policy refused the discovery URL.
    #[error("OAuth discovery URL `{url}` refused by the outbound policy: {reason}")]
    Refused { url: String, reason: String },
    /// The request failed or timed out.
    #[error("OAuth discovery at `{url}` failed: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered something other than 200.
    #[error("OAuth discovery at `{url}` answered HTTP {status}, not 200")]
    Status { url: String, status: u16 },
    /// The document is over [`MAX_DOCUMENT_BYTES`].
    #[error("the OAuth discovery document at `{url}` is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    /// Not a JSON object.
    #[error("the OAuth discovery document at `{url}` is not a JSON object: {reason}")]
    Malformed { url: String, reason: String },
    /// A field is missing or unusable.
    #[error("the OAuth discovery document at `{url}`: field `{field}` {problem}")]
    Field {
        url: String,
        field: &'static str,
        problem: String,
    },
    /// The document's `issuer` is not the one its URL was formed from, or
    /// not the issuer the connector or managed application declares.
    #[error(
        "the OAuth discovery document at `{url}` names issuer `{found}`, not {expected} (RFC 8414 §3.3)"
    )]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    /// An endpoint of the document fails the connector's outbound policy.
    #[error(
        "the OAuth discovery document at `{url}`: field `{field}` (`{endpoint}`) refused by the outbound policy: {reason}"
    )]
    EndpointRefused {
        url: String,
        field: &'static str,
        endpoint: String,
        reason: String,
    },
    /// PKCE methods are listed and S256 is not among them.
    #[error(
        "the OAuth discovery document at `{url}`: field `code_challenge_methods_supported` lists {methods:?} but not `S256`, which the host requires (RFC 9700 §2.1.1); a connector for such a provider must set `skipPkce`"
    )]
    NoS256 { url: String, methods: Vec<String> },
}

impl From<DiscoveryError> for FlowError {
    /// Policy refusals are the connector's (502 `connector_error`, as for a
    /// token endpoint); everything else is the provider's (502
    /// `provider_error`); a missing hostname is the caller's (`hostname`).
    fn from(error: DiscoveryError) -> Self {
        match &error {
            DiscoveryError::Hostname(_) => FlowError::field_error("hostname", error.to_string()),
            DiscoveryError::Refused { .. } | DiscoveryError::EndpointRefused { .. } => {
                FlowError::Connector(error.to_string())
            }
            _ => FlowError::Provider(error.to_string()),
        }
    }
}

/// What the host uses of a checked discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    /// Where it was read.
    pub(crate) url: String,
    /// `issuer`, exactly as the document writes it.
    pub(crate) issuer: String,
    /// `authorization_endpoint`.
    pub(crate) authorization_endpoint: Option<String>,
    /// `token_endpoint` (required).
    pub(crate) token_endpoint: String,
    /// `revocation_endpoint` (RFC 8414 §2, RFC 7009).
    pub(crate) revocation_endpoint: Option<String>,
    /// The one client authentication the document leads to, from
    /// `token_endpoint_auth_methods_supported` ([`pick_client_auth`]).
    pub(crate) client_auth: Option<ClientAuthLocation>,
    /// `code_challenge_methods_supported`, when listed and not empty.
    pub(crate) pkce_methods: Option<Vec<String>>,
}

impl Discovered {
    /// The endpoints the host calls or sends users to, with their field names.
    pub(crate) fn endpoints(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (
                "authorization_endpoint",
                self.authorization_endpoint.as_deref(),
            ),
            ("token_endpoint", Some(self.token_endpoint.as_str())),
            ("revocation_endpoint", self.revocation_endpoint.as_deref()),
        ]
        .into_iter()
        .filter_map(|(field, endpoint)| endpoint.map(|e| (field, e)))
    }

    /// Fills in the endpoints nothing else declared. The token endpoint: when
    /// `oauth-info` answered none (an empty `access-token-uri`) and no managed
    /// application set one. The authorize endpoint: when neither `oauth-info`,
    /// a managed application nor the manifest's `authUrl` names one.
    pub(crate) fn fill(&self, info: &mut OauthValues, manifest: &OAuthBlock) {
        if info.access_token_uri.is_empty() {
            info.access_token_uri = self.token_endpoint.clone();
        }
        if info.authorization_uri.is_none() && manifest.auth_url.is_empty() {
            info.authorization_uri = self.authorization_endpoint.clone();
        }
    }

    /// `Err` when the document lists PKCE methods without `S256`; a document
    /// that lists none says nothing, and the host sends S256.
    pub(crate) fn check_pkce(&self) -> Result<(), DiscoveryError> {
        match &self.pkce_methods {
            Some(methods) if !methods.iter().any(|m| m == "S256") => Err(DiscoveryError::NoS256 {
                url: self.url.clone(),
                methods: methods.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// `Err` unless the document's issuer is `declared` exactly (RFC 8414
    /// §3.3): the connector's or managed application's `issuer`.
    pub(crate) fn check_declared_issuer(&self, declared: &str) -> Result<(), DiscoveryError> {
        if self.issuer == declared {
            return Ok(());
        }
        Err(DiscoveryError::IssuerMismatch {
            url: self.url.clone(),
            found: self.issuer.clone(),
            expected: format!("the configured issuer `{declared}`"),
        })
    }
}

/// One client authentication method from what the server supports (RFC 6749
/// §2.3 allows one per request): HTTP Basic when listed, else the form when
/// `client_secret_post` is listed. `None` when the document lists neither
/// (or nothing): the host's default (Basic, RFC 8414's default too) applies.
pub(crate) fn pick_client_auth(methods: Option<&[String]>) -> Option<ClientAuthLocation> {
    let methods = methods?;
    let listed = |name: &str| methods.iter().any(|m| m == name);
    if listed("client_secret_basic") {
        Some(ClientAuthLocation::Header)
    } else if listed("client_secret_post") {
        Some(ClientAuthLocation::Body)
    } else {
        None
    }
}

/// Reads a document fetched from `url`, whose issuer must be `expected_issuer`
/// (the one the URL was formed from), allowing the terminating `/` both
/// specifications remove before forming the URL.
pub(crate) fn parse(
    url: &str,
    body: &[u8],
    expected_issuer: &str,
) -> Result<Discovered, DiscoveryError> {
    let object: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| DiscoveryError::Malformed {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let field_error = |field: &'static str, problem: String| DiscoveryError::Field {
        url: url.to_string(),
        field,
        problem,
    };
    let text = |field: &'static str| -> Result<Option<String>, DiscoveryError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(field_error(field, "is not a string".into())),
        }
    };
    let endpoint = |field: &'static str| -> Result<Option<String>, DiscoveryError> {
        let value = text(field)?;
        if let Some(value) = &value {
            let parsed = url::Url::parse(value).map_err(|e| {
                field_error(field, format!("`{value}` is not an absolute URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(field_error(
                    field,
                    format!("`{value}` is not an http(s) URL"),
                ));
            }
        }
        Ok(value)
    };
    let list = |field: &'static str| -> Result<Option<Vec<String>>, DiscoveryError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(|items| (!items.is_empty()).then_some(items))
                .ok_or_else(|| field_error(field, "is not a list of strings".into())),
            Some(_) => Err(field_error(field, "is not a list of strings".into())),
        }
    };

    let issuer = text("issuer")?.ok_or_else(|| field_error("issuer", "is missing".into()))?;
    check_issuer(&issuer).map_err(|problem| field_error("issuer", problem))?;
    if issuer.strip_suffix('/').unwrap_or(&issuer) != expected_issuer {
        return Err(DiscoveryError::IssuerMismatch {
            url: url.to_string(),
            found: issuer,
            expected: format!("`{expected_issuer}`, the issuer its URL was formed from"),
        });
    }
    let token_endpoint = endpoint("token_endpoint")?
        .ok_or_else(|| field_error("token_endpoint", "is missing".into()))?;
    let auth_methods = list("token_endpoint_auth_methods_supported")?;
    Ok(Discovered {
        url: url.to_string(),
        issuer,
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint,
        revocation_endpoint: endpoint("revocation_endpoint")?,
        client_auth: pick_client_auth(auth_methods.as_deref()),
        pkce_methods: list("code_challenge_methods_supported")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://sso.example.com/realms/acme/.well-known/openid-configuration";
    const ISSUER: &str = "https://sso.example.com/realms/acme";

    fn document() -> Value {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://sso.example.com/realms/acme/auth",
            "token_endpoint": "https://sso.example.com/realms/acme/token",
            "revocation_endpoint": "https://sso.example.com/realms/acme/revoke",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "jwks_uri": "https://sso.example.com/realms/acme/certs"
        })
    }

    fn read(document: &Value) -> Result<Discovered, DiscoveryError> {
        parse(URL, document.to_string().as_bytes(), ISSUER)
    }

    fn field_of(error: DiscoveryError) -> &'static str {
        match error {
            DiscoveryError::Field { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn a_document_gives_its_endpoints_issuer_and_one_client_auth_method() {
        let found = read(&document()).unwrap();
        assert_eq!(found.issuer, ISSUER);
        assert_eq!(
            found.token_endpoint,
            "https://sso.example.com/realms/acme/token"
        );
        assert_eq!(found.client_auth, Some(ClientAuthLocation::Body));
        assert!(found.check_pkce().is_ok());
        assert_eq!(found.endpoints().count(), 3);
        // The terminating `/` removed to form the URL is allowed back.
        let mut slashed = document();
        slashed["issuer"] = json!(format!("{ISSUER}/"));
        assert_eq!(read(&slashed).unwrap().issuer, format!("{ISSUER}/"));
    }

    #[test]
    fn basic_is_preferred_and_unknown_methods_leave_the_default() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_client_auth(Some(&list(&["client_secret_post", "client_secret_basic"]))),
            Some(ClientAuthLocation::Header)
        );
        assert_eq!(pick_client_auth(Some(&list(&["private_key_jwt"]))), None);
        assert_eq!(pick_client_auth(None), None);
    }

    #[test]
    fn an_issuer_other_than_the_urls_or_the_declared_one_is_refused() {
        for other in [
            "https://sso.example.com/realms/other",
            "https://sso.example.com",
            "https://SSO.example.com/realms/acme",
        ] {
            let mut doc = document();
            doc["issuer"] = json!(other);
            let error = read(&doc).unwrap_err();
            assert!(
                matches!(error, DiscoveryError::IssuerMismatch { .. }),
                "{other}: {error}"
            );
            assert!(error.to_string().contains(other), "{error}");
        }
        let found = read(&document()).unwrap();
        assert!(found.check_declared_issuer(ISSUER).is_ok());
        let error = found
            .check_declared_issuer("https://sso.example.com/realms/acme/")
            .unwrap_err();
        assert!(error.to_string().contains("configured issuer"), "{error}");
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        let without = |field: &str| {
            let mut doc = document();
            doc.as_object_mut().unwrap().remove(field);
            doc
        };
        assert_eq!(field_of(read(&without("issuer")).unwrap_err()), "issuer");
        assert_eq!(
            field_of(read(&without("token_endpoint")).unwrap_err()),
            "token_endpoint"
        );
        for (field, value) in [
            ("token_endpoint", json!("/token")),
            ("authorization_endpoint", json!(7)),
            ("revocation_endpoint", json!("ftp://sso.example.com/revoke")),
            (
                "token_endpoint_auth_methods_supported",
                json!("client_secret_basic"),
            ),
            ("code_challenge_methods_supported", json!([1, 2])),
            ("issuer", json!("https://sso.example.com/realms/acme?x=1")),
        ] {
            let mut doc = document();
            doc[field] = value;
            assert_eq!(field_of(read(&doc).unwrap_err()), field, "{field}");
        }
        for malformed in [&b"<html>"[..], b"[]", b"{\"issuer\": "] {
            let error = parse(URL, malformed, ISSUER).unwrap_err();
            assert!(matches!(error, DiscoveryError::Malformed { .. }), "{error}");
        }
    }

    #[test]
    fn pkce_without_s256_is_refused_and_silence_is_not() {
        let mut doc = document();
        doc["code_challenge_methods_supported"] = json!(["plain"]);
        let error = read(&doc).unwrap().check_pkce().unwrap_err();
        assert!(
            error
                .to_string()
                .contains("code_challenge_methods_supported"),
            "{error}"
        );
        for silent in [Value::Null, json!([])] {
            doc["code_challenge_methods_supported"] = silent;
            assert!(read(&doc).unwrap().check_pkce().is_ok());
        }
    }

    #[test]
    fn declared_values_win_over_discovered_ones() {
        let found = read(&document()).unwrap();
        let manifest: OAuthBlock = serde_json::from_value(json!({
            "authUrl": "https://crm.example.com/authorize", "clientId": "c",
            "redirectUri": "https://app.example.com/cb"
        }))
        .unwrap();
        let mut info = OauthValues {
            client_id: "c".into(),
            client_secret: connector_sandbox::wit::hooks::ClientSecretRef::None,
            access_token_uri: String::new(),
            redirect_uri: "https://app.example.com/cb".into(),
            authorization_uri: None,
            scopes: None,
            hostname: None,
            fail_message: None,
        };
        found.fill(&mut info, &manifest);
        assert_eq!(info.access_token_uri, found.token_endpoint);
        assert_eq!(info.authorization_uri, None, "the manifest's authUrl wins");
        let mut discovery_only = manifest.clone();
        discovery_only.auth_url.clear();
        info.access_token_uri = "https://crm.example.com/token".into();
        found.fill(&mut info, &discovery_only);
        assert_eq!(info.access_token_uri, "https://crm.example.com/token");
        assert_eq!(info.authorization_uri, found.authorization_endpoint);
    }
}
