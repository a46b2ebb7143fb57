//! Test-only: `user-info` sends one request described by the connection's
//! additional info and reports what happened, for the outbound-HTTP security
//! tests. It never fails on HTTP errors: it describes them instead.
//!
//! Keys read from `additional_info`:
//! - `url` (required), `method` (default `GET`), `body` (optional text);
//! - `credential`: `none` (default), `access-token`, `api-key`,
//!   `client-credentials` or `secret:<name>:<header>`, with an optional
//!   `credential-prefix` for the secret (e.g. `Token `);
//! - `header:<Name>`: a request header;
//! - `placement` (read by `basic-auth`): `bearer` (default), `basic:<template>`,
//!   `header:<name>` or `query:<name>`;
//! - `repeat`: send the request this many times (the answer describes the
//!   last one and adds `("sent", <successful count>)`).
//!
//! The answer: `name` is the response status (`"200"`) and `additional_info`
//! the response headers plus `("body", <text>)`; or, when the host refused or
//! failed the request, `name` is `error: <message>` and `additional_info` is
//! `[("error-kind", <kebab-case variant>)]`.

use connector_sdk::prelude::*;
use http::{Credential, HttpError, Method, SecretHeader};

struct HttpProbe;

#[connector]
impl Connector for HttpProbe {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        let placement = get(&connection, "placement").unwrap_or("bearer");
        Ok(match placement.split_once(':') {
            None if placement == "bearer" => ApiKeyPlacement::Bearer,
            Some(("basic", template)) => ApiKeyPlacement::Basic(template.into()),
            Some(("header", name)) => ApiKeyPlacement::Header(name.into()),
            Some(("query", name)) => ApiKeyPlacement::Query(name.into()),
            _ => return Err(bad_input("placement", placement)),
        })
    }

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let url = get(&connection, "url")
            .ok_or_else(|| ConnectorError::BadInput("`url` is required".into()))?;
        let method = match get(&connection, "method")
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_str()
        {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => return Err(bad_input("method", other)),
        };
        let mut request = http::Request::new(method, url);
        for (key, value) in &connection.additional_info {
            if let Some(name) = key.strip_prefix("header:") {
                request = request.header(name, value.as_str());
            }
        }
        if let Some(body) = get(&connection, "body") {
            request = request.body(body);
        }
        let credential = get(&connection, "credential").unwrap_or("none");
        request.credential = match credential {
            "none" => None,
            "access-token" => Some(Credential::AccessToken),
            "api-key" => Some(Credential::ApiKey),
            "client-credentials" => Some(Credential::ClientCredentials),
            other => match other
                .strip_prefix("secret:")
                .and_then(|s| s.split_once(':'))
            {
                Some((secret, header)) => Some(Credential::HostSecret(SecretHeader {
                    secret: secret.into(),
                    header: header.into(),
                    prefix: get(&connection, "credential-prefix").map(Into::into),
                })),
                None => return Err(bad_input("credential", other)),
            },
        };

        // `repeat`: send the request this many times (a request flood); the
        // answer describes the last one and counts the successful ones.
        let repeat: u32 = get(&connection, "repeat")
            .map(|n| n.parse().map_err(|_| bad_input("repeat", n)))
            .transpose()?
            .unwrap_or(1);
        let mut sent = 0u32;
        for _ in 1..repeat {
            if request.clone().send().is_ok() {
                sent += 1;
            }
        }
        let last = request.send();
        if last.is_ok() {
            sent += 1;
        }
        let (name, mut additional_info) = match last {
            Ok(response) => {
                // The host caps an additional-info value at 4096 bytes: report
                // the start of a longer body and its length.
                let mut body = response.text();
                let length = body.len();
                if length > 4000 {
                    let mut cut = 4000;
                    while !body.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    body.truncate(cut);
                }
                let mut info = response.headers;
                info.push(("body".into(), body));
                info.push(("body-bytes".into(), length.to_string()));
                (response.status.to_string(), info)
            }
            Err(error) => (
                format!("error: {}", error.message()),
                vec![("error-kind".into(), error_kind(&error).into())],
            ),
        };
        if repeat > 1 {
            additional_info.push(("sent".into(), sent.to_string()));
        }
        Ok(UserInfo {
            platform_user_id: "http-probe".into(),
            name,
            timezone_name: None,
            timezone_offset: None,
            additional_info,
            message: None,
        })
    }
}

/// The value of `key` in the connection's additional info.
fn get<'a>(connection: &'a ConnectionInfo, key: &str) -> Option<&'a str> {
    connection
        .additional_info
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn bad_input(key: &str, value: &str) -> ConnectorError {
    ConnectorError::BadInput(format!("unsupported `{key}`: `{value}`"))
}

/// The WIT name of the error's case.
fn error_kind(error: &HttpError) -> &'static str {
    match error {
        HttpError::InvalidUrl(_) => "invalid-url",
        HttpError::OriginNotAllowed(_) => "origin-not-allowed",
        HttpError::UserinfoNotAllowed => "userinfo-not-allowed",
        HttpError::AddressBlocked(_) => "address-blocked",
        HttpError::CredentialHeader(_) => "credential-header",
        HttpError::CredentialUnavailable(_) => "credential-unavailable",
        HttpError::RequestTooLarge(_) => "request-too-large",
        HttpError::ResponseTooLarge(_) => "response-too-large",
        HttpError::Timeout => "timeout",
        HttpError::Connection(_) => "connection",
        HttpError::NotPermitted(_) => "not-permitted",
    }
}
