//! Reading OAuth requests: form parameters and client authentication.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use super::oauth::OAuthError;
use super::{DevClient, Shared, authorization, constant_time_eq, decode_basic};

/// Client authentication (RFC 6749 §2.3.1): HTTP Basic, or `client_id` and
/// `client_secret` in the body, never both: §2.3 allows one method per
/// request, and a request with credentials in the header and a
/// `client_secret` in the body is refused with `invalid_request` (as strict
/// servers do). A `client_id` in the body beside a Basic header is allowed
/// when it names the same client.
pub(super) fn authenticate<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<&'a DevClient, OAuthError> {
    let verify = |id: &str, secret: &str| {
        shared
            .client(id)
            .filter(|client| constant_time_eq(client.client_secret.as_bytes(), secret.as_bytes()))
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let header = authorization(headers, "Basic")
        .map_err(|()| OAuthError::invalid_client("unusable Authorization header"))?;
    if header.is_some() && body_secret.is_some() {
        shared.store().stats.client_auth_two_methods += 1;
        return Err(OAuthError::invalid_request(
            "client authentication must only be provided using one mechanism",
        ));
    }
    let Some(header) = header else {
        let (Some(id), Some(secret)) = (body_id, body_secret) else {
            return Err(OAuthError::invalid_client("client authentication required"));
        };
        let client = verify(id, secret)
            .ok_or_else(|| OAuthError::invalid_client("unknown client or wrong secret"))?;
        shared.store().stats.client_auth_body += 1;
        return Ok(client);
    };
    let (raw_id, raw_secret) = decode_basic(header)
        .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
    // RFC 6749 §2.3.1 form-encodes both before base64; many clients do not.
    // Try the decoded form first, then the raw one.
    let decoded = form_decode(&raw_id).zip(form_decode(&raw_secret));
    let (client, id) = decoded
        .into_iter()
        .chain([(raw_id, raw_secret)])
        .find_map(|(id, secret)| verify(&id, &secret).map(|client| (client, id)))
        .ok_or_else(|| OAuthError::invalid_client("unknown client or wrong secret"))?;
    if body_id.is_some_and(|body| *body != id) {
        return Err(OAuthError::invalid_client(
            "the body's client_id disagrees with the Authorization header",
        ));
    }
    shared.store().stats.client_auth_header += 1;
    Ok(client)
}

/// The parameters of an `application/x-www-form-urlencoded` body.
pub(super) fn form_params(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, OAuthError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    parse_params(body)
}

/// Form-encoded parameters. Empty values count as absent and a repeated
/// parameter is an error (RFC 6749 §3.1, §3.2).
pub(super) fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if value.is_empty() {
            continue;
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{name}` is repeated"
            )));
        }
    }
    Ok(params)
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a
/// space); `None` if it is not valid percent-encoded UTF-8.
fn form_decode(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut input = value.bytes();
    while let Some(byte) = input.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let hex = [input.next()?, input.next()?];
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}
