//! Credentials the host injects into a guest's request. The guest only names
//! one ([`Credential`]); the value is looked up here, on the host, after the
//! destination passed the policy, and attached to that request only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use connector_abi::manifest::SECRET_FIELD_REF_PREFIX;

use super::policy::ConnectorPolicy;
use crate::generated::connector::auth::http::{Credential, HttpError};

/// How the API key is placed (the result of the connector's `basic-auth` hook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyPlacement {
    /// HTTP Basic from a template such as `{apiKey}:` or `{apiKey}:{tenantId}`.
    Basic(String),
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key in this header.
    Header(String),
    /// The key in this query parameter.
    Query(String),
}

/// A connection's API key with its placement, the non-secret form fields
/// usable in a Basic template, and the secret form fields (manifest
/// `secret: true`), which the guest can only name.
#[derive(Debug, Clone)]
pub struct ApiKeyCredential {
    /// The key.
    pub key: SecretString,
    /// Where it goes.
    pub placement: ApiKeyPlacement,
    /// Other form fields (`{tenantId}` in templates).
    pub fields: BTreeMap<String, String>,
    /// Secret form fields by `const`: `{apiSecret}` in a Basic template, or
    /// `credential::host-secret` with `secret: "field:apiSecret"`. Each is
    /// scrubbed from responses like the key.
    pub secret_fields: BTreeMap<String, SecretString>,
}

/// An OAuth client id and secret.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// Public client id.
    pub client_id: String,
    /// The secret.
    pub client_secret: SecretString,
}

/// The secrets available to one hook call. `Debug` never shows values.
#[derive(Debug, Clone, Default)]
pub struct CallCredentials {
    /// The connection's OAuth access token.
    pub access_token: Option<SecretString>,
    /// The connection's API key.
    pub api_key: Option<ApiKeyCredential>,
    /// The connector's OAuth client credentials.
    pub client: Option<ClientCredentials>,
    /// How to renew `access_token` when a provider refuses it with 401 in
    /// the middle of a hook (none: the guest gets the 401).
    pub renewal: Option<super::Renewal>,
}

/// What a host secret may be used for: the operator grants each secret to
/// connector ids *and* purposes (`[secrets] <name> purposes`), so a secret
/// meant for the host's own OAuth requests cannot be placed by the connector
/// into an arbitrary header of an arbitrary request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretPurpose {
    /// The OAuth client secret the host itself sends to the connector's token
    /// endpoint (code exchange, refresh) and revocation endpoint, when the
    /// connector's `oauth-info` names it (`client-secret-ref::host-secret`).
    /// The default, and the only purpose unless the operator grants more.
    ClientSecret,
    /// Placed by the host into a header of one of the connector's own requests
    /// (`http` `credential::host-secret`), to any origin the connector may reach.
    RequestHeader,
}

impl SecretPurpose {
    /// The purposes of a grant that names none: [`SecretPurpose::ClientSecret`].
    pub const DEFAULT: &'static [SecretPurpose] = &[SecretPurpose::ClientSecret];

    /// The name used in the config file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretPurpose::ClientSecret => "client-secret",
            SecretPurpose::RequestHeader => "request-header",
        }
    }
}

impl std::fmt::Display for SecretPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret the operator configured, the connectors it is granted to, and
/// what they may use it for.
#[derive(Debug, Clone)]
pub struct HostSecret {
    /// The value.
    pub value: SecretString,
    /// Connector ids that may use it.
    pub connectors: BTreeSet<String>,
    /// What those connectors may use it for ([`SecretPurpose::DEFAULT`] unless
    /// the operator says more).
    pub purposes: BTreeSet<SecretPurpose>,
}

impl HostSecret {
    /// `value`, granted to `connectors` for the default purpose only (the
    /// OAuth client secret the host sends itself).
    pub fn new(value: SecretString, connectors: impl IntoIterator<Item = String>) -> Self {
        Self {
            value,
            connectors: connectors.into_iter().collect(),
            purposes: SecretPurpose::DEFAULT.iter().copied().collect(),
        }
    }

    /// The same secret granted for exactly `purposes`.
    pub fn for_purposes(mut self, purposes: impl IntoIterator<Item = SecretPurpose>) -> Self {
        self.purposes = purposes.into_iter().collect();
        self
    }
}

/// Host secrets by name, from the operator's configuration.
pub type HostSecrets = Arc<BTreeMap<String, HostSecret>>;

/// Where an injected value goes.
pub(crate) enum Injection {
    /// A header (marked sensitive: never logged, never HPACK-indexed).
    Header(HeaderName, HeaderValue),
    /// A query parameter.
    Query(String, SecretString),
}

/// An injection and the secret values it carries (the secret itself, and a
/// composite such as a Basic `user:secret`), which the response is scrubbed of.
pub(crate) struct Injected {
    /// Where the value goes.
    pub(crate) place: Injection,
    /// What must never come back to the guest.
    pub(crate) secrets: Vec<SecretString>,
}

impl Injected {
    fn new(place: Injection, secrets: Vec<SecretString>) -> Self {
        Self { place, secrets }
    }

    /// Puts the value into `headers` or `url`'s query; returns the scrubber
    /// of the secrets it carries (for the response).
    pub(crate) fn attach(
        self,
        headers: &mut reqwest::header::HeaderMap,
        url: &mut url::Url,
    ) -> Option<connector_scrub::Scrubber> {
        let scrubber = connector_scrub::Scrubber::new(
            self.secrets
                .iter()
                .map(|secret| secret.expose_secret().as_bytes()),
        );
        match self.place {
            Injection::Header(name, value) => {
                headers.insert(name, value);
            }
            Injection::Query(name, value) => {
                url.query_pairs_mut()
                    .append_pair(&name, value.expose_secret());
            }
        }
        scrubber
    }
}

/// The audit name of a credential kind (never a value).
pub(crate) fn kind(credential: &Credential) -> String {
    match credential {
        Credential::AccessToken => "access-token".into(),
        Credential::ApiKey => "api-key".into(),
        Credential::ClientCredentials => "client-credentials".into(),
        Credential::HostSecret(s) => match s.secret.strip_prefix(SECRET_FIELD_REF_PREFIX) {
            Some(field) => format!("secret-field:{field}"),
            None => format!("host-secret:{}", s.secret),
        },
    }
}

fn unavailable(what: &str) -> HttpError {
    HttpError::CredentialUnavailable(what.to_string())
}

fn sensitive(value: String) -> Result<HeaderValue, HttpError> {
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        unavailable("the credential cannot be sent in a header (invalid characters)")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn basic(user_and_password: &str) -> Result<HeaderValue, HttpError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_and_password);
    sensitive(format!("Basic {encoded}"))
}

/// A header a credential may go into: valid, and not one the host controls
/// (`host`, `content-length`, `transfer-encoding`, …).
fn injectable_header(name: &str) -> Result<HeaderName, HttpError> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| unavailable(&format!("`{name}` is not a valid header name")))?;
    if super::policy::HOST_CONTROLLED_HEADERS.contains(&header.as_str()) {
        return Err(HttpError::CredentialHeader(header.as_str().to_string()));
    }
    Ok(header)
}

/// The value of host secret `name` for `purpose`, if the connector's manifest
/// declares it and the operator granted it to `connector_id` for that purpose;
/// otherwise why not (never the value).
pub(crate) fn granted_secret<'a>(
    host_secrets: &'a HostSecrets,
    declared_secrets: &BTreeSet<String>,
    connector_id: &str,
    name: &str,
    purpose: SecretPurpose,
) -> Result<&'a SecretString, String> {
    if !declared_secrets.contains(name) {
        return Err(format!(
            "secret `{name}` is not listed in the manifest's `secrets`"
        ));
    }
    let secret = host_secrets
        .get(name)
        .filter(|secret| secret.connectors.contains(connector_id))
        .ok_or_else(|| {
            format!("secret `{name}` is not configured for this connector on this host")
        })?;
    if !secret.purposes.contains(&purpose) {
        let granted: Vec<String> = secret.purposes.iter().map(|p| format!("`{p}`")).collect();
        let granted = match granted.is_empty() {
            true => "no purpose".to_string(),
            false => format!("{} only", granted.join(", ")),
        };
        return Err(format!(
            "secret `{name}` is granted to this connector for {granted}, not for `{purpose}` \
             (operator setting [secrets] {name} purposes)"
        ));
    }
    Ok(&secret.value)
}

/// A secret form field of the connection's API-key form in a header:
/// `credential::host-secret` with `secret: "field:<const>"`.
fn secret_field_injection(
    spec: &crate::generated::connector::auth::http::SecretHeader,
    credentials: &CallCredentials,
) -> Result<Injected, HttpError> {
    let field = &spec.secret[SECRET_FIELD_REF_PREFIX.len()..];
    let value = credentials
        .api_key
        .as_ref()
        .and_then(|api_key| api_key.secret_fields.get(field))
        .ok_or_else(|| {
            unavailable(&format!(
                "secret field `{field}` is not a secret field of this connection's API-key form, \
                 or has no value"
            ))
        })?;
    secret_header(spec, value)
}

/// `value` in the header `spec` names, after its prefix: sensitive, and
/// recorded for scrubbing.
fn secret_header(
    spec: &crate::generated::connector::auth::http::SecretHeader,
    value: &SecretString,
) -> Result<Injected, HttpError> {
    let name = injectable_header(&spec.header)?;
    let prefix = spec.prefix.as_deref().unwrap_or("");
    Ok(Injected::new(
        Injection::Header(
            name,
            sensitive(format!("{prefix}{}", value.expose_secret()))?,
        ),
        vec![value.clone()],
    ))
}

/// Resolves the named credential to what must be attached.
pub(crate) fn injection(
    credential: &Credential,
    credentials: &CallCredentials,
    host_secrets: &HostSecrets,
    policy: &ConnectorPolicy,
    connector_id: &str,
) -> Result<Injected, HttpError> {
    let authorization = reqwest::header::AUTHORIZATION;
    match credential {
        Credential::AccessToken => {
            let token = credentials
                .access_token
                .as_ref()
                .ok_or_else(|| unavailable("this call has no access token"))?;
            Ok(Injected::new(
                Injection::Header(
                    authorization,
                    sensitive(format!("Bearer {}", token.expose_secret()))?,
                ),
                vec![token.clone()],
            ))
        }
        Credential::ApiKey => {
            let api_key = credentials
                .api_key
                .as_ref()
                .ok_or_else(|| unavailable("this call has no API key"))?;
            let key = api_key.key.expose_secret();
            let secrets = vec![api_key.key.clone()];
            let place = match &api_key.placement {
                ApiKeyPlacement::Bearer => {
                    Injection::Header(authorization, sensitive(format!("Bearer {key}"))?)
                }
                ApiKeyPlacement::Basic(template) => {
                    let mut filled = template.replace("{apiKey}", key);
                    let mut secrets = secrets;
                    for (name, value) in &api_key.secret_fields {
                        let placeholder = format!("{{{name}}}");
                        if filled.contains(&placeholder) {
                            filled = filled.replace(&placeholder, value.expose_secret());
                            secrets.push(value.clone());
                        }
                    }
                    for (name, value) in &api_key.fields {
                        filled = filled.replace(&format!("{{{name}}}"), value);
                    }
                    let header = basic(&filled)?;
                    secrets.push(SecretString::from(filled));
                    return Ok(Injected::new(
                        Injection::Header(authorization, header),
                        secrets,
                    ));
                }
                ApiKeyPlacement::Header(name) => {
                    Injection::Header(injectable_header(name)?, sensitive(key.to_string())?)
                }
                ApiKeyPlacement::Query(_) if !policy.allow_query_credential => {
                    return Err(unavailable(
                        "the API key goes into the query string, which this host does not allow \
                         for this connector (operator setting [connectors.<id>] \
                         allow_query_credential = true)",
                    ));
                }
                ApiKeyPlacement::Query(name) => Injection::Query(name.clone(), api_key.key.clone()),
            };
            Ok(Injected::new(place, secrets))
        }
        Credential::ClientCredentials => {
            let client = credentials
                .client
                .as_ref()
                .ok_or_else(|| unavailable("this call has no client credentials"))?;
            let pair = format!(
                "{}:{}",
                client.client_id,
                client.client_secret.expose_secret()
            );
            let header = basic(&pair)?;
            Ok(Injected::new(
                Injection::Header(authorization, header),
                vec![client.client_secret.clone(), SecretString::from(pair)],
            ))
        }
        Credential::HostSecret(spec) if spec.secret.starts_with(SECRET_FIELD_REF_PREFIX) => {
            secret_field_injection(spec, credentials)
        }
        Credential::HostSecret(spec) => {
            let value = granted_secret(
                host_secrets,
                &policy.declared_secrets,
                connector_id,
                &spec.secret,
                SecretPurpose::RequestHeader,
            )
            .map_err(|reason| unavailable(&reason))?;
            secret_header(spec, value)
        }
    }
}

#[cfg(test)]
mod secret_field_tests {
    use super::*;
    use crate::generated::connector::auth::http::SecretHeader;

    fn credentials(placement: ApiKeyPlacement) -> CallCredentials {
        CallCredentials {
            api_key: Some(ApiKeyCredential {
                key: SecretString::from("the-key"),
                placement,
                fields: BTreeMap::from([("tenantId".to_string(), "acme".to_string())]),
                secret_fields: BTreeMap::from([(
                    "apiSecret".to_string(),
                    SecretString::from("the-secret"),
                )]),
            }),
            ..Default::default()
        }
    }

    fn field_ref(field: &str) -> Credential {
        Credential::HostSecret(SecretHeader {
            secret: format!("{SECRET_FIELD_REF_PREFIX}{field}"),
            header: "x-api-secret".into(),
            prefix: Some("Secret ".into()),
        })
    }

    fn resolve(
        credential: &Credential,
        credentials: &CallCredentials,
    ) -> Result<Injected, HttpError> {
        injection(
            credential,
            credentials,
            &HostSecrets::default(),
            &ConnectorPolicy::default(),
            "c",
        )
    }

    fn secrets(injected: &Injected) -> Vec<String> {
        injected
            .secrets
            .iter()
            .map(|s| s.expose_secret().to_string())
            .collect()
    }

    #[test]
    fn a_secret_field_is_injected_by_reference_and_scrubbed() {
        let credentials = credentials(ApiKeyPlacement::Bearer);
        let injected = resolve(&field_ref("apiSecret"), &credentials).unwrap();
        let Injection::Header(name, value) = &injected.place else {
            panic!("a header")
        };
        assert_eq!(name.as_str(), "x-api-secret");
        assert_eq!(value.to_str().unwrap(), "Secret the-secret");
        assert!(value.is_sensitive());
        assert_eq!(secrets(&injected), ["the-secret"]);
        assert_eq!(kind(&field_ref("apiSecret")), "secret-field:apiSecret");
        // A plain field, an unknown one, or a call without an API key: refused.
        for (field, credentials) in [
            ("tenantId", credentials.clone()),
            ("nope", credentials.clone()),
            ("apiSecret", CallCredentials::default()),
        ] {
            assert!(matches!(
                resolve(&field_ref(field), &credentials),
                Err(HttpError::CredentialUnavailable(_))
            ));
        }
    }

    #[test]
    fn a_basic_template_fills_secret_fields_and_scrubs_them() {
        let template = ApiKeyPlacement::Basic("{apiKey}:{apiSecret}@{tenantId}".into());
        let injected = resolve(&Credential::ApiKey, &credentials(template)).unwrap();
        let Injection::Header(_, value) = &injected.place else {
            panic!("a header")
        };
        let expected = base64::engine::general_purpose::STANDARD.encode("the-key:the-secret@acme");
        assert_eq!(value.to_str().unwrap(), format!("Basic {expected}"));
        assert_eq!(
            secrets(&injected),
            ["the-key", "the-secret", "the-key:the-secret@acme"]
        );
        // A template without it does not carry (or scrub) it.
        let injected = resolve(
            &Credential::ApiKey,
            &credentials(ApiKeyPlacement::Basic("{apiKey}:".into())),
        )
        .unwrap();
        assert_eq!(secrets(&injected), ["the-key", "the-key:"]);
    }

    #[test]
    fn the_query_string_needs_the_operator_opt_in() {
        let credentials = credentials(ApiKeyPlacement::Query("api_key".into()));
        let refused = resolve(&Credential::ApiKey, &credentials);
        let Err(HttpError::CredentialUnavailable(reason)) = refused else {
            panic!("refused without the opt-in")
        };
        assert!(reason.contains("allow_query_credential"), "{reason}");
        let opted_in = ConnectorPolicy {
            allow_query_credential: true,
            ..ConnectorPolicy::default()
        };
        let injected = injection(
            &Credential::ApiKey,
            &credentials,
            &HostSecrets::default(),
            &opted_in,
            "c",
        )
        .unwrap();
        let Injection::Query(name, value) = &injected.place else {
            panic!("a query parameter")
        };
        assert_eq!(
            (name.as_str(), value.expose_secret()),
            ("api_key", "the-key")
        );
    }
}
