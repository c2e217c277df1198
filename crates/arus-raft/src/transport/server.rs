//! The server side: answers the RPCs of one connection with the local openraft node.

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::frame::{PREAMBLE, read_frame, write_frame};
use super::rpc::{RpcRequest, RpcResponse, decode, encode};
use crate::error::TransportError;
use crate::types::Raft;

/// Serves quorum RPCs for one node.
#[derive(Clone)]
pub struct RaftServer {
    raft: Raft,
    max_frame_bytes: u32,
}

impl RaftServer {
    pub fn new(raft: Raft, max_frame_bytes: u32) -> Self {
        Self {
            raft,
            max_frame_bytes,
        }
    }

    /// Serves an accepted connection until the peer closes it; the peer's [`PREAMBLE`] has not
    /// been read yet (a listener that peeked at it to route the connection leaves it).
    pub async fn serve_connection(&self, mut stream: TcpStream) -> Result<(), TransportError> {
        let mut preamble = [0u8; PREAMBLE.len()];
        stream.read_exact(&mut preamble).await?;
        if preamble != PREAMBLE {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "connection without the quorum preamble closed");
            return Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a quorum connection",
            )));
        }
        stream.set_nodelay(true)?;
        let max = self.max_frame_bytes;
        while let Some(payload) = read_frame(&mut stream, max).await? {
            let request: RpcRequest = decode(&payload, max)?;
            let response = self.handle(request).await;
            write_frame(&mut stream, &encode(&response)?, max).await?;
        }
        Ok(())
    }

    async fn handle(&self, request: RpcRequest) -> RpcResponse {
        match request {
            RpcRequest::AppendEntries(rpc) => {
                RpcResponse::AppendEntries(self.raft.append_entries(rpc).await)
            }
            RpcRequest::Vote(rpc) => RpcResponse::Vote(self.raft.vote(rpc).await),
            RpcRequest::InstallSnapshot(rpc) => {
                RpcResponse::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
        }
    }

    /// Accepts connections on `listener` and serves each in its own task, until aborted.
    pub fn spawn_accept_loop(&self, listener: TcpListener) -> JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let server = server.clone();
                        tokio::spawn(async move {
                            match server.serve_connection(stream).await {
                                Ok(()) => {}
                                Err(
                                    e @ (TransportError::FrameTooLarge { .. }
                                    | TransportError::Decode(_)),
                                ) => {
                                    tracing::warn!(%peer, error = %e, "quorum connection closed on a bad frame");
                                }
                                Err(e) => {
                                    tracing::debug!(%peer, error = %e, "quorum connection ended")
                                }
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a quorum connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        })
    }
}

/// Binds a listener for a standalone quorum (tests, or a node without a shared CONTROLLER
/// listener); port 0 picks a free port.
pub async fn bind(address: &str) -> Result<(TcpListener, SocketAddr), TransportError> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
