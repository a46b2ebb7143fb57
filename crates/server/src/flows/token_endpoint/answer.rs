//! Reading a token or revocation endpoint's answer: the one error mapping
//! ([`check_status`], to [`TokenError`]) and the tokens of a success, from a
//! standard token response (RFC 6749 §5.1) or at the `refresh` hook's JSON
//! pointers.

use connector_sandbox::wit::hooks::RefreshOverride;
use oauth2::basic::BasicTokenType;
use oauth2::{ExtraTokenFields, StandardTokenResponse, TokenResponse};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Endpoint;
use crate::flows::FlowError;

/// An endpoint's answer: its status and (capped) body.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
}

/// The tokens of a token-endpoint answer.
pub(crate) struct TokenSet {
    /// The access token.
    pub(crate) access_token: SecretString,
    /// A (new) refresh token, if the answer has one.
    pub(crate) refresh_token: Option<SecretString>,
    /// Lifetime of the access token, in seconds.
    pub(crate) expires_in: Option<u64>,
    /// `token_type`, lower-case (standard answers only).
    pub(crate) token_type: Option<String>,
    /// `scope`, space-separated (standard answers only).
    pub(crate) scope: Option<String>,
    /// The answer's other fields (e.g. `instance_url`), never a token.
    pub(crate) fields: serde_json::Map<String, Value>,
}

/// JSON pointers of the token-answer fields (RFC 6749 names unless the
/// `refresh` hook moves them).
pub(crate) struct ResponsePaths {
    access_token: String,
    refresh_token: String,
    expires_in: String,
}

impl ResponsePaths {
    /// The paths an override sets, RFC 6749's for the others.
    pub(crate) fn from_override(overrides: Option<&RefreshOverride>) -> Self {
        let pick = |value: Option<&String>, default: &str| {
            value.cloned().unwrap_or_else(|| default.to_string())
        };
        Self {
            access_token: pick(
                overrides.and_then(|o| o.access_token_path.as_ref()),
                "/access_token",
            ),
            refresh_token: pick(
                overrides.and_then(|o| o.refresh_token_path.as_ref()),
                "/refresh_token",
            ),
            expires_in: pick(
                overrides.and_then(|o| o.expires_in_path.as_ref()),
                "/expires_in",
            ),
        }
    }

    /// RFC 6749's names: the answer is read as a standard token response.
    pub(super) fn is_standard(&self) -> bool {
        self.access_token == "/access_token"
            && self.refresh_token == "/refresh_token"
            && self.expires_in == "/expires_in"
    }
}

/// Why a request to a token or revocation endpoint failed. Messages hold no
/// token, secret or URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The endpoint answered `invalid_grant`: the code or refresh token is
    /// expired, revoked or spent. Holds `: description` (or nothing).
    #[error("invalid_grant{0}")]
    InvalidGrant(String),
    /// The endpoint answered another OAuth error (RFC 6749 §5.2).
    #[error("{code}{description}")]
    Refused {
        /// The `error` code.
        code: String,
        /// `: error_description`, or nothing.
        description: String,
    },
    /// No usable answer: unreachable, too slow, a server error, an answer too
    /// large or not a token response.
    #[error("{0}")]
    Failed(String),
}

impl From<TokenError> for FlowError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::InvalidGrant(_) | TokenError::Refused { .. } => {
                FlowError::TokenExchange(error.to_string())
            }
            TokenError::Failed(message) => FlowError::Provider(message),
        }
    }
}

/// The one error mapping: a success passes; a server error or an answer that
/// is no OAuth error is a failure; an OAuth error is `invalid_grant` or
/// another refusal.
pub(super) fn check_status(answer: &Answer, endpoint: Endpoint) -> Result<(), TokenError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    let error: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let code = error.as_ref().and_then(|e| e["error"].as_str());
    match code {
        Some(code) if !status.is_server_error() => {
            let description = error
                .as_ref()
                .and_then(|e| e["error_description"].as_str())
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            Err(if code == "invalid_grant" {
                TokenError::InvalidGrant(description)
            } else {
                TokenError::Refused {
                    code: code.to_string(),
                    description,
                }
            })
        }
        _ => Err(TokenError::Failed(format!(
            "the {} answered {status}",
            endpoint.name()
        ))),
    }
}

/// The tokens of an answer: a standard token response (RFC 6749 §5.1), or
/// read at the `refresh` hook's JSON pointers.
pub(super) fn read_tokens(
    answer: &Answer,
    endpoint: Endpoint,
    paths: Option<&ResponsePaths>,
) -> Result<TokenSet, TokenError> {
    check_status(answer, endpoint)?;
    match paths {
        None => standard_tokens(&answer.body, endpoint),
        Some(paths) => {
            let body: Value = serde_json::from_slice(&answer.body).map_err(|_| {
                TokenError::Failed(format!(
                    "the {} answered {} with something that is not JSON",
                    endpoint.name(),
                    answer.status
                ))
            })?;
            tokens_at(&body, paths)
        }
    }
}

/// Token-response fields other than the standard ones (e.g. `instance_url`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExtraFields {
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
}

impl ExtraTokenFields for ExtraFields {}

/// A standard token response, parsed as the `oauth2` crate types it.
fn standard_tokens(body: &[u8], endpoint: Endpoint) -> Result<TokenSet, TokenError> {
    let tokens: StandardTokenResponse<ExtraFields, BasicTokenType> = serde_json::from_slice(body)
        .map_err(|_| {
        TokenError::Failed(format!(
            "the {} answered something that is not a token response",
            endpoint.name()
        ))
    })?;
    let mut fields = tokens.extra_fields().fields.clone();
    for secret_field in ["access_token", "refresh_token", "id_token"] {
        fields.remove(secret_field);
    }
    Ok(TokenSet {
        access_token: SecretString::from(tokens.access_token().secret().clone()),
        refresh_token: tokens
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone())),
        expires_in: tokens.expires_in().map(|d| d.as_secs()),
        token_type: Some(format!("{:?}", tokens.token_type()).to_lowercase()),
        scope: tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
        fields,
    })
}

/// The tokens at the hook's JSON pointers (an expiry may be a number or a
/// numeric string).
fn tokens_at(body: &Value, paths: &ResponsePaths) -> Result<TokenSet, TokenError> {
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let access_token = text(&paths.access_token).ok_or_else(|| {
        TokenError::Failed(format!(
            "the token response has no access token at `{}`",
            paths.access_token
        ))
    })?;
    // A refresh hook names where the tokens are; it must not make the host
    // keep the refresh token (or the ID token) as the access token, which the
    // connector could then have injected anywhere it may send requests.
    let never_the_access_token = [paths.refresh_token.as_str(), "/refresh_token", "/id_token"];
    if never_the_access_token
        .iter()
        .filter_map(|pointer| text(pointer))
        .any(|other| other == access_token)
    {
        return Err(TokenError::Failed(format!(
            "the refresh hook's access-token path `{}` names the refresh or ID token; refused",
            paths.access_token
        )));
    }
    let expires_in = body.pointer(&paths.expires_in).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    Ok(TokenSet {
        access_token: SecretString::from(access_token),
        refresh_token: text(&paths.refresh_token).map(SecretString::from),
        expires_in,
        token_type: None,
        scope: None,
        fields: serde_json::Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_are_mapped_once() {
        let grant = check_status(
            &answer(
                400,
                r#"{"error":"invalid_grant","error_description":"spent"}"#,
            ),
            Endpoint::Refresh,
        );
        assert!(matches!(grant, Err(TokenError::InvalidGrant(d)) if d == ": spent"));
        let refused = check_status(
            &answer(401, r#"{"error":"invalid_client"}"#),
            Endpoint::Refresh,
        );
        assert_eq!(refused.unwrap_err().to_string(), "invalid_client");
        let server = check_status(
            &answer(503, r#"{"error":"temporarily_unavailable"}"#),
            Endpoint::Refresh,
        );
        assert!(matches!(server, Err(TokenError::Failed(m)) if m.contains("503")));
        let html = check_status(&answer(400, "<html>"), Endpoint::Revocation);
        assert!(
            matches!(html, Err(TokenError::Failed(m)) if m.starts_with("the revocation endpoint answered 400"))
        );
        assert!(check_status(&answer(200, ""), Endpoint::Revocation).is_ok());
    }

    #[test]
    fn a_refresh_hook_cannot_make_the_refresh_token_the_access_token() {
        let body = r#"{"access_token":"a","refresh_token":"r","id_token":"i","data":{"token":"a2","refresh":"r2"}}"#;
        let paths = |access: &str, refresh: &str| ResponsePaths {
            access_token: access.into(),
            refresh_token: refresh.into(),
            expires_in: "/expires_in".into(),
        };
        for (access, refresh) in [
            ("/refresh_token", "/refresh_token"),
            ("/data/refresh", "/data/refresh"),
            ("/refresh_token", "/data/refresh"),
            ("/id_token", "/refresh_token"),
        ] {
            let read = read_tokens(
                &answer(200, body),
                Endpoint::Refresh,
                Some(&paths(access, refresh)),
            );
            assert!(
                matches!(&read, Err(TokenError::Failed(m)) if m.contains("names the refresh or ID token")),
                "{access}: {:?}",
                read.map(|t| t.access_token.expose_secret().to_string())
            );
        }
        let fine = read_tokens(
            &answer(200, body),
            Endpoint::Refresh,
            Some(&paths("/data/token", "/data/refresh")),
        )
        .unwrap();
        assert_eq!(fine.access_token.expose_secret(), "a2");
    }

    #[test]
    fn tokens_are_read_from_standard_answers_and_pointers() {
        let standard = read_tokens(
            &answer(
                200,
                r#"{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r","id_token":"i","instance_url":"u"}"#,
            ),
            Endpoint::CodeExchange,
            None,
        )
        .unwrap();
        assert_eq!(standard.access_token.expose_secret(), "a");
        assert_eq!(standard.expires_in, Some(60));
        assert_eq!(standard.token_type.as_deref(), Some("bearer"));
        assert_eq!(standard.fields.keys().collect::<Vec<_>>(), ["instance_url"]);
        let not_tokens = read_tokens(&answer(200, r#"{"ok":true}"#), Endpoint::Refresh, None);
        assert!(
            matches!(not_tokens, Err(TokenError::Failed(m)) if m.contains("not a token response"))
        );

        let nested = RefreshOverride {
            token_url: None,
            extra_params: Vec::new(),
            client_auth_location: None,
            access_token_path: Some("/data/token".into()),
            refresh_token_path: Some("/data/refresh".into()),
            expires_in_path: Some("/data/ttl".into()),
        };
        let paths = ResponsePaths::from_override(Some(&nested));
        let tokens = read_tokens(
            &answer(200, r#"{"data":{"token":"a","refresh":"r","ttl":"30"}}"#),
            Endpoint::Refresh,
            Some(&paths),
        )
        .unwrap();
        assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "r");
        assert_eq!(tokens.expires_in, Some(30));
    }
}
