//! The accept loop, one for plain HTTP and HTTPS: accept, (handshake), serve HTTP/1.1 or
//! HTTP/2 on the connection, and on shutdown stop accepting and let what is in flight
//! finish within the grace period.
//!
//! Every connection is a task in one `JoinSet` (aborted when `serve` returns) watched by
//! one `GracefulShutdown`, which tells HTTP/1 connections to close after their current
//! response and HTTP/2 ones to send GOAWAY, then waits for them.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::error::ApiError;
use crate::tls::Certificates;

/// How long a client has from connecting to finishing the TLS handshake. A scanner or a
/// stalled client then costs one task for this long, never forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after an accept error that is not about one connection (EMFILE: out of file
/// descriptors), so the loop waits for connections to close instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The first byte of every TLS connection (a handshake record); anything else on the
/// TLS port is a client speaking plain HTTP to it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves `app` until `shutdown` resolves, then stops accepting and gives in-flight
/// requests and streams up to `grace` to finish. With `tls`, every connection is TLS
/// (HTTP/2 or HTTP/1.1 by ALPN) with the certificate `tls` holds at its handshake;
/// without, plain HTTP/1.1 (and HTTP/2 with prior knowledge).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Certificates>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let acceptor = match &tls {
        Some(certificates) => Some(TlsAcceptor::from(
            certificates.server_config().map_err(io::Error::other)?,
        )),
        None => None,
    };
    let mut http = auto::Builder::new(TokioExecutor::new());
    // With a timer, hyper closes HTTP/1 connections whose headers take over 30 s
    // (slowloris); without one it would wait forever.
    http.http1().timer(TokioTimer::new());
    let conns = Conns {
        http: Arc::new(http),
        app,
        refusal: Router::new().fallback(plain_http_refused),
    };
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set holds only live ones.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // The client gave up before we accepted: nothing to do.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        // Small SSE chunks must leave at once, not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let watcher = graceful.watcher();
        match &acceptor {
            None => tasks.spawn(conns.clone().http(tcp, watcher)),
            Some(acceptor) => tasks.spawn(conns.clone().https(acceptor.clone(), tcp, watcher)),
        };
    }
    drop(listener);
    tracing::info!(
        grace_seconds = grace.as_secs_f64(),
        "shutting down: no new connections, finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("grace period over, closing the remaining connections");
        }
    }
    tasks.abort_all();
    Ok(())
}

/// What a connection task needs: the HTTP settings, the app, and the router that answers
/// plain HTTP sent to the TLS port.
#[derive(Clone)]
struct Conns {
    http: Arc<auto::Builder<TokioExecutor>>,
    app: Router,
    refusal: Router,
}

impl Conns {
    async fn http(self, tcp: TcpStream, watcher: Watcher) {
        serve_connection(&self.http, self.app, tcp, watcher).await;
    }

    async fn https(self, acceptor: TlsAcceptor, tcp: TcpStream, watcher: Watcher) {
        let handshake = async {
            let mut first = [0u8; 1];
            match tcp.peek(&mut first).await {
                Ok(1) if first[0] == TLS_HANDSHAKE_RECORD => {}
                Ok(1) => return Err(tcp),
                // Closed or failed before a byte: nothing to answer.
                _ => return Ok(None),
            }
            match acceptor.accept(tcp).await {
                Ok(stream) => Ok(Some(stream)),
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    Ok(None)
                }
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(Some(stream))) => serve_connection(&self.http, self.app, stream, watcher).await,
            Ok(Ok(None)) => {}
            Ok(Err(plain)) => {
                // Bounded like a handshake: one answer, then the connection is closed.
                let refuse = serve_connection(&self.http, self.refusal, plain, watcher);
                let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, refuse).await;
            }
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    }
}

async fn serve_connection<I>(
    http: &auto::Builder<TokioExecutor>,
    app: Router,
    io: I,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The answer to plain HTTP on the TLS port, in OpenAI's error shape, so an SDK pointed
/// at `http://` says what is wrong instead of "connection reset".
async fn plain_http_refused() -> axum::response::Response {
    let mut response = ApiError::BadRequest(
        "this port serves HTTPS only: use an https:// URL for this gateway".into(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Errors about one connection that went away before `accept` returned it (as hyper and
/// axum classify them); every other accept error is about the listener or the process.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
