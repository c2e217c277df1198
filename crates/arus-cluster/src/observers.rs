//! Broker-only nodes as observers of the metadata quorum.
//!
//! In KRaft an observer *fetches* the metadata log from the leader. openraft pushes it
//! instead, to the members it knows, so the active controller must hold every broker-only
//! node as a learner with an address where that node accepts the quorum's frames:
//!
//! - the broker-only node binds an **observer listener** on the host of its inter-broker
//!   listener, on any free port, that accepts only connections starting with the quorum's
//!   preamble (other connections are closed), and registers it with BrokerRegistration
//!   as one more endpoint named [`OBSERVER_LISTENER`] (the RegisterBrokerRecord keeps it;
//!   clients never see it: Metadata and DescribeCluster answer with the listener the client
//!   came through);
//! - on the active controller, [`run`] compares the committed image with the quorum's
//!   membership and adds each registered broker's observer endpoint as a learner, moves it
//!   when the endpoint changes (a restart on another port), and removes a learner whose
//!   broker is no longer registered (UnregisterBroker); a combined node that RemoveRaftVoter
//!   turned into a learner stays one while its broker is registered, as Kafka's removed
//!   controller goes on as an observer. The membership is in the log, so a
//!   new leader keeps pushing to the learners the previous one added; it reconciles on
//!   becoming leader all the same.
//!
//! The decision is [`plan`], a pure function of the image and the membership.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use arus_metadata::MetadataImage;
use arus_raft::{Quorum, QuorumStatus};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::publisher::MetadataHandle;

/// The endpoint name a broker-only node registers its observer listener under.
pub const OBSERVER_LISTENER: &str = "ARUS_QUORUM_OBSERVER";

/// Binds a broker-only node's observer listener on the host its inter-broker listener binds
/// to; returns it with the endpoint to register (the inter-broker listener's advertised host,
/// the bound port).
pub async fn bind_listener(
    broker: &arus_broker::Broker,
) -> std::io::Result<(tokio::net::TcpListener, (String, String, u16, i16))> {
    let name = &broker.config.node.inter_broker_listener_name;
    let bind_host = broker
        .config
        .listeners
        .iter()
        .find(|l| &l.name == name)
        .map_or_else(|| "0.0.0.0".to_string(), |l| l.host.clone());
    let listener = tokio::net::TcpListener::bind((bind_host.as_str(), 0)).await?;
    let port = listener.local_addr()?.port();
    let advertised = broker
        .advertised_listeners()
        .into_iter()
        .find(|l| &l.name == name)
        .map_or(bind_host, |l| l.host);
    Ok((
        listener,
        (OBSERVER_LISTENER.to_string(), advertised, port, 0),
    ))
}

/// One membership change the active controller makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserverChange {
    /// Add (or re-address) a learner.
    Add { id: u64, address: String },
    /// Remove a learner whose broker is no longer registered.
    Remove { id: u64 },
}

/// What must change so that the learners are exactly the registered brokers' observer
/// endpoints. Voters are never touched (a combined node is a voter already), and learners
/// listed in `joining` are kept: they are controllers on their way to becoming voters
/// (AddRaftVoter), not brokers.
pub fn plan(image: &MetadataImage, status: &QuorumStatus, joining: &[u64]) -> Vec<ObserverChange> {
    let voters: Vec<u64> = status.voters.iter().map(|v| v.node_id).collect();
    let learners: BTreeMap<u64, &str> = status
        .observers
        .iter()
        .map(|o| (o.node_id, o.address.as_str()))
        .collect();
    let mut wanted: BTreeMap<u64, String> = BTreeMap::new();
    // Registered brokers without an observer endpoint: combined nodes, one of which may be a
    // learner after RemoveRaftVoter (it stays an observer, as in Kafka).
    let mut registered = Vec::new();
    for broker in image.cluster().brokers() {
        let Ok(id) = u64::try_from(broker.id) else {
            continue;
        };
        registered.push(id);
        if voters.contains(&id) {
            continue;
        }
        if let Some(e) = broker.listener(OBSERVER_LISTENER) {
            wanted.insert(id, format!("{}:{}", e.host, e.port));
        }
    }
    let mut changes = Vec::new();
    for (id, address) in &wanted {
        if learners.get(id).copied() != Some(address.as_str()) {
            changes.push(ObserverChange::Add {
                id: *id,
                address: address.clone(),
            });
        }
    }
    for id in learners.keys() {
        if !wanted.contains_key(id) && !registered.contains(id) && !joining.contains(id) {
            changes.push(ObserverChange::Remove { id: *id });
        }
    }
    changes
}

/// How often the reconciliation runs without a change to wake it (a membership change that
/// failed because another was in progress is retried then).
const RECHECK: Duration = Duration::from_secs(1);

/// On a controller: while this node leads the quorum, keeps the learners in step with the
/// registered broker-only nodes (see the module documentation). Returns when `stop` turns
/// true or the quorum is gone.
pub async fn run(
    quorum: Weak<Quorum>,
    metadata: MetadataHandle,
    joining: watch::Receiver<Vec<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        {
            let Some(quorum) = quorum.upgrade() else {
                return;
            };
            if quorum.is_leader() {
                let changes = plan(&metadata.image(), &quorum.status(), &joining.borrow());
                for change in changes {
                    apply(&quorum, change).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RECHECK) => {}
            _ = metadata.caught_up_to(metadata.applied_offset() + 1) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn apply(quorum: &Quorum, change: ObserverChange) {
    let result = match &change {
        ObserverChange::Add { id, address } => quorum.add_observer(*id, address.clone()).await,
        ObserverChange::Remove { id } => quorum.remove_observer(*id).await,
    };
    match result {
        Ok(()) => info!(?change, "metadata quorum observers changed"),
        // Another membership change in flight, or the leadership moved: the next round
        // (or the new leader) tries again.
        Err(arus_raft::QuorumError::NotLeader { .. }) => debug!(?change, "no longer leading"),
        Err(e) => warn!(?change, error = %e, "cannot change the quorum's observers; retrying"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_metadata::{MetadataDelta, MetadataRecord};
    use arus_protocol::metadata::RegisterBrokerRecord;
    use arus_protocol::metadata::register_broker_record::BrokerEndpoint;
    use arus_raft::ReplicaStatus;

    fn replica(id: u64, address: &str) -> ReplicaStatus {
        ReplicaStatus {
            node_id: id,
            address: address.into(),
            directory_id: None,
            log_end_index: None,
            last_fetch: None,
            last_caught_up: None,
        }
    }

    fn status(voters: &[u64], observers: &[(u64, &str)]) -> QuorumStatus {
        QuorumStatus {
            node_id: 1,
            leader_id: Some(1),
            term: 1,
            high_watermark: None,
            voters: voters.iter().map(|v| replica(*v, "c:1")).collect(),
            observers: observers.iter().map(|(id, a)| replica(*id, a)).collect(),
        }
    }

    fn image(brokers: &[(i32, Option<u16>)]) -> MetadataImage {
        let mut delta = MetadataDelta::new(&MetadataImage::empty("c"));
        for (id, observer_port) in brokers {
            let endpoint = |name: &str, port: u16| BrokerEndpoint {
                name: name.into(),
                host: "h".into(),
                port,
                security_protocol: 0,
                ..Default::default()
            };
            let mut end_points = vec![endpoint("PLAINTEXT", 9092)];
            if let Some(port) = observer_port {
                end_points.push(endpoint(OBSERVER_LISTENER, *port));
            }
            let record = RegisterBrokerRecord {
                broker_id: *id,
                broker_epoch: 10,
                end_points,
                ..Default::default()
            };
            delta
                .replay(&MetadataRecord::RegisterBroker(record))
                .unwrap();
        }
        delta.apply(arus_metadata::MetadataProvenance::new(1, 1))
    }

    #[test]
    fn a_registered_broker_only_node_becomes_a_learner_at_its_observer_endpoint() {
        let image = image(&[(1, None), (4, Some(7001))]);
        assert_eq!(
            plan(&image, &status(&[1, 2, 3], &[]), &[]),
            vec![ObserverChange::Add {
                id: 4,
                address: "h:7001".into()
            }]
        );
        // Already a learner there: nothing to do (a new leader finds it so).
        assert!(plan(&image, &status(&[1, 2, 3], &[(4, "h:7001")]), &[]).is_empty());
    }

    #[test]
    fn a_restart_on_another_port_moves_the_learner() {
        let image = image(&[(4, Some(7002))]);
        assert_eq!(
            plan(&image, &status(&[1], &[(4, "h:7001")]), &[]),
            vec![ObserverChange::Add {
                id: 4,
                address: "h:7002".into()
            }]
        );
    }

    #[test]
    fn an_unregistered_broker_leaves_but_a_joining_controller_stays() {
        let image = image(&[]);
        assert_eq!(
            plan(&image, &status(&[1], &[(4, "h:7001"), (5, "c:2")]), &[5]),
            vec![ObserverChange::Remove { id: 4 }]
        );
    }

    #[test]
    fn a_combined_node_removed_from_the_voters_stays_an_observer() {
        let image = image(&[(1, None), (3, None)]);
        assert!(plan(&image, &status(&[1], &[(3, "c:3")]), &[]).is_empty());
    }

    #[test]
    fn voters_and_brokers_without_an_observer_endpoint_are_left_alone() {
        // A combined node registers no observer endpoint; a voter is never made a learner.
        let image = image(&[(1, Some(7001)), (2, None)]);
        assert!(plan(&image, &status(&[1, 2], &[]), &[]).is_empty());
    }
}
