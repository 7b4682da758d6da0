//! Serving connections: header, idle and body-progress timeouts, a cap on open connections
//! (with `/health` still answered past it), and graceful shutdown.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::{ApiError, AppState};

/// Connection limits (`plumb server --header-timeout`, `--idle-timeout`, `--max-connections`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's headers must arrive whole within this long.
    pub header_timeout: Duration,
    /// A connection on which no byte moved either way for this long, while plumb waits on the
    /// peer (idle keep-alive, a stalled body upload, a client that stopped reading), is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; past it a few more are let in that answer only `/health`
    /// (others get 503 and are closed), and beyond those new connections are closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// Connections let in past `max_connections`, answering `/health` only.
const SPARE_CONNECTIONS: usize = 32;
/// How long a spare connection may take to send its request.
const SPARE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `state` on `listener` until `shutdown` resolves; in-flight requests then finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = state.config.limits.clone();
    let spare_app = Router::new()
        .route("/health", get(crate::api::misc::health))
        .fallback(too_many_connections)
        .with_state(state.clone());
    let app = crate::router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let spares = Arc::new(Semaphore::new(SPARE_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors or the like: shed load, keep accepting later.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (permit, spare) = match slots.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match spares.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => continue, // dropped: closed at once
            },
        };
        let (service, idle, header) = if spare {
            (spare_app.clone(), SPARE_TIMEOUT, SPARE_TIMEOUT)
        } else {
            (app.clone(), limits.idle_timeout, limits.header_timeout)
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header)
            .keep_alive(!spare);
        let io = TokioIo::new(Watchdog::new(stream, idle));
        let conn = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn too_many_connections() -> Response {
    let mut resp = ApiError::new(
        plumb_core::ErrorCode::TemporarilyUnavailable,
        "The server has too many open connections; try again.",
    )
    .into_response();
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    resp
}

/// A TCP stream that fails with `TimedOut` when a read or write has waited on the peer for
/// `idle` since the last byte moved either way. It only counts while plumb waits on the peer:
/// a request being worked on (no read or write pending) is never cut.
struct Watchdog {
    inner: TcpStream,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Watchdog {
    fn new(inner: TcpStream, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Called when the peer kept us waiting. The timer is re-armed only when it fires (at the
    /// latest once per `idle`), not on every wait: bytes that moved meanwhile just push the
    /// next check later, so a busy connection costs no timer-wheel work per read or write.
    fn waited<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let deadline = self.last + self.idle;
                    if Instant::now() >= deadline {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "connection idle for too long",
                        )));
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

impl Watchdog {
    /// A write's outcome: bytes written count as progress; a write kept waiting arms the timer.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.waited(cx),
        }
    }
}

impl AsyncRead for Watchdog {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.waited(cx),
        }
    }
}

impl AsyncWrite for Watchdog {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.waited(cx),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
