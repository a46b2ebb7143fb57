//! The OAuth endpoints: `GET /oauth/authorize`, `POST /oauth/token`,
//! `POST /oauth/revoke`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use url::Url;

use super::consent::{self, Decision};
use super::request::{authenticate, form_params, parse_params};
use super::store::{Authorization, GrantError, Issued};
use super::{DevClient, Shared};

/// The scope granted when the authorization request names none.
const DEFAULT_SCOPE: &str = "api";

/// An OAuth error answer: `{"error", "error_description"}` (RFC 6749 §5.2).
#[derive(Debug)]
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(super) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.error, "error_description": self.description }));
        let mut response = (self.status, no_store(), body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                "Basic realm=\"dev-provider\""
                    .parse()
                    .expect("static header"),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(error: GrantError) -> Self {
        match error {
            GrantError::InvalidGrant(why) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_grant", why)
            }
            GrantError::InvalidScope => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "the requested scope exceeds the grant's",
            ),
        }
    }
}

/// `GET /oauth/authorize`, the root issuer's.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let issuer = shared.issuer.clone();
    authorize_at(&shared, &issuer, query)
}

/// `GET /realms/{realm}/oauth/authorize`: a realm's (404 for an unknown one).
pub(super) async fn realm_authorize(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match shared.realm_issuer(&realm) {
        Some(issuer) => authorize_at(&shared, &issuer, query),
        None => unknown_realm(),
    }
}

/// The authorization endpoint of `issuer`: approves at once, or after the
/// consent page when it is on. Problems with
/// the client or the redirect URI answer 400 (never redirect to an
/// unverified place); problems after that redirect back with `error` (RFC
/// 6749 §4.1.2.1). Every redirect carries `iss` (RFC 9207).
fn authorize_at(shared: &Shared, issuer: &str, query: Option<String>) -> Response {
    let params = match parse_params(query.as_deref().unwrap_or("").as_bytes()) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let (client, redirect_uri) = match check_client_and_redirect(shared, &params) {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let state = params.get("state").map(String::as_str);
    let redirect = |pairs: &[(&str, &str)]| {
        let mut url = redirect_uri.clone();
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(pairs);
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        (StatusCode::FOUND, no_store(), [(LOCATION, url.to_string())]).into_response()
    };
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method").map(String::as_str);
    let refusal = match (challenge, method) {
        (None, None) | (Some(_), Some("S256")) => None,
        (None, Some(_)) => Some("code_challenge_method without code_challenge"),
        (Some(_), None) => Some("code_challenge_method is required: only S256 is supported"),
        (_, Some("plain")) => Some("PKCE method `plain` is not supported: use S256"),
        (_, Some(_)) => Some("unknown code_challenge_method: only S256 is supported"),
    };
    // An S256 challenge is a SHA-256 in base64url without padding.
    let malformed = challenge.is_some_and(|c| {
        c.len() != 43
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if let Some(why) = refusal.or(malformed.then_some("malformed code_challenge")) {
        return redirect(&[("error", "invalid_request"), ("error_description", why)]);
    }
    if shared.config.consent_page {
        match consent::decision(&params) {
            Decision::Ask => return consent::page(&client.client_id, &params),
            Decision::Allow => {}
            Decision::Deny => {
                return redirect(&[
                    ("error", "access_denied"),
                    ("error_description", "the user denied the request"),
                ]);
            }
        }
    }
    let code = shared.store().issue_code(Authorization {
        client_id: client.client_id.clone(),
        redirect_uri: params["redirect_uri"].clone(),
        scope: params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| DEFAULT_SCOPE.into()),
        code_challenge: challenge.cloned(),
        issuer: issuer.to_string(),
    });
    tracing::debug!(client_id = %client.client_id, "dev provider issued an authorization code");
    redirect(&[("code", &code)])
}

/// The checks of an authorization request that must pass before the
/// provider may redirect anywhere.
fn check_client_and_redirect<'a>(
    shared: &'a Shared,
    params: &HashMap<String, String>,
) -> Result<(&'a DevClient, Url), OAuthError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    let client = shared
        .client(client_id)
        .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        ));
    }
    let url = Url::parse(redirect_uri)
        .ok()
        .filter(|url| url.fragment().is_none())
        .ok_or_else(|| OAuthError::invalid_request("registered redirect_uri is not usable"))?;
    match params.get("response_type").map(String::as_str) {
        Some("code") => Ok((client, url)),
        None => Err(OAuthError::invalid_request("response_type is required")),
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "only response_type=code is supported",
        )),
    }
}

/// `POST /oauth/token`, the root issuer's.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let issuer = shared.issuer.clone();
    token_at(&shared, &issuer, &headers, &body).await
}

/// `POST /realms/{realm}/oauth/token`: a realm's (404 for an unknown one).
pub(super) async fn realm_token(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.realm_issuer(&realm) {
        Some(issuer) => token_at(&shared, &issuer, &headers, &body).await,
        None => unknown_realm(),
    }
}

/// The token endpoint of `issuer`.
async fn token_at(shared: &Shared, issuer: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let faults = {
        let mut faults = shared.faults();
        let snapshot = faults.clone();
        faults.fail_token_requests = faults.fail_token_requests.saturating_sub(1);
        snapshot
    };
    if faults.fail_token_requests > 0 {
        shared.store().stats.token_errors += 1;
        let status =
            StatusCode::from_u16(faults.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, no_store(), "temporarily unavailable").into_response();
    }
    let granted = match &faults.required_token_header {
        Some((name, value))
            if headers.get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(value.as_str()) =>
        {
            Err(OAuthError::invalid_request(format!(
                "the header {name} is required"
            )))
        }
        _ => token_grant(shared, issuer, headers, body, &faults),
    };
    if let Some(hold) = &faults.hold_token_answers {
        hold.hold().await;
    }
    match granted {
        Ok(issued) => {
            let mut body = json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": faults.access_token_lifetime_secs,
                "refresh_token": issued.refresh_token,
                "scope": issued.scope,
                "instance_url": shared.base_url,
            });
            if issued.refresh_token.is_empty() {
                body.as_object_mut().unwrap().remove("refresh_token");
            }
            if faults.omit_expires_in {
                body.as_object_mut().unwrap().remove("expires_in");
            }
            (StatusCode::OK, no_store(), Json(body)).into_response()
        }
        Err(error) => {
            shared.store().stats.token_errors += 1;
            tracing::debug!(error = error.error, "dev provider refused a token request");
            error.into_response()
        }
    }
}

fn token_grant(
    shared: &Shared,
    issuer: &str,
    headers: &HeaderMap,
    body: &[u8],
    faults: &super::Faults,
) -> Result<Issued, OAuthError> {
    let params = form_params(headers, body)?;
    let client = authenticate(shared, headers, &params)?;
    let lifetime = Duration::from_secs(faults.access_token_lifetime_secs);
    let param = |name: &str| params.get(name).map(String::as_str);
    let required = |name: &str| {
        param(name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    };
    match required("grant_type")? {
        "authorization_code" => {
            let code = required("code")?;
            let mut store = shared.store();
            let issued = store.redeem_code(
                code,
                &client.client_id,
                param("redirect_uri"),
                param("code_verifier"),
                issuer,
                lifetime,
            )?;
            Ok(issued)
        }
        "refresh_token" => {
            let refresh_token = required("refresh_token")?;
            let mut store = shared.store();
            let issued = store.refresh(
                refresh_token,
                &client.client_id,
                param("scope"),
                issuer,
                lifetime,
                faults.rotate_refresh_tokens,
            )?;
            Ok(issued)
        }
        // RFC 6749 §4.4.2: the client alone, authenticated above with one
        // method; the scope asked for is granted and echoed.
        "client_credentials" => {
            if params.contains_key("code") || params.contains_key("refresh_token") {
                return Err(OAuthError::invalid_request(
                    "a client_credentials request carries no code or refresh_token",
                ));
            }
            let scope = param("scope").unwrap_or(DEFAULT_SCOPE);
            let mut store = shared.store();
            Ok(store.client_credentials(&client.client_id, scope, issuer, lifetime))
        }
        _ => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code, refresh_token and client_credentials are supported",
        )),
    }
}

/// `POST /oauth/revoke`, the root issuer's.
pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    revoke_at(&shared, &headers, &body)
}

/// `POST /realms/{realm}/oauth/revoke`: a realm's (404 for an unknown one).
pub(super) async fn realm_revoke(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.realm_issuer(&realm) {
        Some(_) => revoke_at(&shared, &headers, &body),
        None => unknown_realm(),
    }
}

/// RFC 7009: 200 for any token the client may revoke, known or not.
fn revoke_at(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let result = form_params(headers, body).and_then(|params| {
        let client = authenticate(shared, headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        // `token_type_hint` is only a hint: every token is looked up anyway.
        let mut store = shared.store();
        store
            .revoke(token, &client.client_id)
            .map_err(|_| OAuthError::invalid_request("the token was issued to another client"))?;
        store.stats.revocations += 1;
        Ok(())
    });
    match result {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The answer for a realm that is not configured.
fn unknown_realm() -> Response {
    (StatusCode::NOT_FOUND, "unknown realm").into_response()
}

/// Token and error answers must not be cached (RFC 6749 §5.1).
fn no_store() -> [(axum::http::HeaderName, &'static str); 2] {
    [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")]
}
