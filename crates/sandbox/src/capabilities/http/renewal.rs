//! A hook's request refused with 401 for an access token the host believed
//! valid: the host renews the token once per call (the server refreshes it,
//! single flight with every other caller refused the same token) and sends an
//! idempotent request once more with the new token. The guest sees only the
//! answer to the request it sent; it never sees either token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;

use super::{CallCredentials, HttpCapability};
use crate::generated::connector::auth::http::{Credential, HttpError, Method, Request, Response};

/// Renews the access token of the connection a call acts on. Implemented by
/// the server, which knows how to refresh it; the sandbox only asks.
pub trait TokenRenewal: Send + Sync {
    /// A new access token, refreshed at or after the moment the call's token
    /// was read (by this call or any other caller refused the same token), or
    /// `None` when the host cannot renew it (no refresh token, the refresh
    /// failed or was refused): the guest then gets the provider's 401.
    fn renew(&self) -> Pin<Box<dyn Future<Output = Option<SecretString>> + Send + '_>>;
}

/// A call's [`TokenRenewal`], shareable and with a `Debug` that shows nothing.
#[derive(Clone)]
pub struct Renewal(pub Arc<dyn TokenRenewal>);

impl fmt::Debug for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Renewal(..)")
    }
}

impl HttpCapability {
    /// [`HttpCapability::send_audited`], and when the provider answers 401 to
    /// a request carrying the access token of a call that can renew it: the
    /// token is renewed (once per call) and an idempotent request (RFC 9110
    /// §9.2.2) is sent once more with the new token, as a second audited
    /// request. Another method gets the 401; the call's next request carries
    /// the new token. The renewal waits no longer than the call's deadline.
    pub async fn send_renewing(&mut self, request: Request) -> Result<Response, HttpError> {
        let renewal = match (&request.credential, &self.credentials.renewal) {
            (Some(Credential::AccessToken), Some(renewal)) if !self.renewed => {
                Some(renewal.clone())
            }
            _ => None,
        };
        let again = (renewal.is_some() && idempotent(request.method)).then(|| request.clone());
        let response = self.send_audited(request).await?;
        let Some(renewal) = renewal.filter(|_| response.status == 401) else {
            return Ok(response);
        };
        self.renewed = true;
        tracing::info!(
            target: "connector::outbound",
            connector = %self.connector.id,
            "the provider answered 401 to a hook's request: renewing the access token"
        );
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let Ok(Some(token)) = tokio::time::timeout_at(deadline, renewal.0.renew()).await else {
            return Ok(response);
        };
        self.credentials = Arc::new(CallCredentials {
            access_token: Some(token),
            ..(*self.credentials).clone()
        });
        match again {
            Some(request) => self.send_audited(request).await,
            None => Ok(response),
        }
    }
}

/// Methods a request may be sent again with (RFC 9110 §9.2.2).
fn idempotent(method: Method) -> bool {
    matches!(
        method,
        Method::Get | Method::Head | Method::Options | Method::Put | Method::Delete
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use connector_abi::manifest::AllowedOrigin;
    use secrecy::ExposeSecret as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::capabilities::http::{
        ConnectorPolicy, MemoryAuditSink, Outbound, OutboundConfig, SystemResolver,
    };
    use crate::connector_ref::ConnectorRef;

    const OLD: &str = "tok-old-unit-secret";
    const NEW: &str = "tok-new-unit-secret";

    /// Hands out [`NEW`] and counts how often it was asked.
    struct Counting(AtomicUsize);

    impl TokenRenewal for Counting {
        fn renew(&self) -> Pin<Box<dyn Future<Output = Option<SecretString>> + Send + '_>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Some(SecretString::from(NEW)) })
        }
    }

    /// A provider on 127.0.0.1 that refuses [`OLD`] with 401, accepts any
    /// other token, and records the `authorization` header of each request.
    async fn provider() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = vec![0u8; 4096];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..read]).to_lowercase();
                let auth = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .unwrap_or_default()
                    .to_string();
                let refused = auth.contains(&OLD.to_lowercase());
                log.lock().unwrap().push(auth);
                let answer: &[u8] = match refused {
                    true => b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    false => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                };
                let _ = stream.write_all(answer).await;
            }
        });
        (base, seen)
    }

    fn capability(renewal: Option<Arc<Counting>>) -> HttpCapability {
        let config = OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
            require_https: false,
            ..OutboundConfig::default()
        };
        let outbound = Outbound::new(
            config,
            Arc::new(SystemResolver),
            Arc::new(Default::default()),
            Arc::new(MemoryAuditSink::default()),
        )
        .unwrap();
        let policy = ConnectorPolicy {
            manifest_origins: vec![AllowedOrigin::parse("http://127.0.0.1:*").unwrap()],
            operator_origins: None,
            declared_secrets: Default::default(),
            allow_query_credential: false,
        };
        HttpCapability::new(
            Arc::new(outbound),
            Arc::new(policy),
            Arc::new(CallCredentials {
                access_token: Some(SecretString::from(OLD)),
                renewal: renewal.map(|r| Renewal(r as Arc<dyn TokenRenewal>)),
                ..CallCredentials::default()
            }),
            Arc::new(ConnectorRef {
                id: "unit".into(),
                version: "1.0.0".into(),
            }),
            Some("acct-1".into()),
            Instant::now() + Duration::from_secs(30),
        )
    }

    fn request(method: Method, url: &str) -> Request {
        Request {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            credential: Some(Credential::AccessToken),
        }
    }

    #[tokio::test]
    async fn a_refused_token_is_renewed_once_and_only_idempotent_requests_go_again() {
        let (base, seen) = provider().await;
        let renewal = Arc::new(Counting(AtomicUsize::new(0)));
        let url = format!("{base}/me");

        // GET: 401 with the old token, renewed, sent again: the guest sees 200.
        let mut http = capability(Some(renewal.clone()));
        let response = http
            .send_renewing(request(Method::Get, &url))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(renewal.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            *seen.lock().unwrap(),
            [format!("bearer {OLD}"), format!("bearer {NEW}")]
        );
        assert_eq!(
            http.credentials
                .access_token
                .as_ref()
                .unwrap()
                .expose_secret(),
            NEW
        );

        // POST: sent once, the guest gets the 401; the next request of the
        // call carries the new token.
        seen.lock().unwrap().clear();
        let mut http = capability(Some(renewal.clone()));
        let response = http
            .send_renewing(request(Method::Post, &url))
            .await
            .unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(renewal.0.load(Ordering::SeqCst), 2);
        let response = http
            .send_renewing(request(Method::Post, &url))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            *seen.lock().unwrap(),
            [format!("bearer {OLD}"), format!("bearer {NEW}")]
        );
    }

    #[tokio::test]
    async fn no_renewal_without_one_or_after_the_first() {
        let (base, seen) = provider().await;
        let url = format!("{base}/me");
        // A call that cannot renew (a login's own token, an API key): the 401.
        let mut http = capability(None);
        let response = http
            .send_renewing(request(Method::Get, &url))
            .await
            .unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Once per call: a call renewed already gets a later 401 as it is.
        let renewal = Arc::new(Counting(AtomicUsize::new(0)));
        let mut http = capability(Some(renewal.clone()));
        http.renewed = true;
        let response = http
            .send_renewing(request(Method::Get, &url))
            .await
            .unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(renewal.0.load(Ordering::SeqCst), 0);
    }
}
