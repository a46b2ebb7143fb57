//! The metadata documents: `GET /.well-known/openid-configuration` (OpenID
//! Connect Discovery 1.0 §4) and `GET /.well-known/oauth-authorization-server`
//! (RFC 8414 §3) for the root issuer, and for each realm at
//! `/realms/{realm}/.well-known/openid-configuration` and at the RFC 8414
//! location with the well-known segment inserted before the issuer's path,
//! `/.well-known/oauth-authorization-server/realms/{realm}`.
//!
//! Each document names its issuer (the public URL's when one is configured),
//! the endpoints at the address the provider listens on, PKCE S256 only, and
//! exactly one client authentication method
//! ([`super::DevProvider::set_advertised_client_auth`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;

/// `GET /.well-known/openid-configuration` and
/// `GET /.well-known/oauth-authorization-server`: the root issuer's.
pub(super) async fn root(State(shared): State<Arc<Shared>>) -> Response {
    let endpoints = format!("{}/oauth", shared.base_url);
    Json(document(&shared, &shared.issuer, &endpoints)).into_response()
}

/// `GET /realms/{realm}/.well-known/openid-configuration` and
/// `GET /.well-known/oauth-authorization-server/realms/{realm}`: a realm's
/// (404 for an unknown one).
pub(super) async fn realm(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
) -> Response {
    match shared.realm_issuer(&realm) {
        Some(issuer) => {
            let endpoints = format!("{}/realms/{realm}/oauth", shared.base_url);
            Json(document(&shared, &issuer, &endpoints)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "error_description": "no such realm"})),
        )
            .into_response(),
    }
}

/// The document of `issuer`, whose endpoints are under `endpoints`.
fn document(shared: &Shared, issuer: &str, endpoints: &str) -> Value {
    let client_auth = shared.faults().advertised_client_auth;
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{endpoints}/authorize"),
        "token_endpoint": format!("{endpoints}/token"),
        "revocation_endpoint": format!("{endpoints}/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": [client_auth],
        "revocation_endpoint_auth_methods_supported": [client_auth],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": ["api"],
    })
}
