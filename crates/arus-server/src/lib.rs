//! Sockets and framing: accepts TCP connections, reads size-prefixed Kafka frames, hands
//! decoded requests to [`arus_broker::Broker`] and writes responses back in request order.
//! It knows nothing of topics or logs; the broker knows nothing of sockets.

mod connection;
pub mod descriptors;
pub mod memory;
pub mod quotas;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arus_broker::Broker;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use connection::ConnectionLimits;
use memory::MemoryPool;
use quotas::{ConnectionQuotas, QuotaLimits};

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
    let config = &broker.config;
    let limits = ConnectionLimits {
        max_frame_bytes: config.socket_request_max_bytes,
        idle_timeout: std::time::Duration::from_millis(config.connections_max_idle_ms),
        request_read_timeout: std::time::Duration::from_millis(config.request_read_timeout_ms),
        max_in_flight_bytes: config.queued_max_request_bytes_per_connection,
        ..ConnectionLimits::default()
    };
    let pool = MemoryPool::new(config.queued_max_request_bytes);
    let quotas = ConnectionQuotas::new();
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
        let pool = pool.clone();
        let quotas = quotas.clone();
        accept_tasks.push(tokio::spawn(async move {
            let mut backoff = AcceptBackoff::default();
            let mut quota_limits = QuotaLimitsCache::default();
            loop {
                quotas.wait_for_slot(|| quota_limits.get(&broker)).await;
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        backoff.succeeded();
                        let admitted = match quotas.admit(peer.ip(), &quota_limits.get(&broker)) {
                            Ok(a) => a,
                            Err(limit) => {
                                // Kafka's TooManyConnectionsException: closed before any read.
                                backoff.log_refusal(peer, limit);
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let broker = broker.clone();
                        let limits = limits.clone();
                        let stop_rx = stop_rx.clone();
                        let alive = alive_tx.clone();
                        let pool = pool.clone();
                        tokio::spawn(async move {
                            connection::run(broker, stream, peer, limits, pool, stop_rx).await;
                            drop(admitted);
                            drop(alive);
                        });
                    }
                    Err(e) => backoff.failed(e).await,
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

/// The quota limits from the broker's effective configs, re-parsed only when they change.
#[derive(Default)]
struct QuotaLimitsCache {
    raw: Option<(i64, i64, String)>,
    limits: QuotaLimits,
}

impl QuotaLimitsCache {
    fn get(&mut self, broker: &Broker) -> QuotaLimits {
        let c = &broker.config;
        let raw = (
            c.effective_i64("max.connections", i64::from(i32::MAX)),
            c.effective_i64("max.connections.per.ip", i64::from(i32::MAX)),
            c.effective("max.connections.per.ip.overrides")
                .unwrap_or_default(),
        );
        if self.raw.as_ref() != Some(&raw) {
            let per_ip_overrides = quotas::parse_overrides(&raw.2).unwrap_or_else(|e| {
                warn!(error = %e, "ignoring max.connections.per.ip.overrides");
                Default::default()
            });
            self.limits = QuotaLimits {
                max_connections: usize::try_from(raw.0).unwrap_or(0),
                max_connections_per_ip: usize::try_from(raw.1).unwrap_or(0),
                per_ip_overrides,
            };
            self.raw = Some(raw);
        }
        self.limits.clone()
    }
}

/// How often a repeated accept failure or refusal is logged.
const LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
const BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(10);
const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Accept failures (out of descriptors: EMFILE, ENFILE) back off exponentially instead of
/// spinning, and are logged once per [`LOG_INTERVAL`] with a count of the others.
#[derive(Default)]
struct AcceptBackoff {
    delay: Option<std::time::Duration>,
    last_log: Option<std::time::Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    fn succeeded(&mut self) {
        self.delay = None;
    }

    fn should_log(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self.last_log.is_some_and(|t| now - t < LOG_INTERVAL) {
            self.unlogged += 1;
            return None;
        }
        self.last_log = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    async fn failed(&mut self, e: std::io::Error) {
        let delay = self.delay.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX));
        self.delay = Some(delay);
        if let Some(others) = self.should_log() {
            warn!(error = %e, retry_in_ms = delay.as_millis() as u64, similar_since_last_log = others, "accept failed");
        }
        tokio::time::sleep(delay).await;
    }

    fn log_refusal(&mut self, peer: SocketAddr, limit: usize) {
        if let Some(others) = self.should_log() {
            warn!(%peer, limit, similar_since_last_log = others, "refused connection: its address already has max.connections.per.ip connections");
        }
    }
}
