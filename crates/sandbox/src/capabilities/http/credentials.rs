//! Credentials the host injects into a guest's request. The guest only names
//! one ([`Credential`]); the value is looked up here, on the host, after the
//! destination passed the policy, and attached to that request only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

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

/// A connection's API key with its placement and the non-secret form fields
/// usable in a Basic template.
#[derive(Debug, Clone)]
pub struct ApiKeyCredential {
    /// The key.
    pub key: SecretString,
    /// Where it goes.
    pub placement: ApiKeyPlacement,
    /// Other form fields (`{tenantId}` in templates).
    pub fields: BTreeMap<String, String>,
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
}

/// A secret the operator configured, and the connectors it is granted to.
#[derive(Debug, Clone)]
pub struct HostSecret {
    /// The value.
    pub value: SecretString,
    /// Connector ids that may have it injected.
    pub connectors: BTreeSet<String>,
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
}

/// The audit name of a credential kind (never a value).
pub(crate) fn kind(credential: &Credential) -> String {
    match credential {
        Credential::AccessToken => "access-token".into(),
        Credential::ApiKey => "api-key".into(),
        Credential::ClientCredentials => "client-credentials".into(),
        Credential::HostSecret(s) => format!("host-secret:{}", s.secret),
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

/// Resolves the named credential to what must be attached.
pub(crate) fn injection(
    credential: &Credential,
    credentials: &CallCredentials,
    host_secrets: &HostSecrets,
    declared_secrets: &BTreeSet<String>,
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
                    for (name, value) in &api_key.fields {
                        filled = filled.replace(&format!("{{{name}}}"), value);
                    }
                    let header = basic(&filled)?;
                    let mut secrets = secrets;
                    secrets.push(SecretString::from(filled));
                    return Ok(Injected::new(
                        Injection::Header(authorization, header),
                        secrets,
                    ));
                }
                ApiKeyPlacement::Header(name) => {
                    Injection::Header(injectable_header(name)?, sensitive(key.to_string())?)
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
        Credential::HostSecret(spec) => {
            if !declared_secrets.contains(&spec.secret) {
                return Err(unavailable(&format!(
                    "secret `{}` is not listed in the manifest's `secrets`",
                    spec.secret
                )));
            }
            let secret = host_secrets
                .get(&spec.secret)
                .filter(|secret| secret.connectors.contains(connector_id))
                .ok_or_else(|| {
                    unavailable(&format!(
                        "secret `{}` is not configured for this connector on this host",
                        spec.secret
                    ))
                })?;
            let value = &secret.value;
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
    }
}
