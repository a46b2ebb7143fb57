//! Outbound HTTP through the host.
//!
//! The host checks every request against the manifest's `allowedHosts`, resolves
//! and filters the destination itself, injects the [`Credential`] you name (you
//! never see its value), does not follow redirects, and records the request in
//! its audit log.
//!
//! ```text
//! let me = http::Request::get("https://api.example.com/v1/me")
//!     .header("accept", "application/json")
//!     .credential(http::Credential::AccessToken)
//!     .send()?;
//! if !me.is_success() { /* … */ }
//! ```

use crate::bindings::connector::auth::http as raw;
use crate::{ConnectorError, ProviderError};

pub use raw::{Credential, HttpError, Method, Request, Response, SecretHeader};

impl Request {
    /// A request with the given method and URL, no headers, no body, no credential.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            credential: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Asks the host to inject this credential after the destination passed the
    /// policy.
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, HttpError> {
        raw::send(&self)
    }
}

impl Response {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 is replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Turns a non-2xx response into the matching [`ConnectorError`]: 401 becomes
    /// [`ConnectorError::ReauthRequired`], anything else a provider error.
    pub fn error_for_status(self) -> Result<Response, ConnectorError> {
        match self.status {
            200..=299 => Ok(self),
            401 => Err(ConnectorError::ReauthRequired(format!(
                "the provider answered 401: {}",
                truncate(&self.text())
            ))),
            status => Err(ConnectorError::Provider(ProviderError {
                status: Some(status),
                code: None,
                message: truncate(&self.text()),
            })),
        }
    }
}

impl Credential {
    /// A secret field of the API-key form (manifest `secret: true`, e.g.
    /// `apiSecret`) in `header`, after `prefix`: the host fills in the value
    /// the user entered; the connector never sees it.
    ///
    /// ```text
    /// http::Request::get("https://api.example.com/v1/me")
    ///     .credential(http::Credential::secret_field("apiSecret", "x-api-secret", None))
    /// ```
    pub fn secret_field(field: &str, header: impl Into<String>, prefix: Option<&str>) -> Self {
        Credential::HostSecret(SecretHeader {
            secret: format!("field:{field}"),
            header: header.into(),
            prefix: prefix.map(str::to_string),
        })
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

impl HttpError {
    /// A one-line explanation of the refusal, e.g. `origin not allowed: https://x.example`.
    pub fn message(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        let f = &mut text;
        let _ = match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::OriginNotAllowed(m) => write!(f, "origin not allowed: {m}"),
            HttpError::UserinfoNotAllowed => write!(f, "URLs with userinfo are not allowed"),
            HttpError::AddressBlocked(m) => write!(f, "address blocked: {m}"),
            HttpError::CredentialHeader(m) => {
                write!(f, "credential header set by the connector: {m}")
            }
            HttpError::CredentialUnavailable(m) => write!(f, "credential unavailable: {m}"),
            HttpError::RequestTooLarge(n) => write!(f, "request larger than {n} bytes"),
            HttpError::ResponseTooLarge(n) => write!(f, "response larger than {n} bytes"),
            HttpError::Timeout => write!(f, "request timed out"),
            HttpError::Connection(m) => write!(f, "connection failed: {m}"),
            HttpError::NotPermitted(m) => write!(f, "outbound HTTP not permitted: {m}"),
        };
        text
    }
}

impl From<HttpError> for ConnectorError {
    fn from(error: HttpError) -> Self {
        ConnectorError::Provider(ProviderError {
            status: None,
            code: Some("http".into()),
            message: error.message(),
        })
    }
}
