//! AddRaftVoter and RemoveRaftVoter (KIP-853) on the CONTROLLER listener:
//! `kafka-metadata-quorum add-controller` / `remove-controller`.
//!
//! The checks are Kafka's (`KafkaRaftClient.handleAddVoterRequest`, `AddVoterHandler`,
//! `RemoveVoterHandler`), in Kafka's order and with its error codes and messages, decided by
//! [`check_add`] / [`check_remove`] from a [`QuorumFacts`] snapshot; the change itself is
//! openraft's membership change (joint consensus), answered once committed.
//!
//! What differs, because openraft pushes its log where KRaft's observers fetch it:
//! - Kafka requires the new voter to be an observer already caught up with the leader. Here the
//!   leader adds it as a learner at the listener the request names and waits (at most the
//!   request's `TimeoutMs`) for it to catch up; one that does not is refused with
//!   REQUEST_TIMED_OUT, as Kafka refuses a lagging observer.
//! - Kafka matches the observer's directory id from its fetches; a learner's directory id is
//!   not visible to the leader, so the one in the request is recorded as given (and must then
//!   be named by RemoveRaftVoter).
//! - `AckWhenCommitted = false` (v1) is answered after the commit too (only later than Kafka).

use std::sync::Arc;
use std::time::Duration;

use arus_client::Client;
use arus_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, ApiVersionsRequest, RemoveRaftVoterRequest,
    RemoveRaftVoterResponse,
};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use arus_raft::{Member, Quorum, QuorumError};
use tracing::{info, warn};

use crate::controller_listener::ControllerService;

/// The quorum as the checks need it.
#[derive(Debug, Clone)]
pub struct QuorumFacts {
    pub cluster_id: String,
    pub is_leader: bool,
    /// The leader has committed an entry of its term (Kafka: "established a HWM").
    pub has_high_watermark: bool,
    /// The finalized `kraft.version`: 0 for a static quorum (`controller.quorum.voters`).
    pub kraft_version: i16,
    /// The voters: id and directory id (ZERO when not recorded).
    pub voters: Vec<(i32, Uuid)>,
    /// A membership change is appended but not committed.
    pub change_pending: bool,
    /// The controller listener name (Kafka's "default listener" of the quorum).
    pub listener_name: String,
}

/// A refusal: the error code and Kafka's message, if it gives one.
pub type Refusal = (ErrorCode, Option<String>);

/// Kafka's `ReplicaKey.toString`.
fn replica_key(id: i32, directory_id: Uuid) -> String {
    if directory_id == Uuid::ZERO {
        format!("ReplicaKey(id={id}, directoryId=<undefined>)")
    } else {
        format!("ReplicaKey(id={id}, directoryId={directory_id})")
    }
}

fn voter_keys(facts: &QuorumFacts) -> String {
    let keys: Vec<String> = facts
        .voters
        .iter()
        .map(|(id, d)| replica_key(*id, *d))
        .collect();
    format!("[{}]", keys.join(", "))
}

fn cluster_id_matches(request: Option<&str>, facts: &QuorumFacts) -> bool {
    request.is_none_or(|c| c == facts.cluster_id)
}

/// The checks shared by both APIs after the request's own validation: HWM, kraft.version,
/// pending change. `verb` is "adding" or "removing".
fn check_quorum(facts: &QuorumFacts, verb: &str, previous: &str) -> Result<(), Refusal> {
    if facts.change_pending {
        return Err((
            ErrorCode::RequestTimedOut,
            Some(format!(
                "Request timed out waiting for leader to handle previous {previous} request"
            )),
        ));
    }
    if !facts.has_high_watermark {
        return Err((
            ErrorCode::RequestTimedOut,
            Some(
                "Request timed out waiting for leader to establish HWM and fence previous voter changes"
                    .into(),
            ),
        ));
    }
    if facts.kraft_version < 1 {
        return Err((
            ErrorCode::UnsupportedVersion,
            Some(format!(
                "Cluster doesn't support {verb} voter because the kraft.version feature is {}",
                facts.kraft_version
            )),
        ));
    }
    Ok(())
}

/// What an accepted AddRaftVoter adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoter {
    pub id: i32,
    pub directory_id: Uuid,
    /// `host:port` of its listener named like the quorum's.
    pub address: String,
}

/// Kafka's checks of an AddRaftVoter, up to sending ApiVersions to the new voter.
pub fn check_add(facts: &QuorumFacts, request: &AddRaftVoterRequest) -> Result<NewVoter, Refusal> {
    if !cluster_id_matches(request.cluster_id.as_deref(), facts) {
        return Err((ErrorCode::InconsistentClusterId, None));
    }
    if !facts.is_leader {
        return Err((ErrorCode::NotLeaderOrFollower, None));
    }
    if request.voter_id < 0 || request.voter_directory_id == Uuid::ZERO {
        return Err((
            ErrorCode::InvalidRequest,
            Some("Add voter request didn't include a valid voter".into()),
        ));
    }
    let Some(listener) = request
        .listeners
        .iter()
        .find(|l| l.name == facts.listener_name)
    else {
        let endpoints: Vec<String> = request
            .listeners
            .iter()
            .map(|l| format!("{}=/{}:{}", l.name, l.host, l.port))
            .collect();
        return Err((
            ErrorCode::InvalidRequest,
            Some(format!(
                "Add voter request didn't include the endpoint (Endpoints(endpoints={{{}}})) for the default listener ListenerName({})",
                endpoints.join(", "),
                facts.listener_name
            )),
        ));
    };
    check_quorum(facts, "adding", "add voter")?;
    if facts.voters.iter().any(|(id, _)| *id == request.voter_id) {
        return Err((
            ErrorCode::DuplicateVoter,
            Some(format!(
                "The voter id for {} is already part of the set of voters {}.",
                replica_key(request.voter_id, request.voter_directory_id),
                voter_keys(facts)
            )),
        ));
    }
    Ok(NewVoter {
        id: request.voter_id,
        directory_id: request.voter_directory_id,
        address: format!("{}:{}", listener.host, listener.port),
    })
}

/// Kafka's checks of a RemoveRaftVoter; returns the id to remove.
pub fn check_remove(facts: &QuorumFacts, request: &RemoveRaftVoterRequest) -> Result<i32, Refusal> {
    if !cluster_id_matches(request.cluster_id.as_deref(), facts) {
        return Err((ErrorCode::InconsistentClusterId, None));
    }
    if !facts.is_leader {
        return Err((ErrorCode::NotLeaderOrFollower, None));
    }
    if request.voter_id < 0 || request.voter_directory_id == Uuid::ZERO {
        return Err((
            ErrorCode::InvalidRequest,
            Some("Remove voter request didn't include a valid voter".into()),
        ));
    }
    check_quorum(facts, "removing", "add or remove voter")?;
    let key = (request.voter_id, request.voter_directory_id);
    // Kafka's VoterSet.removeVoter: the same id and directory id, and a voter left after.
    if !facts.voters.contains(&key) || facts.voters.len() == 1 {
        return Err((
            ErrorCode::VoterNotFound,
            Some(format!(
                "Cannot remove voter {} from the set of voters {}",
                replica_key(key.0, key.1),
                voter_keys(facts)
            )),
        ));
    }
    Ok(request.voter_id)
}

/// The facts from this node's quorum.
pub fn facts(service: &ControllerService, quorum: &Quorum) -> QuorumFacts {
    let status = quorum.status();
    let metrics = quorum.raft_metrics().borrow().clone();
    let is_leader = status.leader_id == Some(service.node_id as u64) && quorum.is_leader();
    let membership = metrics.membership_config.clone();
    // openraft: a joint configuration, or a membership entry above the committed index,
    // is a change in progress.
    let change_pending = membership.membership().get_joint_config().len() > 1
        || membership.log_id().map(|l| l.index) > metrics.last_applied.map(|l| l.index);
    QuorumFacts {
        cluster_id: service.cluster_id.clone(),
        is_leader,
        has_high_watermark: metrics
            .last_applied
            .is_some_and(|l| l.leader_id.term == metrics.current_term),
        kraft_version: service.kraft_version,
        voters: status
            .voters
            .iter()
            .map(|v| {
                let directory_id = v
                    .directory_id
                    .as_deref()
                    .and_then(Uuid::parse)
                    .or_else(|| {
                        (v.node_id as i32 == service.node_id).then_some(service.directory_id)
                    })
                    .unwrap_or(Uuid::ZERO);
                (v.node_id as i32, directory_id)
            })
            .collect(),
        change_pending,
        listener_name: service.listener_name.clone(),
    }
}

fn add_response(refusal: Refusal) -> AddRaftVoterResponse {
    AddRaftVoterResponse {
        error_code: refusal.0.code(),
        error_message: refusal.1,
        ..Default::default()
    }
}

fn remove_response(refusal: Refusal) -> RemoveRaftVoterResponse {
    RemoveRaftVoterResponse {
        error_code: refusal.0.code(),
        error_message: refusal.1,
        ..Default::default()
    }
}

/// The finalized kraft.version a new voter must support, from its ApiVersions.
async fn supports_kraft_version(address: &str, level: i16, wait: Duration) -> Result<bool, String> {
    let asked = async {
        let mut client = Client::connect(address).await.map_err(|e| e.to_string())?;
        let request = Request::ApiVersions(ApiVersionsRequest {
            client_software_name: "apache-kafka-java".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        });
        match client.send_with_version(request, 3).await {
            Ok(Response::ApiVersions(r)) if r.error_code == 0 => {
                Ok(r.supported_features.iter().any(|f| {
                    f.name == "kraft.version" && f.min_version <= level && level <= f.max_version
                }))
            }
            Ok(Response::ApiVersions(r)) => {
                Err(format!("{:?}", ErrorCode::from_code(r.error_code)))
            }
            Ok(_) => Err("unexpected response".into()),
            Err(e) => Err(e.to_string()),
        }
    };
    tokio::time::timeout(wait, asked)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// Answers an AddRaftVoter.
pub async fn add(
    service: &ControllerService,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let Some(quorum) = service.quorum.upgrade() else {
        return add_response((ErrorCode::NotLeaderOrFollower, None));
    };
    let facts = facts(service, &quorum);
    let voter = match check_add(&facts, &request) {
        Ok(v) => v,
        Err(refusal) => {
            warn!(voter = request.voter_id, error = ?refusal, "AddRaftVoter refused");
            return add_response(refusal);
        }
    };
    let key = replica_key(voter.id, voter.directory_id);
    let timeout = Duration::from_millis(
        u64::try_from(request.timeout_ms)
            .unwrap_or(0)
            .clamp(1_000, 300_000),
    );
    match supports_kraft_version(&voter.address, facts.kraft_version, timeout).await {
        Ok(true) => {}
        Ok(false) => {
            return add_response((
                ErrorCode::InvalidRequest,
                Some(format!(
                    "Aborted add voter operation for {key} since the kraft.version range (min: 0, max: 0) doesn't support the finalized version {}",
                    facts.kraft_version
                )),
            ));
        }
        Err(e) => {
            warn!(voter = voter.id, address = %voter.address, error = %e, "AddRaftVoter: the new voter does not answer");
            return add_response((
                ErrorCode::RequestTimedOut,
                Some(format!(
                    "Aborted add voter operation for since API_VERSIONS returned an error {e}"
                )),
            ));
        }
    }
    let _joining = Joining::new(service, voter.id as u64);
    let member = Member::new(voter.address.clone(), Some(voter.directory_id.to_string()));
    match quorum.add_voter(voter.id as u64, member, timeout).await {
        Ok(()) => {
            info!(voter = voter.id, address = %voter.address, "voter added to the metadata quorum");
            AddRaftVoterResponse {
                error_message: None,
                ..Default::default()
            }
        }
        Err(QuorumError::CatchUpTimeout { .. }) => add_response((
            ErrorCode::RequestTimedOut,
            Some(format!(
                "Aborted add voter operation for {key} since it is lagging behind"
            )),
        )),
        Err(e) => add_response(change_error(e, "add voter")),
    }
}

/// Answers a RemoveRaftVoter.
pub async fn remove(
    service: &ControllerService,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let Some(quorum) = service.quorum.upgrade() else {
        return remove_response((ErrorCode::NotLeaderOrFollower, None));
    };
    let facts = facts(service, &quorum);
    let id = match check_remove(&facts, &request) {
        Ok(id) => id,
        Err(refusal) => {
            warn!(voter = request.voter_id, error = ?refusal, "RemoveRaftVoter refused");
            return remove_response(refusal);
        }
    };
    match quorum.remove_voter(id as u64).await {
        Ok(()) => {
            info!(voter = id, "voter removed from the metadata quorum");
            RemoveRaftVoterResponse {
                error_message: None,
                ..Default::default()
            }
        }
        Err(e) => remove_response(change_error(e, "add or remove voter")),
    }
}

fn change_error(e: QuorumError, previous: &str) -> Refusal {
    match e {
        QuorumError::NotLeader { .. } | QuorumError::ShutDown => {
            (ErrorCode::NotLeaderOrFollower, None)
        }
        QuorumError::MembershipChangeInProgress(_) => (
            ErrorCode::RequestTimedOut,
            Some(format!(
                "Request timed out waiting for leader to handle previous {previous} request"
            )),
        ),
        other => {
            warn!(error = %other, "the voter change failed");
            (ErrorCode::UnknownServerError, Some(other.to_string()))
        }
    }
}

/// Marks a node as a controller joining the voters while it is a learner, so that the
/// observers' reconciliation does not remove it (`observers::plan`).
struct Joining {
    joining: Arc<tokio::sync::watch::Sender<Vec<u64>>>,
    id: u64,
}

impl Joining {
    fn new(service: &ControllerService, id: u64) -> Joining {
        service.joining.send_modify(|j| j.push(id));
        Joining {
            joining: service.joining.clone(),
            id,
        }
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        let id = self.id;
        self.joining.send_modify(|j| j.retain(|x| *x != id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::messages::add_raft_voter_request::Listener;

    fn uuid(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn facts() -> QuorumFacts {
        QuorumFacts {
            cluster_id: "c".into(),
            is_leader: true,
            has_high_watermark: true,
            kraft_version: 1,
            voters: vec![(1, uuid(1)), (2, uuid(2))],
            change_pending: false,
            listener_name: "CONTROLLER".into(),
        }
    }

    fn add(id: i32) -> AddRaftVoterRequest {
        AddRaftVoterRequest {
            cluster_id: Some("c".into()),
            timeout_ms: 30_000,
            voter_id: id,
            voter_directory_id: uuid(id as u8),
            listeners: vec![Listener {
                name: "CONTROLLER".into(),
                host: "h".into(),
                port: 9093,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn remove(id: i32, dir: Uuid) -> RemoveRaftVoterRequest {
        RemoveRaftVoterRequest {
            cluster_id: Some("c".into()),
            voter_id: id,
            voter_directory_id: dir,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_voter_is_added_at_its_controller_listener() {
        assert_eq!(
            check_add(&facts(), &add(3)),
            Ok(NewVoter {
                id: 3,
                directory_id: uuid(3),
                address: "h:9093".into()
            })
        );
    }

    #[test]
    fn a_static_quorum_refuses_changes_as_kraft_version_0() {
        let f = QuorumFacts {
            kraft_version: 0,
            ..facts()
        };
        let (code, message) = check_add(&f, &add(3)).unwrap_err();
        assert_eq!(code, ErrorCode::UnsupportedVersion);
        assert_eq!(
            message.as_deref(),
            Some("Cluster doesn't support adding voter because the kraft.version feature is 0")
        );
        let (code, message) = check_remove(&f, &remove(2, uuid(2))).unwrap_err();
        assert_eq!(code, ErrorCode::UnsupportedVersion);
        assert_eq!(
            message.as_deref(),
            Some("Cluster doesn't support removing voter because the kraft.version feature is 0")
        );
    }

    #[test]
    fn kafkas_order_of_refusals() {
        let other_cluster = AddRaftVoterRequest {
            cluster_id: Some("x".into()),
            ..add(3)
        };
        assert_eq!(
            check_add(&facts(), &other_cluster).unwrap_err().0,
            ErrorCode::InconsistentClusterId
        );
        let follower = QuorumFacts {
            is_leader: false,
            ..facts()
        };
        assert_eq!(
            check_add(&follower, &add(3)).unwrap_err(),
            (ErrorCode::NotLeaderOrFollower, None)
        );
        let no_dir = AddRaftVoterRequest {
            voter_directory_id: Uuid::ZERO,
            ..add(3)
        };
        assert_eq!(
            check_add(&facts(), &no_dir).unwrap_err().0,
            ErrorCode::InvalidRequest
        );
        let other_listener = AddRaftVoterRequest {
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                ..Default::default()
            }],
            ..add(3)
        };
        let (code, message) = check_add(&facts(), &other_listener).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidRequest);
        assert!(
            message
                .unwrap()
                .contains("for the default listener ListenerName(CONTROLLER)")
        );
        let pending = QuorumFacts {
            change_pending: true,
            ..facts()
        };
        assert_eq!(
            check_add(&pending, &add(3)).unwrap_err().0,
            ErrorCode::RequestTimedOut
        );
        let no_hwm = QuorumFacts {
            has_high_watermark: false,
            ..facts()
        };
        assert_eq!(
            check_add(&no_hwm, &add(3)).unwrap_err().0,
            ErrorCode::RequestTimedOut
        );
    }

    #[test]
    fn a_voter_already_in_the_set_is_a_duplicate() {
        let (code, message) = check_add(&facts(), &add(2)).unwrap_err();
        assert_eq!(code, ErrorCode::DuplicateVoter);
        assert!(
            message
                .unwrap()
                .starts_with("The voter id for ReplicaKey(id=2, directoryId=")
        );
    }

    #[test]
    fn removing_needs_the_same_directory_id_and_a_voter_left() {
        assert_eq!(check_remove(&facts(), &remove(2, uuid(2))), Ok(2));
        assert_eq!(
            check_remove(&facts(), &remove(2, uuid(9))).unwrap_err().0,
            ErrorCode::VoterNotFound
        );
        assert_eq!(
            check_remove(&facts(), &remove(7, uuid(7))).unwrap_err().0,
            ErrorCode::VoterNotFound
        );
        let alone = QuorumFacts {
            voters: vec![(1, uuid(1))],
            ..facts()
        };
        let (code, message) = check_remove(&alone, &remove(1, uuid(1))).unwrap_err();
        assert_eq!(code, ErrorCode::VoterNotFound);
        assert!(
            message
                .unwrap()
                .starts_with("Cannot remove voter ReplicaKey(id=1")
        );
    }
}
