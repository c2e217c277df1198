//! One client connection: a reader that frames and decodes requests, and a writer that sends
//! responses strictly in request order.
//!
//! Each request is polled once inline by the reader, so the synchronous part of its handler
//! (notably produce appends) runs in request order; whatever then waits (an `acks=all` fsync,
//! a fetch long-poll) continues in its own task, and the next request is read meanwhile.
//! The writer awaits results in order, so responses never overtake each other.
//!
//! A Fetch (v10+) answer's partition data of 16 KiB or more goes out with `sendfile` from the
//! segment files (see `arus_protocol::splice`): the response's own bytes are written around
//! it, so those records never pass through user space.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use arus_broker::handlers::api_versions;
use arus_broker::{Broker, FileSlice, Outcome, supported_versions};
use arus_protocol::splice::encode_response_spliced;
use arus_protocol::{
    ApiKey, BytesMut, Response, decode_request, encode_response, peek_request_header,
};
use bytes::{Buf, BufMut, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::memory::{Grant, LARGE_FRAME_BYTES, MemoryPool, TooLarge};
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Frames above this size close the connection (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
    /// A request whose first bytes arrived must be whole within this time
    /// (`arus.request.read.timeout.ms`).
    pub request_read_timeout: Duration,
    /// Requests decoded but not yet answered; the reader stops reading past this.
    pub max_in_flight: usize,
    /// Bytes of requests read and not yet answered on this connection past which it is not
    /// read (`arus.queued.max.request.bytes.per.connection`).
    pub max_in_flight_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_frame_bytes: 100 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            request_read_timeout: Duration::from_secs(60),
            max_in_flight: 64,
            max_in_flight_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What the writer does for one request, in order.
enum Slot {
    Ready(Reply),
    Pending(oneshot::Receiver<Reply>),
}

enum Reply {
    Bytes(Bytes),
    /// A frame whose records come from files: `bytes` with each file slice inserted at its
    /// position (positions ascending).
    Spliced {
        bytes: Bytes,
        files: Vec<(usize, FileSlice)>,
    },
    Nothing,
    Close(String),
}

#[derive(Debug)]
enum ReadError {
    Closed,
    Io(std::io::Error),
    Oversized(i64),
    Idle,
    /// A request did not arrive whole within `request_read_timeout`.
    Slow,
    /// The request needs more memory than the pool can ever grant.
    Memory(TooLarge),
}

/// Reads beyond the current frame by at least this much, so that small pipelined requests
/// arrive several per `read`.
const READ_AHEAD: usize = 64 * 1024;
/// How long an empty read buffer is kept for the next request before it is released.
const KEEP_WHILE_BUSY: Duration = Duration::from_millis(100);
/// A large frame's own buffer starts this far beyond the bytes already read.
const LARGE_FIRST_BYTES: usize = 4096;
/// A large frame's buffer grows by at most this much per step (and never past the frame).
const MAX_GROWTH: usize = 1024 * 1024;

/// Bytes of requests read and not yet answered on one connection; the reader waits while
/// they exceed the per-connection cap.
#[derive(Default)]
struct InFlight {
    bytes: AtomicUsize,
    done: Notify,
}

/// A frame's bytes on their way through decoding and handling: holds their memory grant and
/// their share of the connection's in-flight bytes until the request is answered.
struct FrameLease {
    _grant: Grant,
    len: usize,
    in_flight: Arc<InFlight>,
}

impl Drop for FrameLease {
    fn drop(&mut self) {
        self.in_flight.bytes.fetch_sub(self.len, Ordering::AcqRel);
        self.in_flight.done.notify_waiters();
    }
}

/// Frames from one connection.
///
/// Small frames (up to [`LARGE_FRAME_BYTES`]) are read into one buffer that is reused while
/// requests keep arriving: each frame is split off the front and, once every part of it has
/// been dropped, `reserve` reclaims the space instead of allocating. A connection that has
/// nothing buffered holds no buffer at all, so idle connections cost no request memory.
///
/// A large frame is read into a buffer of its own that grows as its bytes arrive
/// (`reserve_exact`, at most [`MAX_GROWTH`] per step: a large allocation's `realloc` moves
/// pages with `mremap` instead of copying), so a length prefix alone never sizes an
/// allocation.
///
/// Every byte of buffer capacity is granted by the [`MemoryPool`] before it is allocated.
struct FrameReader {
    reader: OwnedReadHalf,
    buf: BytesMut,
    /// The pool's grant for `buf`'s capacity.
    held: Grant,
    pool: Arc<MemoryPool>,
    in_flight: Arc<InFlight>,
}

impl FrameReader {
    fn new(reader: OwnedReadHalf, pool: Arc<MemoryPool>) -> FrameReader {
        FrameReader {
            reader,
            buf: BytesMut::new(),
            held: pool.empty(),
            pool,
            in_flight: Arc::default(),
        }
    }

    /// Reads once into `buf`'s spare capacity, within `deadline`.
    async fn read_some(
        reader: &mut OwnedReadHalf,
        buf: &mut impl bytes::BufMut,
        deadline: Instant,
        slow: bool,
    ) -> Result<(), ReadError> {
        match tokio::time::timeout_at(deadline, reader.read_buf(buf)).await {
            Err(_) if slow => Err(ReadError::Slow),
            Err(_) => Err(ReadError::Idle),
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ReadError::Io(e)),
        }
    }

    /// The deadline of the next read: the idle timeout, or the request's own deadline once
    /// its first bytes are here; and whether it is the latter.
    fn deadline(limits: &ConnectionLimits, started: Option<Instant>) -> (Instant, bool) {
        let idle = Instant::now() + limits.idle_timeout;
        match started {
            Some(t) if t + limits.request_read_timeout < idle => {
                (t + limits.request_read_timeout, true)
            }
            _ => (idle, false),
        }
    }

    /// Reads until the pooled buffer holds `want` bytes (`want` ≤ a small frame), growing it
    /// only as bytes arrive and only with memory granted first.
    async fn fill(
        &mut self,
        want: usize,
        limits: &ConnectionLimits,
        started: &mut Option<Instant>,
    ) -> Result<(), ReadError> {
        while self.buf.len() < want {
            if self.buf.is_empty() && self.buf.capacity() > 0 {
                // Nothing buffered. A busy client's next request is usually on its way: keep
                // the buffer (and its warm pages) a moment for it; an idle connection then
                // holds no request memory while it waits.
                let ready = tokio::time::timeout(KEEP_WHILE_BUSY, self.reader.readable()).await;
                if !matches!(ready, Ok(Ok(()))) {
                    self.buf = BytesMut::new();
                    self.held.shrink_to(0);
                }
            }
            if self.buf.is_empty() && self.buf.capacity() == 0 {
                let (deadline, slow) = Self::deadline(limits, *started);
                match tokio::time::timeout_at(deadline, self.reader.readable()).await {
                    Err(_) if slow => return Err(ReadError::Slow),
                    Err(_) => return Err(ReadError::Idle),
                    Ok(Err(e)) => return Err(ReadError::Io(e)),
                    Ok(Ok(())) => {}
                }
            }
            if self.buf.capacity() == self.buf.len() {
                let add = (want - self.buf.len()).max(READ_AHEAD);
                // `reserve` reclaims the front or allocates at most max(2 × capacity,
                // len + add): grant that much first, give back what was not used.
                let bound = (self.buf.len() + add).max(2 * self.buf.capacity());
                if bound > self.held.bytes() {
                    let more = self
                        .pool
                        .acquire(bound - self.held.bytes(), false)
                        .await
                        .map_err(ReadError::Memory)?;
                    self.held.absorb(more);
                }
                self.buf.reserve(add);
                self.held.shrink_to(self.buf.capacity());
            }
            let (deadline, slow) = Self::deadline(limits, *started);
            Self::read_some(&mut self.reader, &mut self.buf, deadline, slow).await?;
            started.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Waits while this connection's unanswered requests hold more than its cap.
    async fn wait_for_room(&self, limits: &ConnectionLimits) {
        loop {
            let done = self.in_flight.done.notified();
            if self.in_flight.bytes.load(Ordering::Acquire) <= limits.max_in_flight_bytes {
                return;
            }
            done.await;
        }
    }

    /// The next frame's bytes (without the size prefix), with the lease that keeps their
    /// memory accounted until the request is answered.
    async fn next(&mut self, limits: &ConnectionLimits) -> Result<(Bytes, FrameLease), ReadError> {
        self.wait_for_room(limits).await;
        let mut started = (!self.buf.is_empty()).then(Instant::now);
        self.fill(4, limits, &mut started).await?;
        let len = i64::from(i32::from_be_bytes([
            self.buf[0],
            self.buf[1],
            self.buf[2],
            self.buf[3],
        ]));
        if len <= 0 || len as usize > limits.max_frame_bytes {
            return Err(ReadError::Oversized(len));
        }
        let len = len as usize;
        let (frame, grant) = if len <= LARGE_FRAME_BYTES {
            self.fill(4 + len, limits, &mut started).await?;
            let before = self.buf.capacity();
            self.buf.advance(4);
            let frame = self.buf.split_to(len).freeze();
            (frame, self.held.split(before - self.buf.capacity()))
        } else {
            self.read_large(len, limits, &mut started).await?
        };
        self.in_flight.bytes.fetch_add(len, Ordering::AcqRel);
        let lease = FrameLease {
            _grant: grant,
            len,
            in_flight: self.in_flight.clone(),
        };
        Ok((frame, lease))
    }

    /// Reads a frame above [`LARGE_FRAME_BYTES`] into a buffer of its own, counted against
    /// the pool's large-request share.
    async fn read_large(
        &mut self,
        len: usize,
        limits: &ConnectionLimits,
        started: &mut Option<Instant>,
    ) -> Result<(Bytes, Grant), ReadError> {
        self.buf.advance(4);
        let have = self.buf.len().min(len);
        let mut grant = self.pool.empty();
        let mut body: Vec<u8> = Vec::new();
        // Room for what is here and a page more: a client that announces a huge frame and
        // stops holds next to nothing until it sends more.
        let first = (have + LARGE_FIRST_BYTES).min(len);
        grant.absorb(
            self.pool
                .acquire(first, true)
                .await
                .map_err(ReadError::Memory)?,
        );
        body.reserve_exact(first);
        body.extend_from_slice(&self.buf.split_to(have));
        if self.buf.is_empty() {
            // The small-frame buffer is not needed while this frame arrives.
            self.buf = BytesMut::new();
            self.held.shrink_to(0);
        }
        while body.len() < len {
            if body.capacity() == body.len() {
                // Grows with what arrived (doubling, capped): bytes, not promises.
                let add = body
                    .len()
                    .clamp(READ_AHEAD, MAX_GROWTH)
                    .min(len - body.len());
                grant.absorb(
                    self.pool
                        .acquire(add, true)
                        .await
                        .map_err(ReadError::Memory)?,
                );
                body.reserve_exact(add);
            }
            let (deadline, slow) = Self::deadline(limits, *started);
            let room = len - body.len();
            let mut window = (&mut body).limit(room);
            Self::read_some(&mut self.reader, &mut window, deadline, slow).await?;
        }
        Ok((Bytes::from(body), grant))
    }
}

fn encode(correlation_id: i32, api_key: ApiKey, version: i16, response: &Response) -> Reply {
    let mut out = BytesMut::new();
    match encode_response(correlation_id, api_key, version, response, &mut out) {
        Ok(()) => Reply::Bytes(out.freeze()),
        Err(e) => Reply::Close(format!(
            "cannot encode {} v{version} response: {e}",
            api_key.name()
        )),
    }
}

fn encode_spliced(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &Response,
    files: Vec<Option<FileSlice>>,
) -> Reply {
    let plan = files.iter().map(|f| f.as_ref().map(|f| f.len)).collect();
    match encode_response_spliced(correlation_id, api_key, version, response, plan) {
        Ok(frame) => Reply::Spliced {
            bytes: frame.bytes.freeze(),
            files: frame
                .holes
                .iter()
                .map(|h| h.position)
                .zip(files.into_iter().flatten())
                .collect(),
        },
        Err(e) => Reply::Close(format!(
            "cannot encode {} v{version} response: {e}",
            api_key.name()
        )),
    }
}

/// Sends `slice` of a segment file to the socket with `sendfile(2)`: the kernel moves the
/// page-cache pages to the socket without a copy through user space.
async fn send_file(writer: &OwnedWriteHalf, slice: &FileSlice) -> std::io::Result<()> {
    let stream: &TcpStream = writer.as_ref();
    let (socket, file) = (stream.as_raw_fd(), slice.file.as_raw_fd());
    let mut offset = libc::off_t::try_from(slice.position)
        .map_err(|_| std::io::Error::other("file position beyond off_t"))?;
    let mut left = slice.len;
    while left > 0 {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the whole call (the stream and the
            // `Arc<File>` are borrowed), `offset` is a valid `off_t` we own, and sendfile
            // writes nothing but `offset`.
            let n = unsafe { libc::sendfile(socket, file, &mut offset, left) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            // The file ended early: the answer cannot be completed, and the frame's size
            // promised these bytes, so the connection must close.
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} ended before the data to send", slice.path.display()),
                ));
            }
            Ok(n) => left -= n.min(left),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a spliced frame: its bytes, with each file slice sent in its place.
async fn write_spliced(
    writer: &mut OwnedWriteHalf,
    bytes: &Bytes,
    files: &[(usize, FileSlice)],
) -> std::io::Result<()> {
    let mut at = 0;
    for (position, slice) in files {
        writer.write_all(&bytes[at..*position]).await?;
        send_file(writer, slice).await?;
        at = *position;
    }
    writer.write_all(&bytes[at..]).await
}

fn to_reply(outcome: Outcome, correlation_id: i32, api_key: ApiKey, version: i16) -> Reply {
    match outcome {
        Outcome::Respond(r) => encode(correlation_id, api_key, version, &r),
        Outcome::RespondWithFiles { response, files } => {
            encode_spliced(correlation_id, api_key, version, &response, files)
        }
        Outcome::NoResponse => Reply::Nothing,
        Outcome::Close(reason) => Reply::Close(reason),
    }
}

/// Serves one connection until the client closes it, a request is refused, or `stop` turns
/// true (broker shutdown): then no further request is read, and the replies to those already
/// read are sent before the connection closes.
pub async fn run(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    limits: ConnectionLimits,
    pool: Arc<MemoryPool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    debug!(%peer, "connection opened");
    let (reader, mut writer) = stream.into_split();
    let mut frames = FrameReader::new(reader, pool);
    // Handlers still waiting (long-poll fetch, acks=all) that may simply be dropped if the
    // peer goes away: they wait on notifications and change nothing when cancelled.
    let mut cancellable: Vec<tokio::task::AbortHandle> = Vec::new();
    let mut peer_gone = false;
    let (tx, mut rx) = mpsc::channel::<Slot>(limits.max_in_flight.max(1));

    let writer_task = tokio::spawn(async move {
        while let Some(slot) = rx.recv().await {
            let reply = match slot {
                Slot::Ready(r) => r,
                Slot::Pending(rx) => rx.await.unwrap_or_else(|_| {
                    Reply::Close("request handler ended without a reply".into())
                }),
            };
            match reply {
                Reply::Bytes(b) => {
                    if let Err(e) = writer.write_all(&b).await {
                        debug!(%peer, error = %e, "write failed");
                        return;
                    }
                }
                Reply::Spliced { bytes, files } => {
                    if let Err(e) = write_spliced(&mut writer, &bytes, &files).await {
                        if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            warn!(%peer, error = %e, "closing connection: fetched data vanished");
                        } else {
                            debug!(%peer, error = %e, "write failed");
                        }
                        return;
                    }
                }
                Reply::Nothing => {}
                Reply::Close(reason) => {
                    info!(%peer, reason = %reason, "closing connection");
                    let _ = writer.shutdown().await;
                    return;
                }
            }
        }
        let _ = writer.shutdown().await;
    });

    loop {
        let next = tokio::select! {
            next = frames.next(&limits) => next,
            _ = stop.wait_for(|stopping| *stopping) => {
                debug!(%peer, "closing connection: broker shutting down");
                break;
            }
        };
        let (frame, lease) = match next {
            Ok(f) => f,
            Err(ReadError::Closed) => {
                peer_gone = true;
                break;
            }
            Err(ReadError::Idle) => {
                debug!(%peer, "closing idle connection");
                break;
            }
            Err(ReadError::Slow) => {
                warn!(%peer, timeout_ms = limits.request_read_timeout.as_millis() as u64, "closing connection: a request did not arrive whole within arus.request.read.timeout.ms");
                break;
            }
            Err(ReadError::Memory(e)) => {
                warn!(%peer, error = %e, "closing connection: raise queued.max.request.bytes");
                break;
            }
            Err(ReadError::Oversized(len)) => {
                warn!(%peer, frame_len = len, max = limits.max_frame_bytes, "closing connection: invalid frame size");
                break;
            }
            Err(ReadError::Io(e)) => {
                debug!(%peer, error = %e, "read failed");
                peer_gone = true;
                break;
            }
        };
        let Some((key, version, correlation_id)) = peek_request_header(&frame) else {
            warn!(%peer, "closing connection: request header too short");
            break;
        };
        let Some(api_key) = ApiKey::from_i16(key) else {
            warn!(%peer, api_key = key, "closing connection: unknown API key");
            break;
        };
        let supported = supported_versions(api_key);
        if api_key == ApiKey::ApiVersions
            && let Some((_, max)) = supported
            && version > max
        {
            // KIP-511: answer in v0 with our ranges so the client can retry.
            let reply = encode(
                correlation_id,
                api_key,
                0,
                &Response::ApiVersions(api_versions::unsupported_version()),
            );
            if tx.send(Slot::Ready(reply)).await.is_err() {
                break;
            }
            continue;
        }
        match supported {
            Some((min, max)) if (min..=max).contains(&version) => {}
            _ => {
                warn!(%peer, api = api_key.name(), version, "closing connection: unsupported API or version");
                break;
            }
        }
        let (header, request) = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, api = api_key.name(), version, error = %e, "closing connection: malformed request");
                break;
            }
        };
        let mut fut = Box::pin({
            let broker = broker.clone();
            async move {
                let outcome = broker.handle_from(&header, request, Some(peer.ip())).await;
                to_reply(outcome, correlation_id, api_key, version)
            }
        });
        let slot = match futures::poll!(fut.as_mut()) {
            Poll::Ready(reply) => {
                // The request's bytes are no longer referenced: return their memory.
                drop(lease);
                Slot::Ready(reply)
            }
            Poll::Pending => {
                // A produce has appended (copied) its records in that first poll and now
                // only waits (acks=all): its bytes are gone, and so is their memory. Other
                // requests may still hold theirs until answered.
                let lease = (api_key != ApiKey::Produce).then_some(lease);
                let (done_tx, done_rx) = oneshot::channel();
                let task = tokio::spawn(async move {
                    let reply = fut.await;
                    drop(lease);
                    let _ = done_tx.send(reply);
                });
                if matches!(api_key, ApiKey::Fetch | ApiKey::Produce) {
                    cancellable.retain(|t| !t.is_finished());
                    cancellable.push(task.abort_handle());
                }
                Slot::Pending(done_rx)
            }
        };
        if tx.send(slot).await.is_err() {
            break;
        }
    }
    drop(tx);
    if peer_gone {
        // The client closed (or reset) the connection: nobody will read the answers, so the
        // socket, its descriptor and the waits behind it are released now rather than when a
        // long poll or an acks=all wait ends. Other handlers (group and transaction
        // coordinator work, which completes for other clients too) finish on their own.
        writer_task.abort();
        for task in cancellable {
            task.abort();
        }
        debug!(%peer, "connection closed by the peer");
        return;
    }
    let _ = writer_task.await;
    debug!(%peer, "connection closed");
}
