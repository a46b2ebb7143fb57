//! Connect sessions, the steps around them: a platform's backend creates one
//! for one user of one account and one connector ([`Console::create_session`]);
//! the browser opens the link once and gets a cookie in exchange
//! ([`Console::redeem`]); the pages then find the session by that cookie, and
//! every form carries a CSRF token derived from it ([`csrf_token`]).

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Console;
use crate::store::{ConnectSessionError, NewConnectSession};

/// The path of the page a connect link opens (`?session=<token>`).
pub const CONNECT_PATH: &str = "/connect";
/// The path of the host's OAuth callback page.
pub const CALLBACK_PATH: &str = "/connect/oauth/callback";

/// What the platform asks for.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// The connector to log in to.
    pub connector_id: String,
    /// The platform's page to return to after a login.
    pub return_url: Option<String>,
}

/// A created session: the link to hand to the user's browser.
#[derive(Debug, Clone)]
pub struct ConnectLink {
    /// The single-use token (also in `url`).
    pub token: String,
    /// The page to open.
    pub url: String,
    /// Unix seconds after which the link and the session are refused.
    pub expires_at: i64,
}

/// Why a connect session cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A field of the request is not acceptable.
    #[error("{field}: {message}")]
    Field {
        /// The request field (`returnUrl`, `accountId`, …).
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// Storage failure.
    #[error("storage error: {0}")]
    Storage(#[from] sqlx::Error),
}

impl Console {
    /// Creates a connect session for `request` on behalf of the API key
    /// `key_id`; the link's base is [`Console::base_url`].
    pub async fn create_session(
        &self,
        request: ConnectRequest,
        key_id: &str,
        base_url: &str,
    ) -> Result<ConnectLink, CreateError> {
        check_request(&request)?;
        let token = random_secret();
        let expires_at = self
            .connect_sessions
            .create(
                &token,
                &NewConnectSession {
                    account_id: request.account_id,
                    user_id: request.user_id,
                    connector_id: request.connector_id,
                    return_url: request.return_url,
                    created_by: key_id.to_string(),
                    lifetime_secs: self.settings.connect_session_secs as i64,
                },
            )
            .await?;
        Ok(ConnectLink {
            url: format!("{base_url}{CONNECT_PATH}?session={token}"),
            token,
            expires_at,
        })
    }

    /// Redeems a connect link's `token` once; returns the secret of the
    /// cookie the browser keeps for the session.
    pub async fn redeem(&self, token: &str) -> Result<String, ConnectSessionError> {
        let browser = random_secret();
        self.connect_sessions.redeem(token, &browser).await?;
        Ok(browser)
    }
}

/// The checks of a request: ids present and of sane length, the return URL
/// an absolute `http(s)` URL.
fn check_request(request: &ConnectRequest) -> Result<(), CreateError> {
    for (field, value) in [
        ("accountId", &request.account_id),
        ("userId", &request.user_id),
        ("connectorId", &request.connector_id),
    ] {
        if value.trim().is_empty() || value.len() > 256 {
            return Err(CreateError::Field {
                field,
                message: "must be between 1 and 256 characters".into(),
            });
        }
    }
    if let Some(url) = &request.return_url {
        let parsed = url::Url::parse(url).map_err(|e| CreateError::Field {
            field: "returnUrl",
            message: format!("not an absolute URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2048 {
            return Err(CreateError::Field {
                field: "returnUrl",
                message: "must be an http or https URL of at most 2048 characters".into(),
            });
        }
    }
    Ok(())
}

/// 32 random bytes, URL-safe base64: session tokens and cookies.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token of the forms of the session whose cookie is `cookie`:
/// derived from the cookie, which a page of another site can neither read
/// (HttpOnly) nor guess, so it cannot forge the token.
pub fn csrf_token(cookie: &str) -> String {
    hex::encode(Sha256::digest(format!("csrf\0{cookie}").as_bytes()))
}

/// Whether `presented` is the CSRF token of `cookie` (compared as hashes, so
/// the time taken tells nothing about the expected value).
pub fn csrf_matches(cookie: &str, presented: &str) -> bool {
    Sha256::digest(csrf_token(cookie).as_bytes()) == Sha256::digest(presented.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_or_foreign_csrf_token_does_not_match() {
        let cookie = random_secret();
        assert!(csrf_matches(&cookie, &csrf_token(&cookie)));
        assert!(!csrf_matches(&cookie, ""));
        assert!(!csrf_matches(&cookie, &csrf_token(&random_secret())));
        assert!(!csrf_matches(&cookie, &cookie));
    }

    #[test]
    fn requests_name_the_field_they_fail_on() {
        let request = ConnectRequest {
            account_id: "a".into(),
            user_id: "u".into(),
            connector_id: "c".into(),
            return_url: Some("javascript:alert(1)".into()),
        };
        let error = check_request(&request).unwrap_err().to_string();
        assert!(error.starts_with("returnUrl:"), "{error}");
        let blank = ConnectRequest {
            user_id: " ".into(),
            return_url: None,
            ..request
        };
        let error = check_request(&blank).unwrap_err().to_string();
        assert!(error.starts_with("userId:"), "{error}");
    }
}
