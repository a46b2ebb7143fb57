//! The host's one client of a connector's OAuth endpoints: the
//! authorization-code exchange (RFC 6749 §4.1.3), the client-credentials
//! grant (§4.4.2), the refresh (§6) and revocation (RFC 7009).
//!
//! Every request takes the same path: the URL checked against the
//! connector's outbound policy ([`checked_url`], `Outbound::check_url`, as for
//! guest requests, and `https` unless the operator turned `require_https`
//! off; a refusal is audited), the client authenticated where the connector says
//! ([`ClientAuth`]), a form POST through the host's checking client
//! (`Outbound::client`: host-side DNS filter, no redirects, no proxy) within
//! [`HOST_REQUEST_TIMEOUT`], the answer capped at [`MAX_ANSWER_BYTES`], and the
//! request recorded with `Outbound::audit_host_request` in the same audit log
//! as the guest's. Failures are mapped once, to [`TokenError`]; no message
//! holds a token, a secret or a URL.

mod answer;
mod headers;

use std::time::{Duration, Instant};

use base64::Engine as _;
use connector_abi::manifest::ClientAuthLocation;
use connector_sandbox::capabilities::http::Outbound;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::FlowError;
use crate::registry::LoadedConnector;
use answer::{Answer, check_status, read_tokens};

pub(crate) use answer::{ResponsePaths, TokenError, TokenSet};
pub(crate) use headers::extra_headers;

/// Time limit of a request the host makes itself (exchange, refresh, revocation).
pub(crate) const HOST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read from a token or revocation endpoint.
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Which request, for messages and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// The authorization-code exchange at the token endpoint.
    CodeExchange,
    /// A refresh at the token endpoint.
    Refresh,
    /// A client-credentials grant at the token endpoint (a new connection,
    /// or the renewal of one).
    ClientCredentials,
    /// A revocation at the revocation endpoint.
    Revocation,
}

impl Endpoint {
    /// How messages name the endpoint.
    fn name(self) -> &'static str {
        match self {
            Endpoint::CodeExchange | Endpoint::Refresh | Endpoint::ClientCredentials => {
                "token endpoint"
            }
            Endpoint::Revocation => "revocation endpoint",
        }
    }

    /// The credential kind the audit log records.
    fn audit_label(self) -> &'static str {
        match self {
            Endpoint::CodeExchange => "client-credentials (code exchange)",
            Endpoint::Refresh => "client-credentials (token refresh)",
            Endpoint::ClientCredentials => "client-credentials (client-credentials grant)",
            Endpoint::Revocation => "client-credentials (revocation)",
        }
    }
}

/// `url` checked against the connector's outbound policy (origin, scheme,
/// address), as a guest's request would be, and `https` when the operator
/// requires it (every request to these endpoints carries a credential). A
/// refusal is recorded in the audit log for `account_id`, naming the
/// destination, before anything is sent.
pub(crate) fn checked_url(
    outbound: &Outbound,
    connector: &LoadedConnector,
    account_id: &str,
    url: &str,
    endpoint: Endpoint,
) -> Result<url::Url, FlowError> {
    outbound
        .check_url(connector.prepared.policy(), url)
        .map_err(|e| {
            outbound.audit_host_refusal(
                connector.prepared.connector(),
                Some(account_id),
                url,
                endpoint.audit_label(),
                &e,
            );
            FlowError::Connector(format!("{} refused: {e:?}", endpoint.name()))
        })
}

/// How the OAuth client authenticates (RFC 6749 §2.3.1).
pub(crate) struct ClientAuth {
    /// The client id.
    pub(crate) client_id: String,
    /// The client secret; a public client has none.
    pub(crate) secret: Option<SecretString>,
    /// The Basic header, the form body, or both.
    pub(crate) location: ClientAuthLocation,
}

impl ClientAuth {
    /// Adds the client's credentials to a request: the Basic header (id and
    /// secret form-encoded first, as §2.3.1 says) and/or `client_id` and
    /// `client_secret` in the form. A public client names itself in the form.
    fn apply(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        let Some(secret) = &self.secret else {
            form.push(("client_id".into(), self.client_id.clone()));
            return request;
        };
        let mut request = request;
        if self.location != ClientAuthLocation::Body {
            request = request.header(AUTHORIZATION, basic(&self.client_id, secret));
        }
        if self.location != ClientAuthLocation::Header {
            form.push(("client_id".into(), self.client_id.clone()));
            form.push(("client_secret".into(), secret.expose_secret().to_string()));
        }
        request
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive.
fn basic(client_id: &str, secret: &SecretString) -> HeaderValue {
    let encode = |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let (id, secret): (String, String) = (encode(client_id), encode(secret.expose_secret()));
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut value =
        HeaderValue::from_str(&format!("Basic {credentials}")).expect("base64 is a header value");
    value.set_sensitive(true);
    value
}

/// The host's client of one connector's endpoints, acting for one account
/// (whose audit log records the requests).
pub(crate) struct TokenClient<'a> {
    outbound: &'a Outbound,
    connector: &'a LoadedConnector,
    account_id: &'a str,
    client: &'a ClientAuth,
}

impl<'a> TokenClient<'a> {
    /// A client authenticating as `client`.
    pub(crate) fn new(
        outbound: &'a Outbound,
        connector: &'a LoadedConnector,
        account_id: &'a str,
        client: &'a ClientAuth,
    ) -> Self {
        Self {
            outbound,
            connector,
            account_id,
            client,
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens,
    /// with the connector's extra form parameters and the extra headers
    /// checked by [`extra_headers`].
    pub(crate) async fn exchange_code(
        &self,
        token_url: &url::Url,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&SecretString>,
        extra: &[(String, String)],
        headers: HeaderMap,
    ) -> Result<TokenSet, TokenError> {
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), redirect_uri.to_string()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier".into(), verifier.expose_secret().to_string()));
        }
        form.extend(extra.iter().cloned());
        let answer = self
            .post(token_url, Endpoint::CodeExchange, form, headers)
            .await?;
        read_tokens(&answer, Endpoint::CodeExchange, None)
    }

    /// Exchanges a refresh token for new tokens, read at `paths`.
    pub(crate) async fn refresh(
        &self,
        token_url: &url::Url,
        refresh_token: &SecretString,
        extra: &[(String, String)],
        paths: &ResponsePaths,
    ) -> Result<TokenSet, TokenError> {
        let mut form = vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            (
                "refresh_token".to_string(),
                refresh_token.expose_secret().to_string(),
            ),
        ];
        form.extend(extra.iter().cloned());
        let answer = self
            .post(token_url, Endpoint::Refresh, form, HeaderMap::new())
            .await?;
        let paths = (!paths.is_standard()).then_some(paths);
        read_tokens(&answer, Endpoint::Refresh, paths)
    }

    /// Requests tokens with the client's own credentials (RFC 6749 §4.4.2):
    /// `grant_type=client_credentials`, the scope parameter (`scope`, or the
    /// name the manifest's fragment uses), the connector's extra form
    /// parameters and the extra headers checked by [`extra_headers`]; the
    /// answer read at `paths`. The caller checked the client is confidential
    /// (§4.4: it has a secret).
    pub(crate) async fn client_credentials(
        &self,
        token_url: &url::Url,
        scope: Option<&(String, String)>,
        extra: &[(String, String)],
        headers: HeaderMap,
        paths: &ResponsePaths,
    ) -> Result<TokenSet, TokenError> {
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        form.extend(scope.cloned());
        form.extend(extra.iter().cloned());
        let answer = self
            .post(token_url, Endpoint::ClientCredentials, form, headers)
            .await?;
        let paths = (!paths.is_standard()).then_some(paths);
        read_tokens(&answer, Endpoint::ClientCredentials, paths)
    }

    /// Revokes one token (`hint`: `refresh_token` or `access_token`).
    pub(crate) async fn revoke(
        &self,
        endpoint: &url::Url,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), TokenError> {
        let form = vec![
            ("token".to_string(), token.expose_secret().to_string()),
            ("token_type_hint".to_string(), hint.to_string()),
        ];
        let answer = self
            .post(endpoint, Endpoint::Revocation, form, HeaderMap::new())
            .await?;
        check_status(&answer, Endpoint::Revocation)
    }

    /// The one way out: the form POST, timed out, capped and audited.
    /// `extra` (already checked: none of the headers the host sets) goes on
    /// first, so nothing in it could replace the host's own headers.
    async fn post(
        &self,
        url: &url::Url,
        endpoint: Endpoint,
        mut form: Vec<(String, String)>,
        extra: HeaderMap,
    ) -> Result<Answer, TokenError> {
        let request = self
            .outbound
            .client()
            .post(url.clone())
            .headers(extra)
            .header(ACCEPT, "application/json");
        let request = self.client.apply(request, &mut form).form(&form);
        drop(form);
        let started = Instant::now();
        let answer = tokio::time::timeout(HOST_REQUEST_TIMEOUT, send(request, endpoint))
            .await
            .unwrap_or_else(|_| {
                Err(TokenError::Failed(format!(
                    "the {} did not answer in time",
                    endpoint.name()
                )))
            });
        self.outbound.audit_host_request(
            self.connector.prepared.connector(),
            Some(self.account_id),
            url,
            endpoint.audit_label(),
            started,
            answer
                .as_ref()
                .map(|a| Some(a.status.as_u16()))
                .map_err(ToString::to_string),
        );
        answer
    }
}

/// Sends and reads the answer, at most [`MAX_ANSWER_BYTES`] of it.
async fn send(request: reqwest::RequestBuilder, endpoint: Endpoint) -> Result<Answer, TokenError> {
    let mut response = request.send().await.map_err(|e| unreachable(endpoint, e))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(endpoint, e))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(TokenError::Failed(format!(
                "the {} answered more than {MAX_ANSWER_BYTES} bytes",
                endpoint.name()
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// A transport failure, with its causes and without the URL (whose query may
/// hold a credential).
fn unreachable(endpoint: Endpoint, error: reqwest::Error) -> TokenError {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    TokenError::Failed(format!("{} unreachable: {message}", endpoint.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_clients_name_themselves_in_the_body() {
        let client = reqwest::Client::new();
        let mut form = Vec::new();
        let public = ClientAuth {
            client_id: "id".into(),
            secret: None,
            location: ClientAuthLocation::Header,
        };
        let request = public
            .apply(client.post("http://127.0.0.1/"), &mut form)
            .build()
            .unwrap();
        assert!(request.headers().get(AUTHORIZATION).is_none());
        assert_eq!(form, [("client_id".to_string(), "id".to_string())]);

        let mut form = Vec::new();
        let both = ClientAuth {
            client_id: "a b".into(),
            secret: Some(SecretString::from("s:&".to_string())),
            location: ClientAuthLocation::Both,
        };
        let request = both
            .apply(client.post("http://127.0.0.1/"), &mut form)
            .build()
            .unwrap();
        let header = request.headers()[AUTHORIZATION].to_str().unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("a+b:s%3A%26");
        assert_eq!(header, format!("Basic {encoded}"));
        assert!(request.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(form.len(), 2);
    }
}
