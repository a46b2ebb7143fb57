//! The provider's memory: authorization codes, grants and tokens, and the
//! rules that tie them together. No HTTP here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::{DevProviderStats, constant_time_eq, random_token};

/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// Everything the provider remembers. Nothing is ever forgotten: a test
/// server lives for one test, and used codes must stay known to detect replays.
#[derive(Default)]
pub(super) struct Store {
    /// The counters [`super::DevProvider::stats`] reports.
    pub(super) stats: DevProviderStats,
    codes: HashMap<String, Code>,
    /// Indexed by grant number; the user of grant `i` is `u-{i + 1}`.
    grants: Vec<Grant>,
    tokens: HashMap<String, Token>,
}

/// What an authorization request approved, waiting for the code exchange.
pub(super) struct Authorization {
    /// The client the code is for.
    pub(super) client_id: String,
    /// The exact `redirect_uri` of the authorization request.
    pub(super) redirect_uri: String,
    /// The granted scope.
    pub(super) scope: String,
    /// The S256 `code_challenge`, if the request had one.
    pub(super) code_challenge: Option<String>,
    /// The issuer whose authorization endpoint approved it: only its token
    /// endpoint redeems the code.
    pub(super) issuer: String,
}

struct Code {
    authorization: Authorization,
    issued_at: Instant,
    /// The grant this code produced, once exchanged.
    redeemed: Option<usize>,
}

/// One user's consent to one client, and every token issued under it.
struct Grant {
    client_id: String,
    /// The issuer that granted it: only its token endpoint refreshes it.
    issuer: String,
    scope: String,
    revoked: bool,
}

struct Token {
    grant: usize,
    kind: TokenKind,
    revoked: bool,
}

enum TokenKind {
    /// `expires_at` is `None` when the lifetime is too large to represent.
    Access { expires_at: Option<Instant> },
    /// `spent` once exchanged by a `refresh_token` grant (rotation).
    Refresh { spent: bool },
}

/// Tokens a successful grant issued.
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) refresh_token: String,
    pub(super) scope: String,
}

/// Why a grant was refused.
#[derive(Debug)]
pub(super) enum GrantError {
    /// `invalid_grant`, with a description.
    InvalidGrant(&'static str),
    /// `invalid_scope`: a refresh asked for more than the grant has.
    InvalidScope,
}

/// A revocation naming a token of another client.
#[derive(Debug)]
pub(super) struct NotYourToken;

impl Store {
    /// Remembers an approved authorization request; returns its code.
    pub(super) fn issue_code(&mut self, authorization: Authorization) -> String {
        let code = random_token();
        self.codes.insert(
            code.clone(),
            Code {
                authorization,
                issued_at: Instant::now(),
                redeemed: None,
            },
        );
        code
    }

    /// The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6). A
    /// code presented a second time revokes the grant it produced (§4.1.2).
    /// A refused attempt does not use the code up.
    pub(super) fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        issuer: &str,
        access_lifetime: Duration,
    ) -> Result<Issued, GrantError> {
        let Some(entry) = self.codes.get(code) else {
            return Err(GrantError::InvalidGrant("unknown authorization code"));
        };
        if let Some(grant) = entry.redeemed {
            self.revoke_grant(grant);
            return Err(GrantError::InvalidGrant(
                "authorization code already used; the tokens issued from it are revoked",
            ));
        }
        let authorization = &entry.authorization;
        if authorization.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "authorization code was issued to another client",
            ));
        }
        if authorization.issuer != issuer {
            return Err(GrantError::InvalidGrant(
                "authorization code was issued by another issuer",
            ));
        }
        if entry.issued_at.elapsed() >= CODE_LIFETIME {
            return Err(GrantError::InvalidGrant("authorization code expired"));
        }
        if redirect_uri != Some(authorization.redirect_uri.as_str()) {
            return Err(GrantError::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&authorization.code_challenge, code_verifier) {
            (None, None) => {}
            // RFC 9700 §2.1.1: a verifier without a challenge is a PKCE
            // downgrade attempt.
            (None, Some(_)) => {
                return Err(GrantError::InvalidGrant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ));
            }
            (Some(_), None) => return Err(GrantError::InvalidGrant("code_verifier missing")),
            (Some(challenge), Some(verifier)) => {
                if !pkce_s256_matches(challenge, verifier) {
                    return Err(GrantError::InvalidGrant(
                        "code_verifier does not match the code_challenge",
                    ));
                }
            }
        }
        let scope = authorization.scope.clone();
        let grant = self.grants.len();
        self.grants.push(Grant {
            client_id: client_id.to_string(),
            issuer: issuer.to_string(),
            scope: scope.clone(),
            revoked: false,
        });
        if let Some(entry) = self.codes.get_mut(code) {
            entry.redeemed = Some(grant);
        }
        self.stats.authorization_code_grants += 1;
        Ok(self.issue_tokens(grant, scope, access_lifetime))
    }

    /// The `refresh_token` grant with rotation (RFC 9700 §4.14.2): the
    /// presented token is spent, a new one is issued; presenting a spent one
    /// again revokes the whole grant.
    pub(super) fn refresh(
        &mut self,
        refresh_token: &str,
        client_id: &str,
        scope: Option<&str>,
        issuer: &str,
        access_lifetime: Duration,
        rotate: bool,
    ) -> Result<Issued, GrantError> {
        let Some(token) = self.tokens.get(refresh_token) else {
            return Err(GrantError::InvalidGrant("unknown refresh token"));
        };
        let TokenKind::Refresh { spent } = token.kind else {
            return Err(GrantError::InvalidGrant("not a refresh token"));
        };
        let grant_index = token.grant;
        let grant = &self.grants[grant_index];
        if grant.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "refresh token was issued to another client",
            ));
        }
        if grant.issuer != issuer {
            return Err(GrantError::InvalidGrant(
                "refresh token was issued by another issuer",
            ));
        }
        if token.revoked || grant.revoked {
            return Err(GrantError::InvalidGrant("refresh token revoked"));
        }
        if spent {
            self.revoke_grant(grant_index);
            return Err(GrantError::InvalidGrant(
                "refresh token already used; the whole grant is revoked",
            ));
        }
        let scope = match scope {
            None => grant.scope.clone(),
            Some(requested) => {
                let granted: Vec<&str> = grant.scope.split_whitespace().collect();
                if !requested.split_whitespace().all(|s| granted.contains(&s)) {
                    return Err(GrantError::InvalidScope);
                }
                requested.to_string()
            }
        };
        if rotate && let Some(token) = self.tokens.get_mut(refresh_token) {
            token.kind = TokenKind::Refresh { spent: true };
        }
        self.stats.refresh_grants += 1;
        let mut issued = self.issue_tokens(grant_index, scope, access_lifetime);
        if !rotate {
            // No new refresh token: the old one stays the grant's.
            self.tokens.remove(&issued.refresh_token);
            issued.refresh_token = String::new();
        }
        Ok(issued)
    }

    /// The `client_credentials` grant (RFC 6749 §4.4): a grant of the
    /// client itself, with an access token and no refresh token (§4.4.3).
    pub(super) fn client_credentials(
        &mut self,
        client_id: &str,
        scope: &str,
        issuer: &str,
        access_lifetime: Duration,
    ) -> Issued {
        let grant = self.grants.len();
        self.grants.push(Grant {
            client_id: client_id.to_string(),
            issuer: issuer.to_string(),
            scope: scope.to_string(),
            revoked: false,
        });
        self.stats.client_credentials_grants += 1;
        let mut issued = self.issue_tokens(grant, scope.to_string(), access_lifetime);
        self.tokens.remove(&issued.refresh_token);
        issued.refresh_token = String::new();
        issued
    }

    /// RFC 7009: revokes an access token alone, or a refresh token with its
    /// whole grant. Unknown tokens are ignored.
    pub(super) fn revoke(&mut self, token: &str, client_id: &str) -> Result<(), NotYourToken> {
        let Some(record) = self.tokens.get_mut(token) else {
            return Ok(());
        };
        let grant = record.grant;
        if self.grants[grant].client_id != client_id {
            return Err(NotYourToken);
        }
        match record.kind {
            TokenKind::Access { .. } => record.revoked = true,
            TokenKind::Refresh { .. } => self.revoke_grant(grant),
        }
        Ok(())
    }

    /// The user number (`u-<n>`) of a valid access token: known, an access
    /// token, not revoked (alone or with its grant), not expired.
    pub(super) fn access_token_user(&self, token: &str) -> Option<usize> {
        let record = self.tokens.get(token)?;
        let TokenKind::Access { expires_at } = record.kind else {
            return None;
        };
        let valid = !record.revoked && !self.grants[record.grant].revoked;
        let live = expires_at.is_none_or(|at| Instant::now() < at);
        (valid && live).then_some(record.grant + 1)
    }

    /// See [`super::DevProvider::is_revoked`].
    pub(super) fn is_revoked(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|record| record.revoked || self.grants[record.grant].revoked)
    }

    fn revoke_grant(&mut self, grant: usize) {
        self.grants[grant].revoked = true;
    }

    fn issue_tokens(&mut self, grant: usize, scope: String, access_lifetime: Duration) -> Issued {
        let access_token = random_token();
        let refresh_token = random_token();
        let expires_at = Instant::now().checked_add(access_lifetime);
        self.tokens.insert(
            access_token.clone(),
            Token {
                grant,
                kind: TokenKind::Access { expires_at },
                revoked: false,
            },
        );
        self.tokens.insert(
            refresh_token.clone(),
            Token {
                grant,
                kind: TokenKind::Refresh { spent: false },
                revoked: false,
            },
        );
        Issued {
            access_token,
            refresh_token,
            scope,
        }
    }
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, with the
/// verifier's syntax (43–128 unreserved characters) checked first.
fn pkce_s256_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}
