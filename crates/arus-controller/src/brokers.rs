//! Broker registration, heartbeats, session expiry and unregistration (Kafka's
//! `ClusterControlManager.registerBroker`, `ReplicationControlManager.processBrokerHeartbeat`,
//! `maybeFenceOneStaleBroker` and `unregisterBroker`).

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::messages::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use arus_protocol::metadata::RegisterBrokerRecord;
use arus_protocol::metadata::register_broker_record::{BrokerEndpoint, BrokerFeature};
use arus_protocol::{ErrorCode, Uuid};

use crate::election::Decider;
use crate::error::ControllerError;
use crate::features::METADATA_VERSION;
use crate::heartbeats::{BrokerControlState, HeartbeatRequest, Heartbeats};
use crate::records::MetadataRecord;

/// The answer to a BrokerHeartbeat (Kafka's `BrokerHeartbeatReply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub in_controlled_shutdown: bool,
    pub should_shut_down: bool,
}

/// Kafka's `DirectoryId.reserved`: the first 100 ids (0 in the high bits) are reserved.
fn reserved_directory(id: &Uuid) -> bool {
    let b = id.as_bytes();
    b[..8].iter().all(|&x| x == 0) && u64::from_be_bytes(b[8..].try_into().unwrap_or([0; 8])) < 100
}

fn unsupported(name: &str, finalized: i16, min: i16, max: i16) -> ControllerError {
    ControllerError::new(
        ErrorCode::UnsupportedVersion,
        format!(
            "Unable to register because the broker does not support finalized version {finalized} of {name}. The broker wants a version between {min} and {max}, inclusive."
        ),
    )
}

/// BrokerRegistration: the records to append and the broker's epoch.
///
/// `next_offset` is the offset the first record of this batch will commit at (Kafka's
/// `offsetControl.nextWriteOffset()`), which becomes a new incarnation's broker epoch.
pub fn register_broker(
    d: &Decider<'_>,
    heartbeats: &mut Heartbeats,
    request: &BrokerRegistrationRequest,
    next_offset: i64,
    now_ms: i64,
) -> Result<(Vec<MetadataRecord>, i64), ControllerError> {
    if request.cluster_id != d.config.cluster_id {
        return Err(ControllerError::new(
            ErrorCode::InconsistentClusterId,
            format!(
                "Expected cluster ID {}, but got cluster ID {}",
                d.config.cluster_id, request.cluster_id
            ),
        ));
    }
    let broker_id = request.broker_id;
    let existing = d.state.brokers.get(&broker_id);
    if let Some(existing) = existing
        && heartbeats.has_valid_session(broker_id, existing.epoch, now_ms)
        && request.incarnation_id != existing.incarnation_id
    {
        return Err(ControllerError::new(
            ErrorCode::DuplicateBrokerRegistration,
            "Another broker is registered with that broker id. If the broker was recently restarted this should self-resolve once the heartbeat manager expires the broker's session.",
        ));
    }
    if request.is_migrating_zk_broker {
        return Err(ControllerError::new(
            ErrorCode::BrokerIdNotRegistered,
            "Controller does not support registering ZK brokers.",
        ));
    }
    let mv = d.metadata_version();
    if mv.is_directory_assignment_supported() {
        validate_log_dirs(d, broker_id, &request.log_dirs)?;
    }
    let features = check_features(d, request)?;
    let new_incarnation = existing.is_none_or(|e| e.incarnation_id != request.incarnation_id);
    let mut records = Vec::new();
    let mut record = RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id: request.incarnation_id,
        rack: request.rack.clone(),
        end_points: request
            .listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        features,
        log_dirs: if mv.is_directory_assignment_supported() {
            request.log_dirs.clone()
        } else {
            Vec::new()
        },
        ..RegisterBrokerRecord::default()
    };
    if new_incarnation {
        let clean = existing.is_some_and(|e| e.epoch == request.previous_broker_epoch);
        d.broker_shutdown(broker_id, clean, &mut records);
        match existing {
            None => tracing::info!(
                broker_id,
                incarnation = %request.incarnation_id,
                epoch = next_offset,
                "no previous registration found for broker; registering it"
            ),
            Some(e) => tracing::info!(
                broker_id,
                previous = %e.incarnation_id,
                incarnation = %request.incarnation_id,
                epoch = next_offset,
                clean_shutdown = clean,
                "registering a new incarnation of broker"
            ),
        }
        record.broker_epoch = next_offset;
        // RegisterBrokerRecord's `fenced` defaults to true: a new incarnation starts fenced.
        record.fenced = true;
    } else if let Some(e) = existing {
        tracing::info!(
            broker_id,
            epoch = e.epoch,
            "amending registration of broker; epoch unchanged"
        );
        record.fenced = e.fenced;
        record.in_controlled_shutdown = e.in_controlled_shutdown;
        record.broker_epoch = e.epoch;
    }
    let (epoch, fenced) = (record.broker_epoch, record.fenced);
    records.push(MetadataRecord::RegisterBroker(record));
    if new_incarnation {
        heartbeats.remove(broker_id);
    }
    heartbeats.register(broker_id, fenced);
    Ok((records, epoch))
}

fn validate_log_dirs(
    d: &Decider<'_>,
    broker_id: i32,
    dirs: &[Uuid],
) -> Result<(), ControllerError> {
    let invalid = |m: String| ControllerError::new(ErrorCode::InvalidRegistration, m);
    if dirs.is_empty() {
        return Err(invalid("No directories specified in request".into()));
    }
    if dirs.iter().any(reserved_directory) {
        return Err(invalid("Reserved directory ID in request".into()));
    }
    if dirs.iter().collect::<BTreeSet<_>>().len() != dirs.len() {
        return Err(invalid("Duplicate directory ID in request".into()));
    }
    for dir in dirs {
        if let Some(other) = d
            .state
            .brokers
            .values()
            .find(|b| b.id != broker_id && b.log_dirs.contains(dir))
        {
            return Err(invalid(format!(
                "Broker {} is already registered with directory {dir}",
                other.id
            )));
        }
    }
    Ok(())
}

/// Kafka's feature checks at registration: every range the broker sends must contain the
/// finalized level, `metadata.version` must be sent, and every finalized feature the broker
/// does not mention must be finalized at 0.
fn check_features(
    d: &Decider<'_>,
    request: &BrokerRegistrationRequest,
) -> Result<Vec<BrokerFeature>, ControllerError> {
    let mut unverified: BTreeMap<&str, i16> = d
        .state
        .features
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let mut out = Vec::new();
    for f in &request.features {
        let default = if f.name == METADATA_VERSION { 1 } else { 0 };
        let finalized = d.state.features.get(&f.name).copied().unwrap_or(default);
        if finalized < f.min_supported_version || finalized > f.max_supported_version {
            return Err(unsupported(
                &f.name,
                finalized,
                f.min_supported_version,
                f.max_supported_version,
            ));
        }
        out.push(BrokerFeature {
            name: f.name.clone(),
            min_supported_version: f.min_supported_version,
            max_supported_version: f.max_supported_version,
        });
        unverified.remove(f.name.as_str());
    }
    if !request.features.iter().any(|f| f.name == METADATA_VERSION) {
        return Err(ControllerError::new(
            ErrorCode::InvalidRegistration,
            "Request features do not contain 'metadata.version'",
        ));
    }
    for (name, level) in unverified {
        if level != 0 {
            return Err(unsupported(name, level, 0, 0));
        }
    }
    Ok(out)
}

/// Kafka's `checkBrokerEpoch`.
pub fn check_broker_epoch(
    d: &Decider<'_>,
    broker_id: i32,
    epoch: i64,
) -> Result<(), ControllerError> {
    match d.state.brokers.get(&broker_id) {
        None => Err(ControllerError::new(
            ErrorCode::StaleBrokerEpoch,
            format!("No broker registration found for broker id {broker_id}"),
        )),
        Some(b) if b.epoch != epoch => Err(ControllerError::new(
            ErrorCode::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {epoch}",
                b.epoch
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// BrokerHeartbeat: the records the heartbeat causes (unfencing, fencing, controlled
/// shutdown with its leadership moves) and the reply. `next_offset` is where this batch
/// will start in the log: a broker entering controlled shutdown may stop once every active
/// broker has caught up past the batch.
pub fn process_heartbeat(
    d: &Decider<'_>,
    heartbeats: &mut Heartbeats,
    request: &BrokerHeartbeatRequest,
    next_offset: i64,
    now_ms: i64,
) -> Result<(Vec<MetadataRecord>, HeartbeatReply), ControllerError> {
    let broker_id = request.broker_id;
    // Kafka records the contact as the heartbeat arrives, before validating it.
    heartbeats.track_contact(broker_id, request.broker_epoch, now_ms);
    let Some(&register_offset) = d.state.register_offsets.get(&broker_id) else {
        return Err(ControllerError::new(
            ErrorCode::StaleBrokerEpoch,
            format!("Receive a heartbeat from broker {broker_id} before registration"),
        ));
    };
    check_broker_epoch(d, broker_id, request.broker_epoch)?;
    if !heartbeats.has_session(broker_id) {
        // A session is in memory only: one lost with a controller change starts again here.
        let fenced = d.state.brokers.get(&broker_id).is_none_or(|b| b.fenced);
        heartbeats.register(broker_id, fenced);
    }
    let ask = HeartbeatRequest {
        current_metadata_offset: request.current_metadata_offset,
        want_fence: request.want_fence,
        want_shut_down: request.want_shut_down,
    };
    let (current, next) = heartbeats.next_state(broker_id, ask, register_offset, || {
        d.has_leaderships(broker_id)
    });
    let mut records = Vec::new();
    if current != next {
        match next {
            BrokerControlState::Fenced | BrokerControlState::ShutdownNow => {
                d.broker_fenced(broker_id, &mut records)
            }
            BrokerControlState::Unfenced => {
                d.broker_unfenced(broker_id, request.broker_epoch, &mut records)
            }
            BrokerControlState::ControlledShutdown => {
                d.broker_in_controlled_shutdown(broker_id, request.broker_epoch, &mut records)
            }
        }
    }
    heartbeats.touch(broker_id, next.fenced(), request.current_metadata_offset);
    if next.in_controlled_shutdown() {
        let batch_end = d.config.offsets.batch_end(next_offset, records.len());
        heartbeats.set_controlled_shutdown_offset(broker_id, batch_end);
    }
    let reply = HeartbeatReply {
        is_caught_up: request.current_metadata_offset >= register_offset,
        is_fenced: next.fenced(),
        in_controlled_shutdown: next.in_controlled_shutdown(),
        should_shut_down: next.should_shut_down(),
    };
    Ok((records, reply))
}

/// Kafka 4.4's `maybeFenceOneStaleBroker`: fences at most one broker whose session expired
/// (one at a time, so each fencing's leadership moves are visible before the next).
/// Expired sessions of unknown brokers or past epochs are dropped without records.
pub fn fence_one_stale_broker(
    d: &Decider<'_>,
    heartbeats: &mut Heartbeats,
    now_ms: i64,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    while let Some((broker_id, epoch)) = heartbeats.take_expired(now_ms) {
        match d.state.brokers.get(&broker_id) {
            None => {
                tracing::info!(
                    broker_id,
                    epoch,
                    "removing heartbeat tracker entry for unknown broker"
                );
                heartbeats.remove(broker_id);
            }
            Some(reg) if reg.epoch != epoch => {
                tracing::info!(
                    broker_id,
                    epoch,
                    current = reg.epoch,
                    "removing heartbeat tracker entry for a previous epoch"
                );
            }
            Some(_) => {
                tracing::info!(
                    broker_id,
                    epoch,
                    "fencing broker because its session has timed out"
                );
                d.broker_fenced(broker_id, &mut records);
                heartbeats.fence(broker_id);
                break;
            }
        }
    }
    records
}

/// UnregisterBroker: leadership and ISR membership move away, then the registration goes.
pub fn unregister_broker(
    d: &Decider<'_>,
    broker_id: i32,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let Some(reg) = d.state.brokers.get(&broker_id) else {
        return Err(ControllerError::new(
            ErrorCode::BrokerIdNotRegistered,
            format!("Broker ID {broker_id} is not currently registered"),
        ));
    };
    let mut records = Vec::new();
    d.broker_unregistered(broker_id, reg.epoch, &mut records);
    Ok(records)
}
