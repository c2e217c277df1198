//! A broker's life in the cluster, as Kafka's `BrokerLifecycleManager` runs it: register
//! with the active controller (its listeners, rack, supported features, log directories and
//! a fresh incarnation id per process), then heartbeat every `broker.heartbeat.interval.ms`
//! with the metadata offset it has applied. The controller unfences the broker once that
//! offset has caught up and fences it when heartbeats stop for `broker.session.timeout.ms`.
//! At shutdown the broker asks for controlled shutdown (`want_shut_down`) and keeps
//! heartbeating until the controller has moved its leaderships away and answers
//! `should_shut_down`, or until a bound passes.
//!
//! A heartbeat answered STALE_BROKER_EPOCH or a registration lost with a controller change
//! makes the broker register again, with the same incarnation id (Kafka's behaviour: the
//! controller recognises the process and keeps it in the same session).

use std::sync::Arc;
use std::time::Duration;

use arus_broker::controller_channel::ControllerChannel;
use arus_protocol::messages::broker_registration_request::{Feature, Listener};
use arus_protocol::messages::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use tokio::sync::watch;
use tracing::{info, warn};

/// The pause between heartbeats while the broker is fenced (Kafka's lifecycle manager
/// retries after 10 ms while it has not caught up).
const FENCED_HEARTBEAT_PAUSE: Duration = Duration::from_millis(10);

/// What the broker registers with.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node_id: i32,
    pub cluster_id: String,
    pub incarnation_id: Uuid,
    /// Advertised broker listeners: (name, host, port, security protocol id).
    pub listeners: Vec<(String, String, u16, i16)>,
    pub rack: Option<String>,
    /// Supported feature ranges: (name, min, max).
    pub features: Vec<(String, i16, i16)>,
    pub log_dir_ids: Vec<Uuid>,
    pub heartbeat_interval: Duration,
}

/// The broker's standing with the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// -1 until registered.
    pub broker_epoch: i64,
    pub fenced: bool,
}

/// Runs until `shutdown` turns true, then performs the controlled shutdown (bounded by
/// `shutdown_timeout`) and returns. `applied` is the metadata offset the broker has applied
/// (its partitions opened, its configs set), which heartbeats report as Kafka's broker
/// reports its loader's last applied offset: the controller unfences the broker, and
/// `arus serve` starts serving, only once the broker can serve what the metadata says.
pub async fn run(
    channel: Arc<dyn ControllerChannel>,
    registration: Registration,
    applied: watch::Receiver<i64>,
    standing: watch::Sender<Standing>,
    mut shutdown: watch::Receiver<bool>,
    shutdown_timeout: Duration,
) {
    let timeout = registration.heartbeat_interval.max(Duration::from_secs(2)) * 2;
    let offset = || *applied.borrow();
    'register: loop {
        let epoch = loop {
            if *shutdown.borrow() {
                return;
            }
            match channel
                .forward(request(&registration), 4, timeout)
                .await
                .map(|f| f.response)
            {
                Ok(Response::BrokerRegistration(r)) if r.error_code == 0 => {
                    info!(
                        node = registration.node_id,
                        epoch = r.broker_epoch,
                        "registered with the controller"
                    );
                    break r.broker_epoch;
                }
                Ok(Response::BrokerRegistration(r)) => {
                    warn!(node = registration.node_id, error = ?ErrorCode::from_code(r.error_code), "registration refused; retrying");
                }
                Ok(other) => warn!(
                    api = other.api_key().name(),
                    "unexpected answer to BrokerRegistration"
                ),
                Err(e) => warn!(error = %e, "cannot register with the controller; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(registration.heartbeat_interval) => {}
                _ = shutdown.changed() => {}
            }
        };
        standing.send_replace(Standing {
            broker_epoch: epoch,
            fenced: true,
        });
        loop {
            let stopping = *shutdown.borrow();
            let beat = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
                broker_id: registration.node_id,
                broker_epoch: epoch,
                current_metadata_offset: offset(),
                want_fence: false,
                want_shut_down: stopping,
                ..Default::default()
            });
            // While stopping, a controller that does not answer at once is not waited for.
            let wait = if stopping {
                Duration::from_secs(1)
            } else {
                timeout
            };
            let mut answered = false;
            let sent = channel.forward(beat, 1, wait).await.map(|f| f.response);
            tracing::debug!(node = registration.node_id, offset = offset(), answer = ?sent, "heartbeat");
            match sent {
                Ok(Response::BrokerHeartbeat(h)) if h.error_code == 0 => {
                    answered = true;
                    standing.send_if_modified(|s| {
                        let changed = s.fenced != h.is_fenced;
                        if changed {
                            info!(
                                node = registration.node_id,
                                fenced = h.is_fenced,
                                "broker standing changed"
                            );
                        }
                        s.fenced = h.is_fenced;
                        changed
                    });
                    if stopping && h.should_shut_down {
                        info!(node = registration.node_id, "controlled shutdown complete");
                        return;
                    }
                }
                Ok(Response::BrokerHeartbeat(h))
                    if h.error_code == ErrorCode::StaleBrokerEpoch.code() =>
                {
                    warn!(
                        node = registration.node_id,
                        "heartbeat with a stale broker epoch; registering again"
                    );
                    continue 'register;
                }
                Ok(Response::BrokerHeartbeat(h)) => {
                    warn!(error = ?ErrorCode::from_code(h.error_code), "heartbeat refused");
                }
                Ok(other) => warn!(
                    api = other.api_key().name(),
                    "unexpected answer to BrokerHeartbeat"
                ),
                Err(e) => warn!(error = %e, "heartbeat failed"),
            }
            if stopping {
                // The controlled shutdown is bounded: a controller that cannot be reached
                // must not keep the process alive.
                let until = tokio::time::Instant::now() + shutdown_timeout;
                loop {
                    if tokio::time::Instant::now() >= until {
                        warn!(
                            node = registration.node_id,
                            "controlled shutdown not confirmed in time; stopping anyway"
                        );
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let beat = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
                        broker_id: registration.node_id,
                        broker_epoch: epoch,
                        current_metadata_offset: offset(),
                        want_shut_down: true,
                        ..Default::default()
                    });
                    if let Ok(Response::BrokerHeartbeat(h)) = channel
                        .forward(beat, 1, Duration::from_secs(1))
                        .await
                        .map(|f| f.response)
                        && h.error_code == 0
                        && h.should_shut_down
                    {
                        info!(node = registration.node_id, "controlled shutdown complete");
                        return;
                    }
                }
            }
            // Answered but still fenced, the broker is waiting to be admitted (catching up):
            // as Kafka's BrokerLifecycleManager, ask again soon rather than a whole interval
            // later, so that a start is not delayed by up to `broker.heartbeat.interval.ms`.
            // (Failures keep the full interval: no tight loop against a missing controller.)
            let pause = if answered && standing.borrow().fenced {
                FENCED_HEARTBEAT_PAUSE.min(registration.heartbeat_interval)
            } else {
                registration.heartbeat_interval
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn request(r: &Registration) -> Request {
    Request::BrokerRegistration(BrokerRegistrationRequest {
        broker_id: r.node_id,
        cluster_id: r.cluster_id.clone(),
        incarnation_id: r.incarnation_id,
        listeners: r
            .listeners
            .iter()
            .map(|(name, host, port, protocol)| Listener {
                name: name.clone(),
                host: host.clone(),
                port: *port,
                security_protocol: *protocol,
                ..Default::default()
            })
            .collect(),
        features: r
            .features
            .iter()
            .map(|(name, min, max)| Feature {
                name: name.clone(),
                min_supported_version: *min,
                max_supported_version: *max,
                ..Default::default()
            })
            .collect(),
        rack: r.rack.clone(),
        log_dirs: r.log_dir_ids.clone(),
        previous_broker_epoch: -1,
        ..Default::default()
    })
}
