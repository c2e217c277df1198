//! The quorum's RPCs over TCP (wire format in [`frame`]).

pub mod client;
pub mod frame;
pub mod rpc;
pub mod server;

use std::time::Duration;

pub use client::{PeerActivity, PeerTimes, TcpNetworkFactory};
pub use frame::{DEFAULT_MAX_FRAME_BYTES, PREAMBLE};
pub use server::{RaftServer, bind};

/// Limits of the TCP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSettings {
    /// The largest frame sent or accepted; a peer announcing more is disconnected.
    pub max_frame_bytes: u32,
    /// How long establishing a connection to a peer may take.
    pub connect_timeout: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            connect_timeout: Duration::from_secs(1),
        }
    }
}
