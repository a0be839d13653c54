//! The accept loop: what one client may hold of the server.
//!
//! - Every TCP connection holds one of `server.max_connections` slots, from accept until it
//!   closes (a WebSocket keeps its slot). With every slot taken, new connections wait in the
//!   kernel's listen queue and are accepted as slots free up.
//! - A connection must send a request's headers within `server.idle_timeout`, counted from the
//!   moment it opens or its previous response ended, however slowly the bytes trickle in; a
//!   keep-alive connection with no request for that long is closed. So a slowloris or an idle
//!   client frees its slot within the timeout, and a normal client gets one.
//! - A request's body must arrive within `server.idle_timeout` too (`json::JsonBody`), and a
//!   write to a client that reads nothing of its answer for that long fails, closing the
//!   connection.
//! - A connection's buffers are capped (`MAX_CONNECTION_BUFFER`), which also bounds the size of a
//!   request's headers.
//! - At shutdown no connection is accepted; idle ones close, requests in flight finish.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest buffer a connection may grow for reading or writing; also the most header bytes a
/// request may carry.
const MAX_CONNECTION_BUFFER: usize = 64 * 1024;
/// Pause after an accept error (out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How many connections the server holds and how long an idle one lives.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` completes;
/// then waits, at most `idle_timeout`, for requests in flight.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_CONNECTION_BUFFER);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the slot semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http
            .serve_connection(
                TokioIo::new(SlotStream {
                    stream,
                    _slot: slot,
                    write_timeout: limits.idle_timeout,
                    stalled: None,
                }),
                TowerToHyperService::new(router.clone()),
            )
            .with_upgrades();
        let closing = closing.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended");
                    }
                    return;
                }
                () = closing.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended at shutdown");
            }
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(limits.idle_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown were dropped");
    }
}

/// A TCP stream that holds its connection slot until it is dropped, upgraded or not, and fails
/// a write that has made no progress for `write_timeout`: a client that stops reading its
/// answers must not keep its slot for ever.
struct SlotStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    write_timeout: Duration,
    /// Running while a write is blocked; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SlotStream {
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timeout = self.write_timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of its answer for the idle timeout",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for SlotStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SlotStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch_write(cx, result)
    }

    /// Vectored writes let hyper send bodies without copying them into its write buffer.
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch_write(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
