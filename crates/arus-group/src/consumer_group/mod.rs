//! The KIP-848 consumer group protocol (`group.protocol=consumer`): ConsumerGroupHeartbeat
//! and ConsumerGroupDescribe as a pure state machine, following Apache Kafka 4.0's
//! `GroupMetadataManager.consumerGroupHeartbeat`, `ConsumerGroup`, `ConsumerGroupMember`,
//! `TargetAssignmentBuilder` and `CurrentAssignmentBuilder`.
//!
//! How it works (as in Kafka):
//! - Every change is expressed as `ConsumerGroup*` records ([`CoordinatorRecord`]); the state
//!   is updated only by [`ConsumerGroups::replay`]ing them, so loading the records from
//!   `__consumer_offsets` rebuilds exactly the state that wrote them.
//! - A member joins with epoch 0; a change of subscription (or of the subscribed topics'
//!   metadata, e.g. partitions added) bumps the **group epoch**; the next heartbeat of any
//!   member then recomputes the **target assignment** with the server assignor (epoch =
//!   group epoch); each member then **reconciles** towards its target on its own heartbeats:
//!   it first revokes what it must give up (staying in its epoch), then moves to the target
//!   epoch and receives the partitions no other member still owns.
//! - Timers are soft state: session timeouts (`group.consumer.session.timeout.ms`) and
//!   rebalance timeouts (the member's own, while it has partitions to revoke) are checked by
//!   [`ConsumerGroups::tick`]; [`ConsumerGroups::next_deadline`] says when to call it.
//!   [`ConsumerGroups::on_loaded`] re-arms them after a load, as Kafka's `onLoaded`.
//!
//! Regular-expression subscriptions (`SubscribedTopicRegex`) are resolved by [`regex`]; a
//! member's subscribed topics are its names plus its regex's resolution. Rack-aware assignment is
//! not done (Kafka 4.0's assignors do not use racks either). Mixed classic/consumer groups
//! (online upgrade/downgrade of a group between protocols) are not handled here.

pub mod assignor;
pub mod member;
pub mod reconcile;
mod record_builders;
pub mod regex;
mod replay;
use record_builders::*;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arus_protocol::coordinator::consumer_group_current_member_assignment_value as cur_value;
use arus_protocol::coordinator::consumer_group_partition_metadata_value as pm_value;
use arus_protocol::coordinator::consumer_group_target_assignment_member_value as tgt_value;
use arus_protocol::coordinator::{
    ConsumerGroupCurrentMemberAssignmentValue, ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataValue,
};
use arus_protocol::messages::consumer_group_describe_response as describe;
use arus_protocol::messages::consumer_group_heartbeat_response as hb_response;
use arus_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use arus_protocol::{ErrorCode, Uuid};

use crate::records::CoordinatorRecord;
pub use member::{Assignment, Member, MemberState};
use regex::ResolvedRegex;

/// Member epoch of a leave request.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch of a static member's temporary leave.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// First ConsumerGroupHeartbeat version where the client must generate its member id.
pub const CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION: i16 = 1;

/// A topic as the caller's metadata snapshot knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
}

/// The broker's topic metadata, as seen by the coordinator (Kafka's metadata image).
pub trait TopicMetadataSource {
    /// The topic's id and partition count, if it exists.
    fn topic(&self, name: &str) -> Option<TopicInfo>;
    /// The name of a topic id (for describe output), if it exists.
    fn topic_name(&self, id: &Uuid) -> Option<String>;
    /// Every topic's name (what regex subscriptions are resolved against).
    fn topic_names(&self) -> Vec<String>;
    /// Increases whenever a topic is created (Kafka's `lastMetadataImageWithNewTopics`):
    /// regex subscriptions resolved at an older version are re-resolved.
    fn topics_version(&self) -> i64 {
        0
    }
}

impl TopicMetadataSource for HashMap<String, (Uuid, i32)> {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.get(name).map(|(id, partitions)| TopicInfo {
            id: *id,
            partitions: *partitions,
        })
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.iter()
            .find(|(_, (i, _))| i == id)
            .map(|(n, _)| n.clone())
    }
    fn topic_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl TopicMetadataSource for BTreeMap<String, (Uuid, i32)> {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.get(name).map(|(id, partitions)| TopicInfo {
            id: *id,
            partitions: *partitions,
        })
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.iter()
            .find(|(_, (i, _))| i == id)
            .map(|(n, _)| n.clone())
    }
    fn topic_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// Broker settings for consumer groups, with Kafka's names and defaults.
#[derive(Clone, Debug)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.max.size` (2147483647).
    pub max_size: usize,
    /// `group.consumer.assignors` (`uniform,range`); the first is the default.
    pub assignors: Vec<String>,
    /// Seed for member ids generated for ConsumerGroupHeartbeat v0 joins with an empty
    /// member id (deterministic; the broker may seed it randomly).
    pub member_id_seed: u64,
    /// `group.consumer.regex.refresh.interval.ms` (600000).
    pub regex_refresh_interval_ms: i64,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45000,
            max_size: i32::MAX as usize,
            assignors: vec![assignor::UNIFORM.into(), assignor::RANGE.into()],
            member_id_seed: 0x9e37_79b9_7f4a_7c15,
            regex_refresh_interval_ms: regex::DEFAULT_REGEX_REFRESH_INTERVAL_MS,
        }
    }
}

/// A group's own values of the broker's consumer-group settings (`None`: the broker's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    pub session_timeout_ms: Option<i32>,
    pub heartbeat_interval_ms: Option<i32>,
}

/// Per-request facts that are not in the request body.
#[derive(Clone, Copy, Debug)]
pub struct HeartbeatContext<'a> {
    /// Client id of the request header.
    pub client_id: &'a str,
    /// Client address (Kafka writes `InetAddress.toString()`, e.g. `/127.0.0.1`).
    pub client_host: &'a str,
    /// ConsumerGroupHeartbeat version of the request.
    pub api_version: i16,
}

/// A request refused with a Kafka error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupError {
    pub code: ErrorCode,
    pub message: String,
}

impl GroupError {
    fn new(code: ErrorCode, message: impl Into<String>) -> GroupError {
        GroupError {
            code,
            message: message.into(),
        }
    }

    /// The ConsumerGroupHeartbeat response Kafka sends for this error.
    pub fn to_heartbeat_response(&self) -> ConsumerGroupHeartbeatResponse {
        ConsumerGroupHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: self.code.code(),
            error_message: Some(self.message.clone()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

fn invalid(msg: &str) -> GroupError {
    GroupError::new(ErrorCode::InvalidRequest, msg)
}

/// Kafka's `ConsumerGroupState` (names as ListGroups and DescribeGroups report them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
    Dead,
}

impl ConsumerGroupState {
    /// The name Kafka reports ("Empty", "Assigning", "Reconciling", "Stable", "Dead").
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
            ConsumerGroupState::Dead => "Dead",
        }
    }
}

/// A subscribed topic's metadata as stored in `ConsumerGroupPartitionMetadataValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribedTopic {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
}

/// One consumer group.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    /// Bumped by every membership/subscription/metadata change.
    pub group_epoch: i32,
    /// Epoch of the target assignment (catches up with the group epoch on a heartbeat).
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// Subscribed topic name → metadata (only topics that exist).
    pub subscription_metadata: BTreeMap<String, SubscribedTopic>,
    /// Member id → target assignment.
    pub target_assignment: BTreeMap<String, Assignment>,
    /// Instance id → member id (derived).
    static_members: BTreeMap<String, String>,
    /// (topic, partition) → epoch of the member owning it (assigned or pending revocation)
    /// (derived).
    partition_epochs: HashMap<(Uuid, i32), i32>,
    /// Subscribed regex → its resolution (`ConsumerGroupRegularExpression` records).
    pub resolved_regexes: BTreeMap<String, ResolvedRegex>,
}

/// A member's subscribed topics: its names plus the resolution of its regex.
fn member_topics<'a>(
    m: &'a Member,
    resolved: &'a BTreeMap<String, ResolvedRegex>,
) -> impl Iterator<Item = &'a String> {
    let by_regex = regex::effective(&m.subscribed_topic_regex)
        .and_then(|r| resolved.get(r))
        .into_iter()
        .flat_map(|r| r.topics.iter());
    m.subscribed_topic_names.iter().chain(by_regex)
}

impl ConsumerGroup {
    fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            ..Default::default()
        }
    }

    /// A copy of `member_id`, or a new member of that id (Kafka's
    /// `getOrMaybeCreateMember` with create, on a copy the caller updates and puts back).
    fn member_or_new(&self, member_id: &str) -> Member {
        self.members
            .get(member_id)
            .cloned()
            .unwrap_or_else(|| Member::new(member_id))
    }

    /// Kafka's state derivation (`maybeUpdateGroupState`).
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Topic names subscribed by at least one member (for offset expiry: Kafka expires a
    /// non-empty consumer group's offsets only for topics nobody subscribes to).
    pub fn subscribed_topic_names(&self) -> BTreeSet<&str> {
        self.members
            .values()
            .flat_map(|m| member_topics(m, &self.resolved_regexes).map(String::as_str))
            .collect()
    }

    /// The member id holding a static instance id.
    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Epoch of the member owning a partition, or -1 if free.
    pub fn partition_epoch(&self, topic: &Uuid, partition: i32) -> i32 {
        self.partition_epochs
            .get(&(*topic, partition))
            .copied()
            .unwrap_or(-1)
    }

    /// The most used server assignor among members (Kafka's `preferredServerAssignor`),
    /// ties broken by name.
    fn preferred_assignor(&self, replacing: Option<(&Member, Option<&str>)>) -> Option<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((u, old)) = replacing
                && (m.member_id == u.member_id || Some(m.member_id.as_str()) == old)
            {
                continue;
            }
            if let Some(a) = &m.server_assignor {
                *counts.entry(a).or_default() += 1;
            }
        }
        if let Some((u, _)) = replacing
            && let Some(a) = &u.server_assignor
        {
            *counts.entry(a).or_default() += 1;
        }
        let max = counts.values().max().copied()?;
        counts
            .into_iter()
            .find(|(_, c)| *c == max)
            .map(|(a, _)| a.to_string())
    }

    fn update_member(&mut self, new: Member) {
        if let Some(old) = self.members.get(&new.member_id) {
            for a in [&old.assigned_partitions, &old.partitions_pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        self.partition_epochs.remove(&(*t, *p));
                    }
                }
            }
            if let Some(i) = &old.instance_id
                && self.static_members.get(i) == Some(&old.member_id)
            {
                self.static_members.remove(i);
            }
        }
        for a in [&new.assigned_partitions, &new.partitions_pending_revocation] {
            for (t, ps) in a {
                for p in ps {
                    self.partition_epochs.insert((*t, *p), new.member_epoch);
                }
            }
        }
        if let Some(i) = &new.instance_id {
            self.static_members.insert(i.clone(), new.member_id.clone());
        }
        self.members.insert(new.member_id.clone(), new);
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(old) = self.members.get(member_id).cloned() {
            let mut cleared = old.clone();
            cleared.assigned_partitions.clear();
            cleared.partitions_pending_revocation.clear();
            cleared.instance_id = None;
            self.update_member(cleared);
            self.members.remove(member_id);
        }
    }

    /// Subscription metadata for the given subscribed names, from the stored metadata only
    /// (used when a member is removed by a timer, without a metadata snapshot).
    fn metadata_without(&self, removed: &str) -> BTreeMap<String, SubscribedTopic> {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .filter(|m| m.member_id != removed)
            .flat_map(|m| member_topics(m, &self.resolved_regexes))
            .collect();
        self.subscription_metadata
            .iter()
            .filter(|(n, _)| names.contains(n))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MemberTimers {
    session_deadline: Option<i64>,
    /// (deadline, member epoch it was armed for)
    rebalance: Option<(i64, i32)>,
}

/// All KIP-848 consumer groups of one coordinator (one `__consumer_offsets` partition, or
/// all of them: groups are independent).
#[derive(Debug)]
pub struct ConsumerGroups {
    config: ConsumerGroupConfig,
    /// Per-group `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms` (KIP-848
    /// group configs, set with IncrementalAlterConfigs on a GROUP resource), which take
    /// precedence over the broker's values for that group.
    overrides: BTreeMap<String, GroupOverrides>,
    groups: BTreeMap<String, ConsumerGroup>,
    timers: BTreeMap<(String, String), MemberTimers>,
    id_counter: u64,
}

fn to_assignment<'a>(tps: impl Iterator<Item = (&'a Uuid, &'a Vec<i32>)>) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in tps {
        if !ps.is_empty() {
            a.entry(*t).or_default().extend(ps.iter().copied());
        }
    }
    a
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hb_assignment(a: &Assignment) -> hb_response::Assignment {
    hb_response::Assignment {
        topic_partitions: a
            .iter()
            .map(|(t, ps)| hb_response::TopicPartitions {
                topic_id: *t,
                partitions: ps.iter().copied().collect(),
            })
            .collect(),
    }
}

fn validate(
    req: &ConsumerGroupHeartbeatRequest,
    api_version: i16,
    assignors: &[String],
) -> Result<(), GroupError> {
    let blank = |s: &str| s.trim().is_empty();
    if (api_version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION
        || req.member_epoch > 0
        || req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH)
        && blank(&req.member_id)
    {
        return Err(invalid("MemberId can't be empty."));
    }
    if blank(&req.group_id) {
        return Err(invalid("GroupId can't be empty."));
    }
    if req.instance_id.as_deref().is_some_and(blank) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if req.rack_id.as_deref().is_some_and(blank) {
        return Err(invalid("RackId can't be empty."));
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return Err(invalid("TopicPartitions must be empty when (re-)joining."));
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            ));
        }
    } else if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if req.instance_id.is_none() {
            return Err(invalid("InstanceId can't be null."));
        }
    } else if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if let Some(a) = &req.server_assignor
        && !assignors.iter().any(|x| x == a)
    {
        return Err(GroupError::new(
            ErrorCode::UnsupportedAssignor,
            format!(
                "ServerAssignor {a} is not supported. Supported assignors: {}.",
                assignors.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`.
fn check_member_epoch(
    member: &Member,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), GroupError> {
    if received > member.member_epoch {
        return Err(GroupError::new(
            ErrorCode::FencedMemberEpoch,
            format!(
                "The consumer group member has a greater member epoch ({received}) than the one \
                 known by the group coordinator ({}). The member must abandon all its partitions \
                 and rejoin.",
                member.member_epoch
            ),
        ));
    }
    if received < member.member_epoch {
        let subset = owned.is_some_and(|o| {
            o.iter().all(|(t, ps)| {
                member
                    .assigned_partitions
                    .get(t)
                    .is_some_and(|a| ps.is_subset(a))
            })
        });
        if received != member.previous_member_epoch || !subset {
            return Err(GroupError::new(
                ErrorCode::FencedMemberEpoch,
                format!(
                    "The consumer group member has a smaller member epoch ({received}) than the \
                     one known by the group coordinator ({}). The member must abandon all its \
                     partitions and rejoin.",
                    member.member_epoch
                ),
            ));
        }
    }
    Ok(())
}

/// What a heartbeat decided, before it is applied.
struct Outcome {
    response: ConsumerGroupHeartbeatResponse,
    records: Vec<CoordinatorRecord>,
    /// (member id, session deadline to set) — `None` leaves timers alone.
    session: Option<(String, i64)>,
    /// Rebalance timer change for the member: Some(Some(..)) arm, Some(None) cancel.
    rebalance: Option<(String, Option<(i64, i32)>)>,
    /// Members whose timers are dropped.
    drop_timers: Vec<String>,
}

impl ConsumerGroups {
    /// An empty coordinator.
    pub fn new(config: ConsumerGroupConfig) -> ConsumerGroups {
        ConsumerGroups {
            config,
            overrides: BTreeMap::new(),
            groups: BTreeMap::new(),
            timers: BTreeMap::new(),
            id_counter: 0,
        }
    }

    /// Sets (or, with both `None`, clears) a group's own session timeout and heartbeat
    /// interval. They apply from the members' next heartbeats, as in Kafka.
    pub fn set_group_overrides(&mut self, group_id: &str, overrides: GroupOverrides) {
        if overrides == GroupOverrides::default() {
            self.overrides.remove(group_id);
        } else {
            self.overrides.insert(group_id.to_string(), overrides);
        }
    }

    fn session_timeout_ms(&self, group_id: &str) -> i32 {
        self.overrides
            .get(group_id)
            .and_then(|o| o.session_timeout_ms)
            .unwrap_or(self.config.session_timeout_ms)
    }

    fn heartbeat_interval_ms(&self, group_id: &str) -> i32 {
        self.overrides
            .get(group_id)
            .and_then(|o| o.heartbeat_interval_ms)
            .unwrap_or(self.config.heartbeat_interval_ms)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    /// A group, if it exists.
    pub fn group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id)
    }

    /// Whether a consumer group with this id exists.
    pub fn contains(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// Ids of all consumer groups.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// A group's state name for ListGroups/DescribeGroups ("Dead" if it does not exist).
    pub fn state_name(&self, group_id: &str) -> &'static str {
        self.groups
            .get(group_id)
            .map_or(ConsumerGroupState::Dead, ConsumerGroup::state)
            .name()
    }

    /// Number of members (0 if the group does not exist).
    pub fn member_count(&self, group_id: &str) -> usize {
        self.groups.get(group_id).map_or(0, |g| g.members.len())
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` for OffsetCommit (`is_transactional`
    /// false, `api_version` = OffsetCommit version) and TxnOffsetCommit (`is_transactional`
    /// true). `member_epoch` is the request's generation id / member epoch.
    ///
    /// `Err(GroupIdNotFound)` means this is not a consumer group (the classic side decides).
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        member_epoch: i32,
        is_transactional: bool,
        api_version: i16,
    ) -> Result<(), ErrorCode> {
        let g = self
            .groups
            .get(group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        // Admin clients and consumers without group management commit with epoch -1,
        // allowed only while the group is empty.
        if member_epoch < 0 && g.members.is_empty() {
            return Ok(());
        }
        if is_transactional && member_epoch == -1 && member_id.is_empty() && instance_id.is_none() {
            return Ok(());
        }
        let m = g.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if !is_transactional && api_version < 9 {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if member_epoch != m.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// TxnOffsetCommit's check for a consumer group: [`Self::validate_offset_commit`] with
    /// `is_transactional`, a stale member epoch reported as ILLEGAL_GENERATION (Kafka's
    /// `OffsetMetadataManager.validateTransactionalOffsetCommit`). On `Ok` the broker
    /// commits through `Coordinator::txn_commit_offsets` with generation -1, no member id
    /// and no instance id. `Err(GroupIdNotFound)`: not a consumer group.
    pub fn validate_txn_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        self.validate_offset_commit(group_id, member_id, instance_id, generation_id, true, 3)
            .map_err(|e| match e {
                ErrorCode::StaleMemberEpoch => ErrorCode::IllegalGeneration,
                e => e,
            })
    }

    /// Kafka's `ConsumerGroup.validateOffsetFetch` (OffsetFetch v9+ carries member id and
    /// epoch; admin fetches use epoch -1 and no member id).
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        let g = self
            .groups
            .get(group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        let Some(member_id) = member_id.filter(|_| member_epoch >= 0) else {
            return Ok(());
        };
        let m = g.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != m.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    fn generate_member_id(&mut self) -> String {
        self.id_counter += 1;
        let mut x =
            self.config.member_id_seed ^ self.id_counter.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let hi = splitmix(&mut x).to_be_bytes();
        let lo = splitmix(&mut x).to_be_bytes();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi);
        b[8..].copy_from_slice(&lo);
        // Version 4 / variant bits, as java.util.UUID.randomUUID.
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b).to_string()
    }

    /// Handles a ConsumerGroupHeartbeat. On success returns the response and the records to
    /// persist (already applied to this state). On error nothing changed: answer with
    /// [`GroupError::to_heartbeat_response`].
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        ctx: &HeartbeatContext<'_>,
        req: &ConsumerGroupHeartbeatRequest,
        metadata: &dyn TopicMetadataSource,
    ) -> Result<(ConsumerGroupHeartbeatResponse, Vec<CoordinatorRecord>), GroupError> {
        validate(req, ctx.api_version, &self.config.assignors)?;
        let outcome = if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            self.leave(req)?
        } else {
            let member_id = if req.member_id.is_empty() {
                self.generate_member_id()
            } else {
                req.member_id.clone()
            };
            self.join_or_heartbeat(now_ms, ctx, req, &member_id, metadata)?
        };
        Ok(self.apply(&req.group_id, outcome))
    }

    fn apply(
        &mut self,
        group_id: &str,
        o: Outcome,
    ) -> (ConsumerGroupHeartbeatResponse, Vec<CoordinatorRecord>) {
        for r in &o.records {
            self.replay(r);
        }
        for m in o.drop_timers {
            self.timers.remove(&(group_id.to_string(), m));
        }
        if let Some((m, deadline)) = o.session {
            self.timers
                .entry((group_id.to_string(), m))
                .or_default()
                .session_deadline = Some(deadline);
        }
        if let Some((m, reb)) = o.rebalance {
            let key = (group_id.to_string(), m);
            if reb.is_some() || self.timers.contains_key(&key) {
                self.timers.entry(key).or_default().rebalance = reb;
            }
        }
        (o.response, o.records)
    }

    fn leave(&self, req: &ConsumerGroupHeartbeatRequest) -> Result<Outcome, GroupError> {
        let group_id = &req.group_id;
        let g = self.groups.get(group_id).ok_or_else(|| {
            GroupError::new(
                ErrorCode::GroupIdNotFound,
                format!("Consumer group {group_id} not found."),
            )
        })?;
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            ..Default::default()
        };
        let member = match &req.instance_id {
            None => g
                .members
                .get(&req.member_id)
                .ok_or_else(|| unknown_member(&req.member_id, group_id))?,
            Some(iid) => {
                let m = g
                    .static_member_id(iid)
                    .and_then(|id| g.members.get(id))
                    .ok_or_else(|| {
                        GroupError::new(
                            ErrorCode::UnknownMemberId,
                            format!("Instance id {iid} is unknown."),
                        )
                    })?;
                if m.member_id != req.member_id {
                    return Err(fenced_instance(&req.member_id, iid, &m.member_id));
                }
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    // Temporary leave: keep the member and its assignment at epoch -2 until it
                    // rejoins (with a new member id) or its session expires.
                    let mut left = m.clone();
                    left.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    left.partitions_pending_revocation.clear();
                    return Ok(Outcome {
                        response: ConsumerGroupHeartbeatResponse {
                            member_id: Some(m.member_id.clone()),
                            member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                            ..Default::default()
                        },
                        records: vec![rec_current(group_id, &left)],
                        session: None,
                        rebalance: Some((m.member_id.clone(), None)),
                        drop_timers: vec![],
                    });
                }
                m
            }
        };
        let records = fence_records(g, &member.member_id);
        Ok(Outcome {
            response,
            records,
            session: None,
            rebalance: None,
            drop_timers: vec![member.member_id.clone()],
        })
    }

    fn join_or_heartbeat(
        &self,
        now_ms: i64,
        ctx: &HeartbeatContext<'_>,
        req: &ConsumerGroupHeartbeatRequest,
        member_id: &str,
        metadata: &dyn TopicMetadataSource,
    ) -> Result<Outcome, GroupError> {
        let group_id = req.group_id.as_str();
        let epoch = req.member_epoch;
        let create = epoch == 0;
        let new_group;
        let g = match self.groups.get(group_id) {
            Some(g) => g,
            None if create => {
                new_group = ConsumerGroup::new(group_id);
                &new_group
            }
            None => {
                return Err(GroupError::new(
                    ErrorCode::GroupIdNotFound,
                    format!("Consumer group {group_id} not found."),
                ));
            }
        };
        if g.members.len() >= self.config.max_size
            && (req.member_id.is_empty() || !g.members.contains_key(&req.member_id))
        {
            return Err(GroupError::new(
                ErrorCode::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.max_size
                ),
            ));
        }
        let owned: Option<Assignment> = req
            .topic_partitions
            .as_ref()
            .map(|tps| to_assignment(tps.iter().map(|t| (&t.topic_id, &t.partitions))));

        let mut records = Vec::new();
        // The static member this join replaces, if any.
        let mut replaced: Option<&Member> = None;
        let member: Member = match &req.instance_id {
            None => {
                let m = match g.members.get(member_id) {
                    Some(m) => m.clone(),
                    None if create => Member::new(member_id),
                    None => return Err(unknown_member(member_id, group_id)),
                };
                check_member_epoch(&m, epoch, owned.as_ref())?;
                m
            }
            Some(iid) => {
                let existing = g.static_member_id(iid).and_then(|id| g.members.get(id));
                if create {
                    match existing {
                        None => g.member_or_new(member_id),
                        Some(old) => {
                            if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                                return Err(GroupError::new(
                                    ErrorCode::UnreleasedInstanceId,
                                    format!(
                                        "Static member {member_id} with instance id {iid} cannot join the \
                                         group because the instance id is owned by {} member.",
                                        old.member_id
                                    ),
                                ));
                            }
                            let mut m = old.clone();
                            m.member_id = member_id.to_string();
                            m.member_epoch = 0;
                            m.previous_member_epoch = 0;
                            // Kafka's replaceMember.
                            push_member_tombstones(&mut records, group_id, &old.member_id);
                            records.push(rec_member_subscription(group_id, &m));
                            records.push(rec_target_member(
                                group_id,
                                member_id,
                                g.target_assignment
                                    .get(&old.member_id)
                                    .unwrap_or(&Assignment::new()),
                            ));
                            records.push(rec_current(group_id, &m));
                            replaced = Some(old);
                            m
                        }
                    }
                } else {
                    let old = existing.ok_or_else(|| {
                        GroupError::new(
                            ErrorCode::UnknownMemberId,
                            format!("Instance id {iid} is unknown."),
                        )
                    })?;
                    if old.member_id != member_id {
                        return Err(fenced_instance(member_id, iid, &old.member_id));
                    }
                    check_member_epoch(old, epoch, owned.as_ref())?;
                    old.clone()
                }
            }
        };
        let replaced_id = replaced.map(|m| m.member_id.as_str());

        // 1. Update the member's subscription.
        let mut updated = member.clone();
        if let Some(i) = &req.instance_id {
            updated.instance_id = Some(i.clone());
        }
        if let Some(r) = &req.rack_id {
            updated.rack_id = Some(r.clone());
        }
        if req.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(a) = &req.server_assignor {
            updated.server_assignor = Some(a.clone());
        }
        if let Some(names) = &req.subscribed_topic_names {
            updated.subscribed_topic_names = names.iter().cloned().collect();
        }
        if let Some(r) = &req.subscribed_topic_regex {
            updated.subscribed_topic_regex = Some(r.clone());
        }
        updated.client_id = ctx.client_id.to_string();
        updated.client_host = ctx.client_host.to_string();

        let is_new_member = !g.members.contains_key(member_id) && replaced.is_none();
        let mut bump = g.group_epoch == 0;
        if updated.subscription_differs(&member) || is_new_member {
            records.push(rec_member_subscription(group_id, &updated));
            if updated.subscribed_topic_names != member.subscribed_topic_names {
                bump = true;
            }
        }

        let rx = regex::update(
            now_ms,
            self.config.regex_refresh_interval_ms,
            g,
            (&member, &updated),
            replaced_id,
            metadata,
        )?;
        records.extend(rx.records);
        bump |= rx.bump;
        let resolved = rx.resolved;

        // Subscription metadata: the subscribed topics that exist, from the snapshot.
        let mut names: BTreeSet<&String> = g
            .members
            .values()
            .filter(|m| m.member_id != member_id && Some(m.member_id.as_str()) != replaced_id)
            .flat_map(|m| member_topics(m, &resolved))
            .collect();
        names.extend(member_topics(&updated, &resolved));
        let sub_md: BTreeMap<String, SubscribedTopic> = names
            .into_iter()
            .filter_map(|n| {
                metadata.topic(n).map(|t| {
                    (
                        n.clone(),
                        SubscribedTopic {
                            id: t.id,
                            name: n.clone(),
                            partitions: t.partitions,
                        },
                    )
                })
            })
            .collect();
        if sub_md != g.subscription_metadata {
            records.push(rec_subscription_metadata(group_id, &sub_md));
            bump = true;
        }
        let mut group_epoch = g.group_epoch;
        if bump {
            group_epoch += 1;
            records.push(rec_epoch(group_id, group_epoch));
        }

        // 2. Target assignment.
        let (target_epoch, target) = if group_epoch > g.assignment_epoch {
            let name = g
                .preferred_assignor(Some((&updated, replaced_id)))
                .unwrap_or_else(|| self.config.assignors[0].clone());
            let (mine, recs) = compute_target(
                g,
                &updated,
                replaced,
                (&sub_md, &resolved),
                &name,
                group_epoch,
            );
            records.extend(recs);
            (group_epoch, mine)
        } else {
            let t = g
                .target_assignment
                .get(member_id)
                .or_else(|| replaced_id.and_then(|r| g.target_assignment.get(r)))
                .cloned()
                .unwrap_or_default();
            (g.assignment_epoch, t)
        };

        // 3. Reconcile.
        let mut rebalance = None;
        let mut reconciled = updated.clone();
        if !updated.is_reconciled_to(target_epoch) {
            let pe = |t: &Uuid, p: i32| g.partition_epoch(t, p);
            let next = reconcile::reconcile(&updated, target_epoch, &target, &pe, owned.as_ref())
                .map_err(|_| {
                GroupError::new(
                    ErrorCode::FencedMemberEpoch,
                    "The consumer group member is in a unknown state. The member must abandon \
                         all its partitions and rejoin.",
                )
            })?;
            if next.assignment_differs(&updated) {
                records.push(rec_current(group_id, &next));
                rebalance = Some((
                    member_id.to_string(),
                    (next.state == MemberState::UnrevokedPartitions).then(|| {
                        (
                            now_ms + i64::from(next.rebalance_timeout_ms.max(0)),
                            next.member_epoch,
                        )
                    }),
                ));
            }
            reconciled = next;
        }

        let full_request = epoch == 0
            || (req.rebalance_timeout_ms != -1
                && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
                && req.topic_partitions.is_some());
        let assignment = (full_request
            || reconciled.assigned_partitions != member.assigned_partitions)
            .then(|| hb_assignment(&reconciled.assigned_partitions));
        let response = ConsumerGroupHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: 0,
            error_message: None,
            member_id: Some(reconciled.member_id.clone()),
            member_epoch: reconciled.member_epoch,
            heartbeat_interval_ms: self.heartbeat_interval_ms(group_id),
            assignment,
        };
        Ok(Outcome {
            response,
            records,
            session: Some((
                member_id.to_string(),
                now_ms + i64::from(self.session_timeout_ms(group_id)),
            )),
            rebalance,
            drop_timers: replaced_id.map(str::to_string).into_iter().collect(),
        })
    }

    /// Fences members whose session or rebalance timeout expired at `now_ms`; returns the
    /// records to persist (already applied).
    pub fn tick(&mut self, now_ms: i64) -> Vec<CoordinatorRecord> {
        let mut expired: Vec<(i64, String, String, Option<i32>)> = Vec::new();
        for ((g, m), t) in &self.timers {
            if let Some(d) = t.session_deadline
                && d <= now_ms
            {
                expired.push((d, g.clone(), m.clone(), None));
            }
            if let Some((d, epoch)) = t.rebalance
                && d <= now_ms
            {
                expired.push((d, g.clone(), m.clone(), Some(epoch)));
            }
        }
        expired.sort();
        let mut out = Vec::new();
        for (_, gid, mid, rebalance_epoch) in expired {
            let key = (gid.clone(), mid.clone());
            let Some(g) = self.groups.get(&gid) else {
                self.timers.remove(&key);
                continue;
            };
            let Some(m) = g.members.get(&mid) else {
                self.timers.remove(&key);
                continue;
            };
            if let Some(e) = rebalance_epoch {
                if m.member_epoch != e {
                    if let Some(t) = self.timers.get_mut(&key) {
                        t.rebalance = None;
                    }
                    continue;
                }
            } else if self
                .timers
                .get(&key)
                .and_then(|t| t.session_deadline)
                .is_none_or(|d| d > now_ms)
            {
                continue;
            }
            let records = fence_records(g, &mid);
            for r in &records {
                self.replay(r);
            }
            self.timers.remove(&key);
            out.extend(records);
        }
        out
    }

    /// The earliest time [`ConsumerGroups::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers
            .values()
            .flat_map(|t| [t.session_deadline, t.rebalance.map(|r| r.0)])
            .flatten()
            .min()
    }

    /// After loading (replaying) the records, arms the timers as Kafka's `onLoaded`: a
    /// session timeout for every member, a rebalance timeout for members with partitions
    /// to revoke.
    pub fn on_loaded(&mut self, now_ms: i64) {
        self.on_loaded_where(now_ms, |_| true);
    }

    /// [`ConsumerGroups::on_loaded`] for the groups `loaded` selects (one
    /// `__consumer_offsets` partition's); the other groups' timers run on.
    pub fn on_loaded_where(&mut self, now_ms: i64, loaded: impl Fn(&str) -> bool) {
        self.timers.retain(|(gid, _), _| !loaded(gid));
        for (gid, g) in self.groups.iter().filter(|(gid, _)| loaded(gid)) {
            for (mid, m) in &g.members {
                let t = MemberTimers {
                    session_deadline: Some(now_ms + i64::from(self.session_timeout_ms(gid))),
                    rebalance: (m.state == MemberState::UnrevokedPartitions).then(|| {
                        (
                            now_ms + i64::from(m.rebalance_timeout_ms.max(0)),
                            m.member_epoch,
                        )
                    }),
                };
                self.timers.insert((gid.clone(), mid.clone()), t);
            }
        }
    }

    /// Forgets the groups `unloaded` selects and their timers: this node no longer
    /// coordinates their `__consumer_offsets` partition (Kafka's `onUnloaded`; members
    /// heartbeating here then hear NOT_COORDINATOR). Returns how many were unloaded.
    pub fn unload_where(&mut self, unloaded: impl Fn(&str) -> bool) -> usize {
        let before = self.groups.len();
        self.groups.retain(|gid, _| !unloaded(gid));
        self.timers.retain(|(gid, _), _| !unloaded(gid));
        before - self.groups.len()
    }

    /// Deletes an empty group (DeleteGroups, or offsets expiry of an empty group): returns
    /// Kafka's tombstones (applied). `NonEmptyGroup` if it has members,
    /// `GroupIdNotFound` if it does not exist.
    pub fn delete_group(&mut self, group_id: &str) -> Result<Vec<CoordinatorRecord>, ErrorCode> {
        let g = self
            .groups
            .get(group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        if !g.members.is_empty() {
            return Err(ErrorCode::NonEmptyGroup);
        }
        let gid = group_id.to_string();
        let mut records: Vec<CoordinatorRecord> = g
            .resolved_regexes
            .keys()
            .map(|r| regex::record(group_id, r, None))
            .collect();
        records.extend([
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
                group_id: gid.clone(),
                value: None,
            },
            CoordinatorRecord::ConsumerGroupPartitionMetadata {
                group_id: gid.clone(),
                value: None,
            },
            CoordinatorRecord::ConsumerGroupMetadata {
                group_id: gid,
                value: None,
            },
        ]);
        for r in &records {
            self.replay(r);
        }
        Ok(records)
    }

    /// ConsumerGroupDescribe: one entry per requested group, in request order.
    pub fn describe(
        &self,
        group_ids: &[String],
        metadata: &dyn TopicMetadataSource,
    ) -> ConsumerGroupDescribeResponse {
        let groups = group_ids
            .iter()
            .map(|gid| match self.groups.get(gid) {
                None => describe::DescribedGroup {
                    error_code: ErrorCode::GroupIdNotFound.code(),
                    error_message: Some(format!("Group {gid} not found.")),
                    group_id: gid.clone(),
                    ..Default::default()
                },
                Some(g) => {
                    let name_of = |id: &Uuid| {
                        metadata
                            .topic_name(id)
                            .or_else(|| {
                                g.subscription_metadata
                                    .values()
                                    .find(|t| t.id == *id)
                                    .map(|t| t.name.clone())
                            })
                            .unwrap_or_default()
                    };
                    let conv = |a: &Assignment| describe::Assignment {
                        topic_partitions: a
                            .iter()
                            .map(|(t, ps)| describe::TopicPartitions {
                                topic_id: *t,
                                topic_name: name_of(t),
                                partitions: ps.iter().copied().collect(),
                            })
                            .collect(),
                    };
                    describe::DescribedGroup {
                        error_code: 0,
                        error_message: None,
                        group_id: gid.clone(),
                        group_state: g.state().name().to_string(),
                        group_epoch: g.group_epoch,
                        assignment_epoch: g.assignment_epoch,
                        assignor_name: g
                            .preferred_assignor(None)
                            .unwrap_or_else(|| self.config.assignors[0].clone()),
                        members: g
                            .members
                            .values()
                            .map(|m| describe::Member {
                                member_id: m.member_id.clone(),
                                instance_id: m.instance_id.clone(),
                                rack_id: m.rack_id.clone(),
                                member_epoch: m.member_epoch,
                                client_id: m.client_id.clone(),
                                client_host: m.client_host.clone(),
                                subscribed_topic_names: m
                                    .subscribed_topic_names
                                    .iter()
                                    .cloned()
                                    .collect(),
                                subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                                assignment: conv(&m.assigned_partitions),
                                target_assignment: conv(
                                    g.target_assignment
                                        .get(&m.member_id)
                                        .unwrap_or(&Assignment::new()),
                                ),
                                member_type: m.member_type(),
                                ..Default::default()
                            })
                            .collect(),
                        authorized_operations: i32::MIN,
                    }
                }
            })
            .collect();
        ConsumerGroupDescribeResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    fn group_mut(&mut self, group_id: &str) -> &mut ConsumerGroup {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id))
    }
}

fn unknown_member(member_id: &str, group_id: &str) -> GroupError {
    GroupError::new(
        ErrorCode::UnknownMemberId,
        format!("Member {member_id} is not a member of group {group_id}."),
    )
}

fn fenced_instance(member_id: &str, iid: &str, owner: &str) -> GroupError {
    GroupError::new(
        ErrorCode::FencedInstanceId,
        format!("Static member {member_id} with instance id {iid} was fenced by member {owner}."),
    )
}

/// Kafka's `consumerGroupFenceMember`: the member's tombstones, the subscription metadata
/// without it (if that changes), and a group epoch bump. The target assignment is
/// recomputed on the next heartbeat of a remaining member.
fn fence_records(g: &ConsumerGroup, member_id: &str) -> Vec<CoordinatorRecord> {
    let mut records = Vec::new();
    push_member_tombstones(&mut records, &g.group_id, member_id);
    // Kafka's maybeDeleteResolvedRegularExpressions: a regex nobody else subscribes to.
    if let Some(r) = g
        .members
        .get(member_id)
        .and_then(|m| regex::effective(&m.subscribed_topic_regex))
        && g.resolved_regexes.contains_key(r)
        && !g.members.values().any(|o| {
            o.member_id != member_id && regex::effective(&o.subscribed_topic_regex) == Some(r)
        })
    {
        records.push(regex::record(&g.group_id, r, None));
    }
    let md = g.metadata_without(member_id);
    if md != g.subscription_metadata {
        records.push(rec_subscription_metadata(&g.group_id, &md));
    }
    records.push(rec_epoch(&g.group_id, g.group_epoch + 1));
    records
}

/// Kafka's `TargetAssignmentBuilder`: runs the assignor over all members (with `updated`
/// in place of its old self and without the static member it replaces) and returns the
/// updated member's new target plus the records: one per member whose target changed,
/// then the target assignment epoch.
fn compute_target(
    g: &ConsumerGroup,
    updated: &Member,
    replaced: Option<&Member>,
    (sub_md, resolved): (
        &BTreeMap<String, SubscribedTopic>,
        &BTreeMap<String, ResolvedRegex>,
    ),
    assignor_name: &str,
    epoch: i32,
) -> (Assignment, Vec<CoordinatorRecord>) {
    let replaced_id = replaced.map(|m| m.member_id.as_str());
    let topic_ids = |m: &Member| -> BTreeSet<Uuid> {
        member_topics(m, resolved)
            .filter_map(|n| sub_md.get(n).map(|t| t.id))
            .collect()
    };
    let mut members: BTreeMap<&str, &Member> = g
        .members
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != replaced_id)
        .map(|(id, m)| (id.as_str(), m))
        .collect();
    members.insert(updated.member_id.as_str(), updated);
    // Current targets (a replacing static member inherits the replaced one's).
    let current_target = |id: &str| -> Assignment {
        g.target_assignment
            .get(id)
            .or_else(|| {
                (id == updated.member_id)
                    .then_some(replaced_id)
                    .flatten()
                    .and_then(|r| g.target_assignment.get(r))
            })
            .cloned()
            .unwrap_or_default()
    };
    let spec = assignor::GroupSpec {
        members: members
            .values()
            .map(|m| assignor::MemberSpec {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                subscribed_topics: topic_ids(m),
                assignment: current_target(&m.member_id),
            })
            .collect(),
    };
    let topics: assignor::TopicCounts = sub_md.values().map(|t| (t.id, t.partitions)).collect();
    let result = assignor::assign(assignor_name, &spec, &topics)
        .or_else(|| assignor::assign(assignor::UNIFORM, &spec, &topics))
        .unwrap_or_default();
    let mut records = Vec::new();
    for m in &spec.members {
        let new = result.get(&m.member_id).cloned().unwrap_or_default();
        // As Kafka: compared with the group's target before this heartbeat (so a static
        // member replacing another always gets a record).
        if g.target_assignment.get(&m.member_id) != Some(&new) {
            records.push(rec_target_member(&g.group_id, &m.member_id, &new));
        }
    }
    records.push(rec_target_epoch(&g.group_id, epoch));
    let mine = result.get(&updated.member_id).cloned().unwrap_or_default();
    (mine, records)
}
