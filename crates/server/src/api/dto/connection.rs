//! Bodies of the routes acting on a connection: logout, validation, the
//! proxy and raw credentials.

use base64::Engine as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::flows::{self, FlowError};
use crate::store::Connection;

/// The outcome of a logout.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResult {
    /// The connection, now revoked, without credentials.
    pub connection: Connection,
    /// The connector's message, if any.
    pub message: Option<String>,
    /// The provider confirmed the RFC 7009 revocation.
    pub revoked_at_provider: bool,
    /// Problems during provider-side cleanup (our copy is cleared regardless).
    pub warnings: Vec<String>,
}

impl From<flows::LogoutResult> for LogoutResult {
    fn from(result: flows::LogoutResult) -> Self {
        Self {
            connection: result.connection,
            message: result.message,
            revoked_at_provider: result.revoked_at_provider,
            warnings: result.warnings,
        }
    }
}

/// The outcome of `auth-validation`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    /// The connection works.
    pub successful: bool,
    /// The status the CRM answered with.
    pub status: Option<u16>,
    /// Why not.
    pub fail_reason: Option<String>,
    /// The connection after validation (marked as needing re-auth on a 401).
    pub connection: Connection,
}

impl From<flows::ValidationResult> for ValidationResult {
    fn from(result: flows::ValidationResult) -> Self {
        Self {
            successful: result.successful,
            status: result.status,
            fail_reason: result.fail_reason,
            connection: result.connection,
        }
    }
}

/// A request for the provider, sent through a connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyRequest {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS` (any case).
    #[schema(
        pattern = "^(?:[Gg][Ee][Tt]|[Hh][Ee][Aa][Dd]|[Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh]|[Dd][Ee][Ll][Ee][Tt][Ee]|[Oo][Pp][Tt][Ii][Oo][Nn][Ss])$"
    )]
    pub method: String,
    /// Absolute URL; its origin must be in the connector's allowed hosts.
    pub url: String,
    /// Request headers (credential headers are refused: the host injects the
    /// connection's credential).
    #[serde(default)]
    #[schema(schema_with = header_pairs)]
    pub headers: Vec<(String, String)>,
    /// A UTF-8 body.
    #[serde(default)]
    pub body: Option<String>,
    /// A binary body, base64 (instead of `body`).
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// `headers` as sent: an array of `[name, value]` pairs.
fn header_pairs() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let pair = ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .min_items(Some(2))
        .max_items(Some(2));
    ArrayBuilder::new()
        .items(pair)
        .description(Some("`[name, value]` pairs"))
        .build()
}

impl TryFrom<ProxyRequest> for flows::ProxyRequest {
    type Error = FlowError;

    /// The body as bytes: `body` as UTF-8 or `bodyBase64` decoded, not both.
    fn try_from(request: ProxyRequest) -> Result<Self, FlowError> {
        let body = match (request.body, request.body_base64) {
            (Some(_), Some(_)) => {
                return Err(FlowError::field_error(
                    "bodyBase64",
                    "give `body` or `bodyBase64`, not both",
                ));
            }
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(encoded)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| {
                        FlowError::field_error("bodyBase64", format!("not base64: {e}"))
                    })?,
            ),
            (None, None) => None,
        };
        Ok(Self {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body,
        })
    }
}

/// The provider's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyResponse {
    /// The provider's status.
    pub status: u16,
    /// The provider's headers (without `set-cookie`).
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    /// The body when it is UTF-8.
    pub body: Option<String>,
    /// The body, base64, when it is not UTF-8.
    pub body_base64: Option<String>,
}

impl From<flows::ProxyResponse> for ProxyResponse {
    fn from(response: flows::ProxyResponse) -> Self {
        let (body, body_base64) = match String::from_utf8(response.body) {
            Ok(text) => (Some(text), None),
            Err(bytes) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes.into_bytes())),
            ),
        };
        Self {
            status: response.status,
            headers: response.headers,
            body,
            body_base64,
        }
    }
}

/// A connection's raw access token (trusted services only).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCredentials {
    /// `Bearer`.
    pub token_type: &'static str,
    /// The access token.
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    /// Its expiry, Unix seconds.
    pub expires_at: Option<i64>,
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    s.serialize_str(secret.expose_secret())
}

impl std::fmt::Debug for RawCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCredentials")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<flows::RawCredentials> for RawCredentials {
    fn from(raw: flows::RawCredentials) -> Self {
        Self {
            token_type: raw.token_type,
            access_token: raw.access_token,
            expires_at: raw.expires_at,
        }
    }
}
