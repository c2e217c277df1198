//! Sockets and framing: accepts TCP connections, reads size-prefixed Kafka frames, hands
//! decoded requests to [`arus_broker::Broker`] and writes responses back in request order.
//! It knows nothing of topics or logs; the broker knows nothing of sockets.

mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arus_broker::Broker;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use connection::ConnectionLimits;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Binds every configured listener; returns them with their actual local addresses.
pub async fn bind(broker: &Broker) -> Result<Vec<(TcpListener, SocketAddr)>, ServerError> {
    let mut out = Vec::new();
    for l in &broker.config.listeners {
        let addr = format!("{}:{}", l.host, l.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        out.push((listener, local));
    }
    let ports: Vec<u16> = out.iter().map(|(_, a)| a.port()).collect();
    broker.set_bound_ports(&ports);
    Ok(out)
}

/// How long a shutdown waits for connections to finish the requests they already read.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until `shutdown` resolves; then stops accepting, tells every
/// connection to stop reading requests, and waits (at most [`DRAIN_TIMEOUT`]) until each has
/// answered what it already read — so that nothing still runs against the broker when the
/// caller shuts it down.
pub async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<(TcpListener, SocketAddr)>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ConnectionLimits {
        max_frame_bytes: broker.config.socket_request_max_bytes,
        idle_timeout: std::time::Duration::from_millis(broker.config.connections_max_idle_ms),
        ..ConnectionLimits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection holds a clone; `recv` returns None once all of them are gone.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for (listener, addr) in listeners {
        info!(%addr, "listening");
        let broker = broker.clone();
        let limits = limits.clone();
        let stop_rx = stop_rx.clone();
        let alive_tx = alive_tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let broker = broker.clone();
                        let limits = limits.clone();
                        let stop_rx = stop_rx.clone();
                        let alive = alive_tx.clone();
                        tokio::spawn(async move {
                            connection::run(broker, stream, peer, limits, stop_rx).await;
                            drop(alive);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(alive_tx);
    shutdown.await;
    for t in accept_tasks {
        t.abort();
        // The aborted task drops its `alive_tx` clone once it has stopped.
        let _ = t.await;
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
        .await
        .is_err()
    {
        warn!(
            timeout_s = DRAIN_TIMEOUT.as_secs(),
            "connections still busy at shutdown; closing anyway"
        );
    }
}
