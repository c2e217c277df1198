//! One classic consumer group: its members, generation, selected protocol, committed offsets
//! and the timers Kafka keeps for it (heartbeats, the join and sync phases of a rebalance).
//!
//! The rules that move a group between states live in [`crate::coordinator`]; this module
//! holds the data and the small queries Kafka's `ClassicGroup` answers about it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arus_protocol::Bytes;
use arus_protocol::Message;
use arus_protocol::coordinator::GroupMetadataValue;
use arus_protocol::coordinator::group_metadata_value::MemberMetadata;
use arus_protocol::messages::ConsumerProtocolSubscription;

/// A pending JoinGroup or SyncGroup response, identified for the driver.
pub type Ticket = u64;

/// Kafka's classic group states (`ClassicGroupState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset with the data Kafka keeps beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Set only by OffsetCommit v2–v4 with an explicit `retention_time_ms`.
    pub expire_timestamp: Option<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<Ticket>,
    pub sync_waiter: Option<Ticket>,
    /// Joined but has not yet received a JoinGroup response: expires after the new-member
    /// join timeout even while it waits (it cannot heartbeat without its member id).
    pub is_new: bool,
    /// When the member is removed unless it heartbeats (`i64::MAX`: suspended while it waits
    /// in a rebalance).
    pub heartbeat_deadline: i64,
}

impl Member {
    pub fn metadata_for(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    /// Kafka's `MemberMetadata.hasSatisfiedHeartbeat`: members waiting in a rebalance are
    /// alive by definition, except new ones.
    pub fn heartbeat_satisfied_by_waiting(&self) -> bool {
        !self.is_new && (self.join_waiter.is_some() || self.sync_waiter.is_some())
    }
}

/// How the current PreparingRebalance phase ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// `group.initial.rebalance.delay.ms` for an empty group's first rebalance; `remaining_ms`
    /// of the rebalance timeout may still be spent on further delays.
    Initial { remaining_ms: i64 },
    /// The rebalance timeout; completes early once every member has rejoined.
    Normal,
    /// The initial delay ran out while members told MEMBER_ID_REQUIRED had not come back
    /// yet (see [`crate::initial_join`]): completes as soon as they have joined or their
    /// session timeouts dropped them, at the latest at this timer's deadline.
    AwaitingPendingMembers,
}

impl JoinTimer {
    /// Whether the join phase may complete as soon as every member has (re)joined: not
    /// while the initial delay is still gathering members.
    pub fn completes_when_all_joined(self) -> bool {
        !matches!(self, JoinTimer::Initial { .. })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_timestamp: Option<i64>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// Members given an id by MEMBER_ID_REQUIRED that have not joined with it yet, with the
    /// deadline (their session timeout) after which they are forgotten.
    pub pending_members: HashMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    pub join_timer: Option<(i64, JoinTimer)>,
    pub sync_deadline: Option<i64>,
    /// A member joined during the initial delay: extend it.
    pub new_member_added: bool,
    pub offsets: BTreeMap<(String, i32), OffsetEntry>,
}

impl Group {
    pub fn new(id: &str, now: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp: Some(now),
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: BTreeSet::new(),
            join_timer: None,
            sync_deadline: None,
            new_member_added: false,
            offsets: BTreeMap::new(),
        }
    }

    pub fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_timestamp = Some(now);
    }

    pub fn is_leader(&self, member: &str) -> bool {
        self.leader.as_deref() == Some(member)
    }

    /// The longest rebalance timeout among the members (Kafka's `rebalanceTimeoutMs`).
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as i64)
            .max()
            .unwrap_or(0)
    }

    /// A group.instance.id known to the group under a different member id.
    pub fn is_static_member_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|known| known != member_id)
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol list; a
    /// populated one needs the same protocol type and a protocol every member supports.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// Kafka's vote: candidates are the protocols every member supports; each member votes
    /// for its most preferred candidate; the most votes wins (ties: the earlier candidate in
    /// the first member's preference order, so the choice is deterministic).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let mut best: Option<usize> = None;
        for i in 0..candidates.len() {
            if best.is_none_or(|b| votes[i] > votes[b]) {
                best = Some(i);
            }
        }
        best.map(|i| candidates[i].to_string())
    }

    /// Every member waits on a JoinGroup and no id handed out by MEMBER_ID_REQUIRED is
    /// still outstanding.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some()) && self.pending_members.is_empty()
    }

    /// Removes a member's data (no responses, no state change).
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let m = self.members.remove(member_id)?;
        if let Some(inst) = &m.instance_id
            && self.static_members.get(inst).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(inst);
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self
                .members
                .values()
                .find(|m| m.join_waiter.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.id.clone());
        }
        Some(m)
    }

    /// The topics the members subscribe to, when the group runs the `consumer` protocol and
    /// every subscription decodes (Kafka's `subscribedTopics`; `None` when unknown).
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            let sub = decode_subscription(&m.metadata_for(Some(protocol)))?;
            topics.extend(sub.topics);
        }
        Some(topics)
    }

    /// The GroupMetadataValue Kafka writes to `__consumer_offsets` for this group.
    pub fn snapshot(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata_for(self.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}

/// Decodes the embedded consumer protocol subscription: `int16 version` then the struct,
/// read at the highest version we know when the client writes a newer one (fields are only
/// ever appended).
pub fn decode_subscription(metadata: &Bytes) -> Option<ConsumerProtocolSubscription> {
    if metadata.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    if version < 0 {
        return None;
    }
    let max = ConsumerProtocolSubscription::VERSIONS.1;
    let mut body = metadata.slice(2..);
    ConsumerProtocolSubscription::decode(&mut body, version.min(max)).ok()
}
