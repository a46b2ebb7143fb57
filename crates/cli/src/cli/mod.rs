//! The subcommands of the `connector-host` command line, one module each
//! (the author commands live in `connector-authoring`).

pub mod api_keys;
pub mod audit;
pub mod build;
pub mod dev_demo;
pub mod dev_provider;
pub mod inspect;
pub mod keys;
pub mod publish;
pub mod serve;
pub mod sign;

/// Ctrl-C or SIGTERM (what service managers send) stops accepting requests and
/// lets requests in flight finish.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
