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
use std::task::Poll;
use std::time::Duration;

use arus_broker::handlers::api_versions;
use arus_broker::{Broker, FileSlice, Outcome, supported_versions};
use arus_protocol::splice::encode_response_spliced;
use arus_protocol::{
    ApiKey, BytesMut, Response, decode_request, encode_response, peek_request_header,
};
use bytes::{Buf, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Frames above this size close the connection (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
    /// Requests decoded but not yet answered; the reader stops reading past this.
    pub max_in_flight: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_frame_bytes: 100 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            max_in_flight: 64,
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
}

/// Reads beyond the current frame by at least this much, so that small pipelined requests
/// arrive several per `read`.
const READ_AHEAD: usize = 64 * 1024;
/// The buffer grows by at most this much per read while a large frame arrives, so a length
/// prefix alone never sizes an allocation.
const MAX_GROWTH: usize = 1024 * 1024;

/// An empty read buffer larger than this is released rather than kept for the next frame.
const KEEP_IDLE_BYTES: usize = 4 * 1024 * 1024;

/// Frames from one connection, read into one buffer that is reused: each frame is split off
/// the front and, once every part of it has been dropped (requests are decoded, their
/// records appended or copied, long before the next frames pile up), `reserve` reclaims the
/// space instead of allocating — no fresh pages per request.
struct FrameReader {
    reader: OwnedReadHalf,
    buf: BytesMut,
}

impl FrameReader {
    fn new(reader: OwnedReadHalf) -> FrameReader {
        FrameReader {
            reader,
            buf: BytesMut::new(),
        }
    }

    /// Reads until the buffer holds `want` bytes, growing it only as bytes arrive.
    async fn fill(&mut self, want: usize, limits: &ConnectionLimits) -> Result<(), ReadError> {
        while self.buf.len() < want {
            let missing = want - self.buf.len();
            self.buf.reserve(missing.clamp(READ_AHEAD, MAX_GROWTH));
            match tokio::time::timeout(limits.idle_timeout, self.reader.read_buf(&mut self.buf))
                .await
            {
                Err(_) => return Err(ReadError::Idle),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ReadError::Io(e)),
            }
        }
        Ok(())
    }

    /// The next frame's bytes (without the size prefix).
    async fn next(&mut self, limits: &ConnectionLimits) -> Result<Bytes, ReadError> {
        self.fill(4, limits).await?;
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
        self.fill(4 + len, limits).await?;
        self.buf.advance(4);
        let frame = self.buf.split_to(len).freeze();
        if self.buf.is_empty() && self.buf.capacity() > KEEP_IDLE_BYTES {
            // A rare huge request should not pin its size for the connection's lifetime.
            self.buf = BytesMut::new();
        }
        Ok(frame)
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
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    debug!(%peer, "connection opened");
    let (reader, mut writer) = stream.into_split();
    let mut frames = FrameReader::new(reader);
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
        let frame = match next {
            Ok(f) => f,
            Err(ReadError::Closed) => break,
            Err(ReadError::Idle) => {
                debug!(%peer, "closing idle connection");
                break;
            }
            Err(ReadError::Oversized(len)) => {
                warn!(%peer, frame_len = len, max = limits.max_frame_bytes, "closing connection: invalid frame size");
                break;
            }
            Err(ReadError::Io(e)) => {
                debug!(%peer, error = %e, "read failed");
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
            Poll::Ready(reply) => Slot::Ready(reply),
            Poll::Pending => {
                let (done_tx, done_rx) = oneshot::channel();
                tokio::spawn(async move {
                    let _ = done_tx.send(fut.await);
                });
                Slot::Pending(done_rx)
            }
        };
        if tx.send(slot).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer_task.await;
    debug!(%peer, "connection closed");
}
