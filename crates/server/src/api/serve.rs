//! Serving the API over TCP with connection-level limits that `axum::serve`
//! does not have: a client must send a request's headers within
//! `api.header_read_timeout_secs` (a slow-headers client holds no connection
//! open for ever), and shutdown is graceful (requests in flight finish).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::limits::ApiLimits;

/// Serves `router` on `listener` until `shutdown` completes, then waits for
/// the connections' requests in flight to finish.
///
/// Each connection must deliver every request's headers within
/// `limits.header_read_timeout_secs`, counted from when the connection starts
/// waiting for them (also for the first request, so a client that connects
/// and sends nothing is closed too).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ApiLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = connection_builder(Duration::from_secs(limits.header_read_timeout_secs));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: the next accept may
                // work once connections close.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that breaks off or times out is not an error of ours.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1 only, with the header-read timeout. (Sniffing for HTTP/2 prior
/// knowledge would wait for a client's first bytes with no time limit, so a
/// client that connects and sends nothing would hold its connection open;
/// HTTP/2 reaches the host through a TLS-terminating proxy anyway.)
fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
}
