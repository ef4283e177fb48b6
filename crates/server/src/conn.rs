//! Connections: what `run` accepts, how long a connection may hold the server's attention, and
//! what keeps it usable after a refusal.
//!
//! Every accepted socket gets TCP_NODELAY: an answer is written in pieces (its head, then the
//! chunks of a streamed spool file), and with Nagle's algorithm the last small piece waits for
//! the client's delayed ACK (40 ms on Linux).
//!
//! Two clocks run on every connection's reads, for HTTP/1.1 and h2c alike (and while the
//! protocol is being told apart):
//! * the header-read timeout: a request's head must have arrived that long after its first
//!   byte, or, for a connection's first request, after the connection opened: a silent
//!   connection or a slowloris trickling its headers is closed;
//! * the keep-alive timeout: a connection with no request in progress and no byte moving for
//!   that long is closed.
//!
//! A request in progress (from its head until its answer is ready) stops both: its body and its
//! job have their own limits (`--body-timeout`, `--sync-deadline`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// `--max-body-bytes` and `--body-timeout`: how much of a body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub limit: usize,
    pub timeout: Duration,
}

/// `--header-read-timeout` and `--keep-alive-timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub keep_alive: Duration,
}

/// The listener `run` serves: its sockets with TCP_NODELAY and their clocks.
pub struct Acceptor {
    listener: TcpListener,
    timeouts: Timeouts,
}

impl Acceptor {
    pub fn new(listener: TcpListener, timeouts: Timeouts) -> Self {
        Acceptor { listener, timeouts }
    }
}

impl Listener for Acceptor {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let (socket, address) = Listener::accept(&mut self.listener).await;
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        (Connection::new(socket, self.timeouts), address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted socket. Its reads fail with `TimedOut` once a clock runs out, which ends the
/// connection.
pub struct Connection {
    socket: TcpStream,
    activity: Activity,
    timer: Pin<Box<Sleep>>,
}

impl Connection {
    fn new(socket: TcpStream, timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Connection {
            socket,
            activity: Activity(Arc::new(Mutex::new(Clocks {
                timeouts,
                requests: 0,
                quiet_since: now,
                head_since: Some(now),
                multiplexed: false,
                reader: None,
            }))),
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }
}

/// What a connection is doing, shared by its socket and its requests (which find it in their
/// `ConnectInfo`).
#[derive(Clone)]
pub struct Activity(Arc<Mutex<Clocks>>);

struct Clocks {
    timeouts: Timeouts,
    /// Requests between their head and their answer.
    requests: usize,
    /// When a byte last moved, or the last request was answered.
    quiet_since: Instant,
    /// When the head of the next request began: its first byte, or the connection's opening.
    head_since: Option<Instant>,
    /// h2: bytes between requests are the connection's own frames (pings, window updates), not
    /// the start of a request.
    multiplexed: bool,
    /// The socket's reader, woken when the last request is answered so that the clocks run.
    reader: Option<Waker>,
}

impl Clocks {
    /// When the connection is to be closed; never while a request is in progress.
    fn deadline(&self) -> Option<Instant> {
        (self.requests == 0).then(|| {
            let idle = self.quiet_since + self.timeouts.keep_alive;
            self.head_since
                .map_or(idle, |since| idle.min(since + self.timeouts.header_read))
        })
    }

    fn moved(&mut self, read: bool) {
        if self.requests == 0 {
            let now = Instant::now();
            self.quiet_since = now;
            if read && !self.multiplexed {
                self.head_since.get_or_insert(now);
            }
        }
    }
}

impl Activity {
    fn clocks(&self) -> MutexGuard<'_, Clocks> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the clocks until the returned guard drops (when the request is answered).
    fn begin(&self, version: Version) -> InProgress {
        let mut clocks = self.clocks();
        clocks.requests += 1;
        clocks.head_since = None;
        clocks.multiplexed |= version == Version::HTTP_2;
        InProgress(self.clone())
    }
}

struct InProgress(Activity);

impl Drop for InProgress {
    fn drop(&mut self) {
        let reader = {
            let mut clocks = self.0.clocks();
            clocks.requests -= 1;
            if clocks.requests > 0 {
                return;
            }
            clocks.quiet_since = Instant::now();
            clocks.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

impl Connected<IncomingStream<'_, Acceptor>> for Activity {
    fn connect_info(stream: IncomingStream<'_, Acceptor>) -> Self {
        stream.io().activity.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if let Poll::Ready(read) = Pin::new(&mut this.socket).poll_read(cx, buf) {
            if buf.filled().len() > before {
                this.activity.clocks().moved(true);
            }
            return Poll::Ready(read);
        }
        let deadline = {
            let mut clocks = this.activity.clocks();
            clocks.reader = Some(cx.waker().clone());
            clocks.deadline()
        };
        if let Some(deadline) = deadline {
            this.timer.as_mut().reset(deadline);
            if this.timer.as_mut().poll(cx).is_ready() {
                tracing::debug!(
                    "closing a connection: no request within the header-read or keep-alive timeout"
                );
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
        }
        Poll::Pending
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.socket).poll_write(cx, buf);
        this.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.socket).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

impl Connection {
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.clocks().moved(false);
        }
    }
}

/// Middleware, outermost: stops the connection's clocks while the request is in progress, and
/// keeps an HTTP/1.1 connection usable after an answer given before the body was read (a
/// refusal: 401, 404, 413, 429, an injected fault...). The client is still sending that body and
/// reads the answer only after it; closing the connection on it (hyper's way) resets it, so the
/// client may see a broken pipe instead of the answer, and its next request on the connection
/// fails. So the rest of the body is read and dropped before the answer goes out, up to the body
/// limit and within the body timeout. A body that cannot be drained (announced larger than the
/// limit, over it, too slow, or awaiting `100 Continue`, which draining would ask for) gets
/// `Connection: close` on the answer instead, which tells the client not to reuse it.
pub(crate) async fn keep_usable(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let _in_progress = request
        .extensions()
        .get::<ConnectInfo<Activity>>()
        .map(|ConnectInfo(activity)| activity.begin(request.version()));
    if request.version() >= Version::HTTP_2 || request.body().is_end_stream() {
        // h2 resets an unread stream on its own; the connection goes on.
        return next.run(request).await;
    }
    let deadline = Instant::now() + limits.timeout;
    let limit = limits.limit;
    let drainable = !expects_continue(request.headers())
        && content_length(request.headers()).is_none_or(|length| length <= limit as u64);
    let (parts, body) = request.into_parts();
    let (give_back, mut given_back) = oneshot::channel();
    let body = Body::from_stream(Returned {
        rest: Some(body.into_data_stream()),
        give_back: Some(give_back),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Ok(rest) = given_back.try_recv() {
        if !(drainable && drain(rest, limit, deadline).await) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads and drops the rest of a body: whether it ended within `limit` bytes and by `deadline`.
async fn drain(mut rest: BodyDataStream, limit: usize, deadline: Instant) -> bool {
    let to_the_end = async {
        let mut left = limit;
        while let Some(chunk) = rest.next().await {
            match chunk {
                Ok(chunk) if chunk.len() <= left => left -= chunk.len(),
                _ => return false,
            }
        }
        true
    };
    tokio::time::timeout_at(deadline, to_the_end)
        .await
        .unwrap_or(false)
}

/// A request body that, dropped before its end, gives what is left of it back.
struct Returned {
    rest: Option<BodyDataStream>,
    /// Gone once the body ended (or failed): then there is nothing to give back.
    give_back: Option<oneshot::Sender<BodyDataStream>>,
}

impl Stream for Returned {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let next = std::task::ready!(rest.poll_next_unpin(cx));
        if !matches!(next, Some(Ok(_))) {
            self.give_back = None;
        }
        Poll::Ready(next)
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        if let (Some(give_back), Some(rest)) = (self.give_back.take(), self.rest.take()) {
            let _ = give_back.send(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let timeouts = Timeouts {
            header_read: Duration::from_secs(10),
            keep_alive: Duration::from_secs(10),
        };
        let mut acceptor = Acceptor::new(listener, timeouts);
        let _client = TcpStream::connect(address).await.unwrap();
        let (connection, _) = Listener::accept(&mut acceptor).await;
        assert!(connection.socket.nodelay().unwrap());
    }
}
