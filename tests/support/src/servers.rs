//! Real HTTP servers on 127.0.0.1 for the outbound tests: each records the
//! requests it received so a test can prove what did (not) reach it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What a test server saw: the headers and path-and-query of each request.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, HeaderMap)>>>);

impl Seen {
    /// The requests so far.
    pub fn requests(&self) -> Vec<(String, HeaderMap)> {
        self.0.lock().unwrap().clone()
    }
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub seen: Seen,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// How a server answers.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 with a JSON body reflecting the request's headers and query.
    Echo,
    /// 302 to the given location.
    Redirect(String),
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Never answers.
    Hang,
}

/// Starts a server on 127.0.0.1 with an ephemeral port.
pub async fn start(behaviour: Behaviour) -> Server {
    let seen = Seen::default();
    let recorded = seen.clone();
    let app = Router::new().fallback(move |request: Request| {
        let behaviour = behaviour.clone();
        let recorded = recorded.clone();
        async move {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            recorded
                .0
                .lock()
                .unwrap()
                .push((target.clone(), request.headers().clone()));
            respond(behaviour, target, request.headers()).await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        seen,
        _task: task,
    }
}

async fn respond(behaviour: Behaviour, target: String, headers: &HeaderMap) -> Response {
    match behaviour {
        Behaviour::Echo => {
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let body = serde_json::json!({ "target": target, "headers": headers }).to_string();
            (
                [
                    ("set-cookie", "session=server-side"),
                    ("content-type", "application/json"),
                ],
                body,
            )
                .into_response()
        }
        Behaviour::Redirect(location) => {
            (StatusCode::FOUND, [("location", location)], "").into_response()
        }
        Behaviour::Huge(size) => Response::new(Body::from(vec![b'x'; size])),
        Behaviour::Hang => std::future::pending::<Response>().await,
    }
}
