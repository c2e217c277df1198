//! The classic group coordinator: Kafka's `GroupMetadataManager` (classic part) and
//! `OffsetMetadataManager` rules as a state machine over injected time.
//!
//! Every operation takes `now` (ms) and answers at once, or — for a JoinGroup or SyncGroup
//! that must wait for the rest of the group — returns [`Reply::Pending`] with a ticket that a
//! later operation or [`Coordinator::tick`] completes. Responses to deliver and records to
//! persist accumulate in [`Effects`]; the driver takes them with
//! [`Coordinator::take_effects`] after each call, persists the records, and only then
//! delivers the completions (so a SyncGroup answer follows the durable group metadata, as
//! in Kafka). [`Coordinator::next_deadline`] says when `tick` has work, so the driver sleeps
//! exactly until then.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::coordinator::OffsetCommitValue;
use arus_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use arus_protocol::messages::join_group_response::JoinGroupResponseMember;
use arus_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use arus_protocol::{Bytes, ErrorCode};
use tracing::{debug, info};

use crate::classic::{Group, GroupState, JoinTimer, Member, OffsetEntry, Ticket};
use crate::config::GroupConfig;
use crate::records::CoordinatorRecord;

mod join_rules;
use join_rules::*;

/// An answer now, or a ticket completed later through [`Effects::completions`].
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Pending(Ticket),
}

/// A deferred response that became ready.
#[derive(Debug, Clone)]
pub enum Completion {
    Join(Ticket, JoinGroupResponse),
    Sync(Ticket, SyncGroupResponse),
}

/// What the driver must do after an operation.
#[derive(Debug, Default)]
pub struct Effects {
    pub completions: Vec<Completion>,
    /// Records for `__consumer_offsets`, in order.
    pub records: Vec<CoordinatorRecord>,
    /// Transactional offset commits: each entry is written to `__consumer_offsets` as a
    /// transactional batch of its producer id/epoch, in order, after `records` (an operation
    /// that yields both ran its timers, whose records come first, before the commit).
    pub txn_records: Vec<TxnRecords>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.completions.is_empty() && self.records.is_empty() && self.txn_records.is_empty()
    }
}

/// OffsetCommit records of one TxnOffsetCommit, to be appended as a transactional batch.
#[derive(Debug, Clone)]
pub struct TxnRecords {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub records: Vec<CoordinatorRecord>,
}

/// A JoinGroup request, normalised across versions.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+: an unknown member first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
    /// JoinGroup v9+ (KIP-814): a static leader rejoining a stable group is told to skip
    /// the assignment instead of being hidden behind its old member id.
    pub supports_skip_assignment: bool,
}

/// A SyncGroup request, normalised across versions.
#[derive(Debug, Clone)]
pub struct SyncParams {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// One partition's commit.
#[derive(Debug, Clone)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// An OffsetCommit request, normalised across versions.
#[derive(Debug, Clone)]
pub struct CommitParams {
    pub group_id: String,
    /// -1: a commit by a consumer outside group management (simple/standalone).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// OffsetCommit v2–v4 `retention_time_ms`; -1 uses the broker's retention.
    pub retention_time_ms: i64,
    pub partitions: Vec<CommitPartition>,
}

/// A TxnOffsetCommit request, normalised across versions.
#[derive(Debug, Clone)]
pub struct TxnCommitParams {
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when not sent (TxnOffsetCommit < v3), or for a KIP-848 consumer group whose
    /// member epoch the broker has already validated.
    pub generation_id: i32,
    /// "" when not sent.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub partitions: Vec<CommitPartition>,
}

/// A transactional offset waiting for its transaction's marker, with its place in the log
/// (Kafka's `OffsetAndMetadata.recordOffset`).
#[derive(Debug, Clone)]
struct PendingOffset {
    entry: OffsetEntry,
    seq: u64,
}

/// Pending offsets of one producer: group → (topic, partition) → offset. A group present
/// with no offsets left (a tombstone removed them) still counts as an open transaction of
/// that group until the marker, as Kafka's `openTransactionsByGroup` does.
type ProducerPending = BTreeMap<String, BTreeMap<(String, i32), PendingOffset>>;

/// Committed offsets by topic: (partition, offset if committed).
pub type TopicOffsets = Vec<(String, Vec<(i32, Option<OffsetEntry>)>)>;

/// A ListGroups row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// Mutable context shared by the rule functions below.
struct Cx<'a> {
    cfg: &'a GroupConfig,
    out: &'a mut Effects,
    now: i64,
}

pub struct Coordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    next_ticket: Ticket,
    effects: Effects,
    next_offset_expiry_ms: i64,
    /// Group id → topics whose offsets must not expire although the classic side sees an
    /// offsets-only group (the topics a non-empty KIP-848 consumer group subscribes to; set
    /// by the driver, which owns both kinds of group).
    offsets_kept: BTreeMap<String, BTreeSet<String>>,
    /// Kafka's `pendingTransactionalOffsets`, by producer id.
    pending_txn: BTreeMap<i64, ProducerPending>,
    /// Log position of every committed offset: group → (topic, partition) → sequence. Only
    /// consulted for keys present in the group's offsets (stale entries are harmless).
    offset_seq: BTreeMap<String, BTreeMap<(String, i32), u64>>,
    /// Next log position: every OffsetCommit record written or replayed takes one, in log
    /// order, so a transaction's offsets never overwrite a commit written after them.
    next_seq: u64,
}

fn join_error(member_id: &str, code: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        protocol_type: None,
        protocol_name: None,
        ..Default::default()
    }
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    e: Option<&OffsetEntry>,
) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
        value: e.map(|e| OffsetCommitValue {
            offset: e.offset,
            leader_epoch: e.leader_epoch,
            metadata: e.metadata.clone(),
            commit_timestamp: e.commit_timestamp,
            expire_timestamp: e.expire_timestamp.unwrap_or(-1),
            ..Default::default()
        }),
    }
}

fn group_record(g: &Group) -> CoordinatorRecord {
    CoordinatorRecord::GroupMetadata {
        group: g.id.clone(),
        value: Some(g.snapshot()),
    }
}

fn group_tombstone(id: &str) -> CoordinatorRecord {
    CoordinatorRecord::GroupMetadata {
        group: id.to_string(),
        value: None,
    }
}

/// The JoinGroup answer for `member_id` in the group's current generation.
fn join_response(g: &Group, member_id: &str, with_members: bool) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: 0,
        generation_id: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader: g.leader.clone().unwrap_or_default(),
        skip_assignment: false,
        member_id: member_id.to_string(),
        members: if with_members {
            g.members
                .values()
                .map(|m| JoinGroupResponseMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(g.protocol_name.as_deref()),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

impl Coordinator {
    pub fn new(config: GroupConfig, now: i64) -> Coordinator {
        Coordinator {
            next_offset_expiry_ms: now + config.offsets_retention_check_interval_ms,
            config,
            groups: BTreeMap::new(),
            next_ticket: 1,
            effects: Effects::default(),
            offsets_kept: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            offset_seq: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Topics whose committed offsets must not expire, per group (see `offsets_kept`).
    pub fn set_offsets_kept(&mut self, kept: BTreeMap<String, BTreeSet<String>>) {
        self.offsets_kept = kept;
    }

    /// Whether the group has committed offsets or an open transaction that committed offsets
    /// for it (Kafka's `cleanupExpiredOffsets` never removes a group in that state).
    pub fn has_offsets(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| !g.offsets.is_empty())
            || has_open_txn(&self.pending_txn, group_id)
    }

    /// Whether `group_id` is a classic group with no members (Kafka's `ClassicGroup.isEmpty`
    /// — also true of a group that only holds offsets committed without group management).
    /// Pending transactional offsets do not count, as in Kafka: they are kept apart from the
    /// group and survive its conversion to a consumer group.
    pub fn is_empty_group(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| g.state == GroupState::Empty && g.pending_members.is_empty())
    }

    /// Kafka's `createGroupTombstoneRecords` for an empty classic group that becomes a
    /// KIP-848 consumer group: writes the group metadata tombstone and forgets the group,
    /// keeping its committed offsets (they belong to the group id, whatever its type).
    /// Returns false (and does nothing) unless the group is empty.
    pub fn remove_empty_group_metadata(&mut self, group_id: &str, now: i64) -> bool {
        if !self.is_empty_group(group_id) {
            return false;
        }
        let offsets = self
            .groups
            .remove(group_id)
            .map(|g| g.offsets)
            .unwrap_or_default();
        self.effects.records.push(group_tombstone(group_id));
        if !offsets.is_empty() {
            let mut g = Group::new(group_id, now);
            g.offsets = offsets;
            self.groups.insert(group_id.to_string(), g);
        }
        true
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Responses and records produced since the last call.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    fn ticket(&mut self) -> Ticket {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    /// Pulls an already-completed join/sync for `ticket` out of the effects, so the caller
    /// answers it directly.
    fn settle_join(&mut self, ticket: Ticket) -> Reply<JoinGroupResponse> {
        if let Some(i) = self
            .effects
            .completions
            .iter()
            .position(|c| matches!(c, Completion::Join(t, _) if *t == ticket))
            && let Completion::Join(_, r) = self.effects.completions.remove(i)
        {
            return Reply::Now(r);
        }
        Reply::Pending(ticket)
    }

    fn settle_sync(&mut self, ticket: Ticket) -> Reply<SyncGroupResponse> {
        if let Some(i) = self
            .effects
            .completions
            .iter()
            .position(|c| matches!(c, Completion::Sync(t, _) if *t == ticket))
            && let Completion::Sync(_, r) = self.effects.completions.remove(i)
        {
            return Reply::Now(r);
        }
        Reply::Pending(ticket)
    }

    // ---------------------------------------------------------------- JoinGroup

    pub fn join_group(&mut self, p: JoinParams, now: i64) -> Reply<JoinGroupResponse> {
        let ticket = self.ticket();
        let immediate = self.join_inner(&p, ticket, now);
        // The join may complete the rebalance at once (every member now waiting), or an
        // expired initial delay may be due: run the timers for `now`.
        if let Some(g) = self.groups.get_mut(&p.group_id) {
            let mut cx = Cx {
                cfg: &self.config,
                out: &mut self.effects,
                now,
            };
            maybe_complete_join(g, &mut cx);
        }
        self.tick(now);
        match immediate {
            Some(r) => Reply::Now(r),
            None => self.settle_join(ticket),
        }
    }

    fn join_inner(
        &mut self,
        p: &JoinParams,
        ticket: Ticket,
        now: i64,
    ) -> Option<JoinGroupResponse> {
        if p.group_id.is_empty() {
            return Some(join_error(&p.member_id, ErrorCode::InvalidGroupId));
        }
        if p.session_timeout_ms < self.config.min_session_timeout_ms
            || p.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Some(join_error(&p.member_id, ErrorCode::InvalidSessionTimeout));
        }
        let unknown = p.member_id.is_empty();
        if !self.groups.contains_key(&p.group_id) {
            if !unknown {
                return Some(join_error(&p.member_id, ErrorCode::UnknownMemberId));
            }
            self.groups
                .insert(p.group_id.clone(), Group::new(&p.group_id, now));
        }
        let g = self.groups.get_mut(&p.group_id).expect("present");
        let mut cx = Cx {
            cfg: &self.config,
            out: &mut self.effects,
            now,
        };
        if !accept_joining_member(g, &p.member_id, cx.cfg.max_size) {
            if g.members.contains_key(&p.member_id) {
                remove_member_and_update_group(g, &p.member_id, &mut cx);
            }
            return Some(join_error("", ErrorCode::GroupMaxSizeReached));
        }
        if unknown {
            new_member_join(g, p, ticket, &mut cx)
        } else {
            current_member_join(g, p, ticket, &mut cx)
        }
    }

    // ---------------------------------------------------------------- SyncGroup

    pub fn sync_group(&mut self, p: SyncParams, now: i64) -> Reply<SyncGroupResponse> {
        let ticket = self.ticket();
        let immediate = self.sync_inner(&p, ticket, now);
        self.tick(now);
        match immediate {
            Some(r) => Reply::Now(r),
            None => self.settle_sync(ticket),
        }
    }

    fn sync_inner(
        &mut self,
        p: &SyncParams,
        ticket: Ticket,
        now: i64,
    ) -> Option<SyncGroupResponse> {
        if p.group_id.is_empty() {
            return Some(sync_error(ErrorCode::InvalidGroupId));
        }
        let Some(g) = self.groups.get_mut(&p.group_id) else {
            return Some(sync_error(ErrorCode::UnknownMemberId));
        };
        let mut cx = Cx {
            cfg: &self.config,
            out: &mut self.effects,
            now,
        };
        if g.state == GroupState::Dead {
            return Some(sync_error(ErrorCode::CoordinatorNotAvailable));
        }
        if g.is_static_member_fenced(&p.member_id, p.group_instance_id.as_deref()) {
            return Some(sync_error(ErrorCode::FencedInstanceId));
        }
        if !g.members.contains_key(&p.member_id) {
            return Some(sync_error(ErrorCode::UnknownMemberId));
        }
        if p.generation_id != g.generation {
            return Some(sync_error(ErrorCode::IllegalGeneration));
        }
        if p.protocol_type
            .as_ref()
            .is_some_and(|t| g.protocol_type.as_ref() != Some(t))
            || p.protocol_name
                .as_ref()
                .is_some_and(|n| g.protocol_name.as_ref() != Some(n))
        {
            return Some(sync_error(ErrorCode::InconsistentGroupProtocol));
        }
        match g.state {
            GroupState::Empty | GroupState::Dead => Some(sync_error(ErrorCode::UnknownMemberId)),
            GroupState::PreparingRebalance => Some(sync_error(ErrorCode::RebalanceInProgress)),
            GroupState::CompletingRebalance => {
                let m = g.members.get_mut(&p.member_id).expect("checked");
                if let Some(old) = m.sync_waiter.replace(ticket) {
                    // A retried SyncGroup supersedes the earlier one.
                    cx.out.completions.push(Completion::Sync(
                        old,
                        sync_error(ErrorCode::RebalanceInProgress),
                    ));
                }
                remove_pending_sync(g, &p.member_id);
                if g.is_leader(&p.member_id) {
                    let assignments: BTreeMap<&str, &Bytes> = p
                        .assignments
                        .iter()
                        .map(|(id, a)| (id.as_str(), a))
                        .collect();
                    for m in g.members.values_mut() {
                        // Members the leader left out get an empty assignment, as in Kafka.
                        m.assignment = assignments
                            .get(m.id.as_str())
                            .map(|a| (*a).clone())
                            .unwrap_or_default();
                    }
                    cx.out.records.push(group_record(g));
                    propagate_assignment(g, ErrorCode::None, &mut cx);
                    g.transition(GroupState::Stable, now);
                    info!(group = %g.id, generation = g.generation, members = g.members.len(), "group is stable");
                }
                None
            }
            GroupState::Stable => {
                remove_pending_sync(g, &p.member_id);
                let m = g.members.get_mut(&p.member_id).expect("checked");
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                Some(SyncGroupResponse {
                    error_code: 0,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                    ..Default::default()
                })
            }
        }
    }

    // ---------------------------------------------------------------- Heartbeat

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        now: i64,
    ) -> ErrorCode {
        self.tick(now);
        if group_id.is_empty() {
            return ErrorCode::InvalidGroupId;
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if g.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if g.is_static_member_fenced(member_id, group_instance_id) {
            return ErrorCode::FencedInstanceId;
        }
        let Some(m) = g.members.get_mut(member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if generation_id != g.generation {
            return ErrorCode::IllegalGeneration;
        }
        match g.state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                ErrorCode::None
            }
            GroupState::PreparingRebalance => {
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                ErrorCode::RebalanceInProgress
            }
        }
    }

    // ---------------------------------------------------------------- LeaveGroup

    /// Removes each `(member_id, group_instance_id)`; `Err` is a group-level error.
    pub fn leave_group(
        &mut self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        self.tick(now);
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return Ok(vec![ErrorCode::UnknownMemberId; members.len()]);
        };
        if g.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let mut cx = Cx {
            cfg: &self.config,
            out: &mut self.effects,
            now,
        };
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance) in members {
            let code = if member_id.is_empty() {
                match instance
                    .as_ref()
                    .and_then(|i| g.static_members.get(i))
                    .cloned()
                {
                    Some(id) => {
                        info!(group = %g.id, member = %id, "static member left");
                        remove_member_and_update_group(g, &id, &mut cx);
                        ErrorCode::None
                    }
                    None => ErrorCode::UnknownMemberId,
                }
            } else if g.is_static_member_fenced(member_id, instance.as_deref()) {
                ErrorCode::FencedInstanceId
            } else if g.pending_members.remove(member_id).is_some() {
                maybe_complete_join(g, &mut cx);
                ErrorCode::None
            } else if g.members.contains_key(member_id) {
                info!(group = %g.id, member = %member_id, "member left");
                remove_member_and_update_group(g, member_id, &mut cx);
                ErrorCode::None
            } else {
                ErrorCode::UnknownMemberId
            };
            results.push(code);
        }
        Ok(results)
    }

    // ---------------------------------------------------------------- OffsetCommit

    /// Commits offsets; `Err` applies to every partition of the request.
    pub fn commit_offsets(
        &mut self,
        p: CommitParams,
        now: i64,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        self.tick(now);
        if !self.groups.contains_key(&p.group_id) {
            if p.generation_id >= 0 {
                // A generation from a group we do not know: reject, as Kafka does.
                return Err(ErrorCode::IllegalGeneration);
            }
            self.groups
                .insert(p.group_id.clone(), Group::new(&p.group_id, now));
        }
        let g = self.groups.get_mut(&p.group_id).expect("present");
        if g.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if g.is_static_member_fenced(&p.member_id, p.group_instance_id.as_deref()) {
            return Err(ErrorCode::FencedInstanceId);
        }
        let simple = p.generation_id < 0 && g.state == GroupState::Empty;
        if !simple {
            let Some(m) = g.members.get_mut(&p.member_id) else {
                return Err(ErrorCode::UnknownMemberId);
            };
            if p.generation_id != g.generation {
                return Err(ErrorCode::IllegalGeneration);
            }
            match g.state {
                // Kafka accepts commits while preparing a rebalance: the heartbeat tells the
                // member about the rebalance, and committing first is exactly what it should do.
                GroupState::Stable | GroupState::PreparingRebalance => {
                    m.heartbeat_deadline = now + m.session_timeout_ms as i64;
                }
                GroupState::CompletingRebalance => return Err(ErrorCode::RebalanceInProgress),
                GroupState::Empty | GroupState::Dead => return Err(ErrorCode::UnknownMemberId),
            }
        }
        let max_meta = self.config.offset_metadata_max_bytes;
        let mut results = Vec::with_capacity(p.partitions.len());
        for part in p.partitions {
            let metadata = part.metadata.unwrap_or_default();
            if metadata.len() > max_meta {
                results.push(ErrorCode::OffsetMetadataTooLarge);
                continue;
            }
            let entry = OffsetEntry {
                offset: part.offset,
                leader_epoch: part.leader_epoch,
                metadata,
                commit_timestamp: now,
                expire_timestamp: (p.retention_time_ms >= 0)
                    .then(|| now.saturating_add(p.retention_time_ms)),
            };
            self.effects.records.push(offset_record(
                &g.id,
                &part.topic,
                part.partition,
                Some(&entry),
            ));
            let seq = bump(&mut self.next_seq);
            self.offset_seq
                .entry(g.id.clone())
                .or_default()
                .insert((part.topic.clone(), part.partition), seq);
            g.offsets.insert((part.topic, part.partition), entry);
            results.push(ErrorCode::None);
        }
        Ok(results)
    }

    // ---------------------------------------------------------------- TxnOffsetCommit

    /// Kafka's `OffsetMetadataManager.commitTransactionalOffset`: validates like
    /// `ClassicGroup.validateOffsetCommit(isTransactional = true)`, then records the offsets
    /// as pending for `p.producer_id` — invisible to [`Coordinator::fetch_offsets`] until
    /// [`Coordinator::complete_txn`] commits them. Their records go to
    /// [`Effects::txn_records`]. `Err` applies to every partition of the request.
    ///
    /// KIP-848 consumer groups: the broker validates the member epoch itself
    /// (`ConsumerGroup.validateOffsetCommit`) and then calls this with `generation_id` -1,
    /// an empty `member_id` and no `group_instance_id`, which the classic rules accept for
    /// any group this side sees (a consumer group is at most an offsets-only group here).
    pub fn txn_commit_offsets(
        &mut self,
        p: TxnCommitParams,
        now: i64,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        self.tick(now);
        if !self.groups.contains_key(&p.group_id) {
            if p.generation_id >= 0 {
                return Err(ErrorCode::IllegalGeneration);
            }
            // Kafka creates a "simple" group, as for a plain commit without membership.
            self.groups
                .insert(p.group_id.clone(), Group::new(&p.group_id, now));
        }
        let g = self
            .groups
            .get(&p.group_id)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        validate_txn_commit(
            g,
            p.generation_id,
            &p.member_id,
            p.group_instance_id.as_deref(),
        )?;
        let max_meta = self.config.offset_metadata_max_bytes;
        let mut results = Vec::with_capacity(p.partitions.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for part in p.partitions {
            let metadata = part.metadata.unwrap_or_default();
            if metadata.len() > max_meta {
                results.push(ErrorCode::OffsetMetadataTooLarge);
                continue;
            }
            // TxnOffsetCommit has no retention field: the broker's retention applies.
            let entry = OffsetEntry {
                offset: part.offset,
                leader_epoch: part.leader_epoch,
                metadata,
                commit_timestamp: now,
                expire_timestamp: None,
            };
            records.push(offset_record(
                &p.group_id,
                &part.topic,
                part.partition,
                Some(&entry),
            ));
            let seq = bump(&mut self.next_seq);
            accepted.push(((part.topic, part.partition), PendingOffset { entry, seq }));
            results.push(ErrorCode::None);
        }
        if !records.is_empty() {
            // Only a written record opens the transaction for the group (Kafka learns of it
            // by replaying that record).
            self.pending_txn
                .entry(p.producer_id)
                .or_default()
                .entry(p.group_id.clone())
                .or_default()
                .extend(accepted);
            self.effects.txn_records.push(TxnRecords {
                producer_id: p.producer_id,
                producer_epoch: p.producer_epoch,
                records,
            });
        }
        Ok(results)
    }

    /// Kafka's `replayEndTransactionMarker`: a COMMIT or ABORT marker of `producer_id` was
    /// written to (or replayed from) `__consumer_offsets`. Commit moves the producer's
    /// pending offsets of every group into the committed offsets — except where a commit
    /// written later in the log than the transactional one already holds the partition
    /// (Kafka compares record offsets; this compares the coordinator's log sequence, so a
    /// partition's records must reach this coordinator in log order). Abort drops them.
    /// Emits no records: the marker is the record.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool, now: i64) {
        self.complete_txn_where(producer_id, commit, now, |_| true);
    }

    /// [`Coordinator::complete_txn`] limited to the groups for which `in_scope` holds —
    /// those of the `__consumer_offsets` partition the marker was written to. Kafka keeps
    /// one coordinator shard per partition, so a marker only ends the transaction's offsets
    /// of that partition; with one coordinator for every partition, this keeps a producer's
    /// offsets in another partition pending until that partition's own marker (which
    /// matters when loading, where partitions are replayed one after another).
    pub fn complete_txn_where(
        &mut self,
        producer_id: i64,
        commit: bool,
        now: i64,
        in_scope: impl Fn(&str) -> bool,
    ) {
        let Some(all) = self.pending_txn.get_mut(&producer_id) else {
            return;
        };
        let groups: Vec<String> = all.keys().filter(|g| in_scope(g)).cloned().collect();
        let pending: ProducerPending = groups
            .into_iter()
            .filter_map(|g| all.remove_entry(&g))
            .collect();
        if all.is_empty() {
            self.pending_txn.remove(&producer_id);
        }
        if !commit {
            debug!(producer_id, "aborted transactional offset commits");
            return;
        }
        for (group, offsets) in pending {
            if offsets.is_empty() {
                continue;
            }
            let g = self
                .groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now));
            let seqs = self.offset_seq.entry(group).or_default();
            for (key, po) in offsets {
                let newer_committed =
                    g.offsets.contains_key(&key) && seqs.get(&key).is_some_and(|s| *s > po.seq);
                if newer_committed {
                    debug!(group = %g.id, topic = %key.0, partition = key.1, producer_id,
                        "transactional offset superseded by a later commit");
                    continue;
                }
                seqs.insert(key.clone(), po.seq);
                g.offsets.insert(key, po.entry);
            }
        }
    }

    /// Loader: an OffsetCommit record read from a transactional batch of `producer_id`, in
    /// log order with the records given to [`Coordinator::replay`]. Pending until the
    /// producer's marker is replayed through [`Coordinator::complete_txn`]. As in Kafka's
    /// `OffsetMetadataManager.replay`, a tombstone is applied like any other (the producer
    /// id only matters for offsets), and so are records of other kinds.
    pub fn replay_txn_offset(&mut self, producer_id: i64, record: CoordinatorRecord, now: i64) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(v),
            } if producer_id >= 0 => {
                self.groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, now));
                let seq = bump(&mut self.next_seq);
                self.pending_txn
                    .entry(producer_id)
                    .or_default()
                    .entry(group)
                    .or_default()
                    .insert(
                        (topic, partition),
                        PendingOffset {
                            entry: entry_from_value(v),
                            seq,
                        },
                    );
            }
            other => self.replay(other, now),
        }
    }

    /// Kafka's `hasPendingTransactionalOffsets`: whether an open transaction holds an offset
    /// for the partition (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        pending_has(&self.pending_txn, group_id, topic, partition)
    }

    /// Whether `producer_id` has an open transaction with offsets in any group here.
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.pending_txn.contains_key(&producer_id)
    }

    // ---------------------------------------------------------------- OffsetFetch

    /// Committed offsets of `group_id`: the requested partitions (`None` for each one never
    /// committed), or every committed partition when `topics` is `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> TopicOffsets {
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(t, parts)| {
                    (
                        t.clone(),
                        parts
                            .iter()
                            .map(|p| (*p, offsets.and_then(|o| o.get(&(t.clone(), *p))).cloned()))
                            .collect(),
                    )
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetEntry>)>> =
                    BTreeMap::new();
                for ((t, p), e) in offsets.into_iter().flatten() {
                    by_topic
                        .entry(t.clone())
                        .or_default()
                        .push((*p, Some(e.clone())));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    // ---------------------------------------------------------------- Describe / List

    /// DescribeGroups for one group (a group we do not know is reported `Dead`, as Kafka
    /// does up to DescribeGroups v5). Member metadata and assignments are only shown for
    /// a Stable group.
    pub fn describe(&self, group_id: &str) -> DescribedGroup {
        let Some(g) = self.groups.get(group_id) else {
            return DescribedGroup {
                error_code: 0,
                group_id: group_id.to_string(),
                group_state: GroupState::Dead.name().into(),
                ..Default::default()
            };
        };
        let stable = g.state == GroupState::Stable;
        DescribedGroup {
            error_code: 0,
            group_id: g.id.clone(),
            group_state: g.state.name().into(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                g.protocol_name.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| DescribedGroupMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: if stable {
                        m.metadata_for(g.protocol_name.as_deref())
                    } else {
                        Bytes::new()
                    },
                    member_assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn list(&self) -> Vec<ListedGroup> {
        self.groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    // ---------------------------------------------------------------- DeleteGroups

    /// DeleteGroups. Pending transactional offsets do not keep a group alive: as in Kafka's
    /// `OffsetMetadataManager.deleteAllOffsets`, their partitions get a tombstone too (once,
    /// if not already tombstoned as committed) and are dropped from the open transactions;
    /// the transactions stay open until their markers, which then commit nothing here.
    pub fn delete_groups(&mut self, ids: &[String], now: i64) -> Vec<ErrorCode> {
        self.tick(now);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(g) = self.groups.get(id) else {
                out.push(ErrorCode::GroupIdNotFound);
                continue;
            };
            let code = match g.state {
                GroupState::Dead => ErrorCode::GroupIdNotFound,
                GroupState::Empty if g.pending_members.is_empty() => {
                    let mut tombstoned: BTreeSet<&(String, i32)> = g.offsets.keys().collect();
                    for producer in self.pending_txn.values() {
                        if let Some(pending) = producer.get(id) {
                            tombstoned.extend(pending.keys());
                        }
                    }
                    for (t, p) in tombstoned {
                        self.effects.records.push(offset_record(id, t, *p, None));
                    }
                    self.effects.records.push(group_tombstone(id));
                    for producer in self.pending_txn.values_mut() {
                        if let Some(pending) = producer.get_mut(id) {
                            pending.clear();
                        }
                    }
                    self.groups.remove(id);
                    self.offset_seq.remove(id);
                    info!(group = %id, "deleted group");
                    ErrorCode::None
                }
                _ => ErrorCode::NonEmptyGroup,
            };
            out.push(code);
        }
        out
    }

    // ---------------------------------------------------------------- OffsetDelete

    /// Deletes committed offsets; `Err` is a group-level error.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        now: i64,
    ) -> Result<Vec<(String, Vec<(i32, ErrorCode)>)>, ErrorCode> {
        self.tick(now);
        let Some(g) = self.groups.get_mut(group_id) else {
            return Err(ErrorCode::GroupIdNotFound);
        };
        let subscribed = match g.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => BTreeSet::new(),
            _ => {
                if g.protocol_type.as_deref() != Some("consumer") {
                    return Err(ErrorCode::NonEmptyGroup);
                }
                g.subscribed_topics().unwrap_or_default()
            }
        };
        let mut out = Vec::with_capacity(topics.len());
        for (t, parts) in topics {
            let is_subscribed = subscribed.contains(t);
            let mut res = Vec::with_capacity(parts.len());
            for p in parts {
                if is_subscribed {
                    res.push((*p, ErrorCode::GroupSubscribedToTopic));
                    continue;
                }
                // Kafka 4: a tombstone also when only a pending transactional offset exists;
                // replaying it drops that pending offset (see `drop_pending`).
                let key = (t.clone(), *p);
                let committed = g.offsets.remove(&key).is_some();
                if committed || pending_has(&self.pending_txn, group_id, t, *p) {
                    drop_pending(&mut self.pending_txn, group_id, &key);
                    forget_seq(&mut self.offset_seq, group_id, &key);
                    self.effects
                        .records
                        .push(offset_record(group_id, t, *p, None));
                }
                res.push((*p, ErrorCode::None));
            }
            out.push((t.clone(), res));
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- timers

    /// The earliest time at which [`Coordinator::tick`] has something to do.
    pub fn next_deadline(&self) -> i64 {
        let mut next = self.next_offset_expiry_ms;
        for g in self.groups.values() {
            for m in g.members.values() {
                next = next.min(m.heartbeat_deadline);
            }
            for d in g.pending_members.values() {
                next = next.min(*d);
            }
            if let Some((d, _)) = g.join_timer {
                next = next.min(d);
            }
            if let Some(d) = g.sync_deadline {
                next = next.min(d);
            }
        }
        next
    }

    /// Runs every timer due at `now`: session expiry, the end of a join phase (initial delay
    /// or rebalance timeout), members that never sent SyncGroup, offset retention.
    pub fn tick(&mut self, now: i64) {
        let cfg = &self.config;
        let out = &mut self.effects;
        for g in self.groups.values_mut() {
            let mut cx = Cx { cfg, out, now };
            // Bounded: each pass either removes something or moves a deadline past `now`.
            for _ in 0..64 {
                if !tick_group(g, &mut cx) {
                    break;
                }
            }
        }
        if now >= self.next_offset_expiry_ms {
            self.next_offset_expiry_ms = now + self.config.offsets_retention_check_interval_ms;
            self.expire_offsets(now);
        }
    }

    /// Kafka's `cleanupGroupMetadata`: drops expired offsets and then empty groups that have
    /// none left.
    pub fn expire_offsets(&mut self, now: i64) {
        let retention = self.config.offsets_retention_ms;
        let mut dead = Vec::new();
        for g in self.groups.values_mut() {
            // Kafka 4's ClassicGroup.offsetExpirationCondition.
            // Returns whether the base time is the group's state time, and the topics whose
            // offsets must stay (those a live consumer group subscribes to).
            let (use_state_time, keep) = match (&g.protocol_type, g.state) {
                (None, _) => (
                    false,
                    self.offsets_kept.get(&g.id).cloned().unwrap_or_default(),
                ),
                (Some(_), GroupState::Empty) => (true, BTreeSet::new()),
                (Some(_), GroupState::Stable) => match g.subscribed_topics() {
                    Some(topics) => (false, topics),
                    None => continue,
                },
                _ => continue,
            };
            let state_ts = g.state_timestamp;
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|((topic, _), _)| !keep.contains(topic))
                // Kafka does not expire an offset while a transaction holds a pending one
                // for the same partition.
                .filter(|((topic, p), _)| !pending_has(&self.pending_txn, &g.id, topic, *p))
                .filter(|(_, e)| match e.expire_timestamp {
                    Some(exp) => now >= exp,
                    None => {
                        let base = if use_state_time {
                            state_ts.unwrap_or(e.commit_timestamp)
                        } else {
                            e.commit_timestamp
                        };
                        now - base >= retention
                    }
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                g.offsets.remove(&k);
                forget_seq(&mut self.offset_seq, &g.id, &k);
                self.effects
                    .records
                    .push(offset_record(&g.id, &k.0, k.1, None));
                debug!(group = %g.id, topic = %k.0, partition = k.1, "expired committed offset");
            }
            if g.state == GroupState::Empty
                && g.offsets.is_empty()
                && g.pending_members.is_empty()
                && !has_open_txn(&self.pending_txn, &g.id)
            {
                g.transition(GroupState::Dead, now);
                dead.push(g.id.clone());
            }
        }
        for id in dead {
            self.groups.remove(&id);
            self.offset_seq.remove(&id);
            self.effects.records.push(group_tombstone(&id));
            info!(group = %id, "removed empty group with no committed offsets");
        }
    }

    // ---------------------------------------------------------------- loading

    /// Applies one record read back from `__consumer_offsets` (in log order).
    /// Records of other kinds (KIP-848 groups) are ignored here.
    pub fn replay(&mut self, record: CoordinatorRecord, now: i64) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    let g = self
                        .groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group, now));
                    let seq = bump(&mut self.next_seq);
                    self.offset_seq
                        .entry(group)
                        .or_default()
                        .insert((topic.clone(), partition), seq);
                    g.offsets.insert((topic, partition), entry_from_value(v));
                }
                None => {
                    // Kafka's `OffsetMetadataManager.replay`: a tombstone also removes the
                    // partition's pending transactional offsets (the group deletion or
                    // OffsetDelete that wrote it covered those too).
                    let key = (topic, partition);
                    drop_pending(&mut self.pending_txn, &group, &key);
                    forget_seq(&mut self.offset_seq, &group, &key);
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.offsets.remove(&key);
                        if g.offsets.is_empty()
                            && g.generation == 0
                            && g.members.is_empty()
                            && !has_open_txn(&self.pending_txn, &group)
                        {
                            self.groups.remove(&group);
                        }
                    }
                }
            },
            CoordinatorRecord::GroupMetadata { group, value } => {
                let offsets = self
                    .groups
                    .remove(&group)
                    .map(|g| g.offsets)
                    .unwrap_or_default();
                let mut g = Group::new(&group, now);
                g.offsets = offsets;
                match value {
                    Some(v) => {
                        g.generation = v.generation;
                        g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
                        g.protocol_name = v.protocol.filter(|p| !p.is_empty());
                        g.leader = v.leader.filter(|l| !l.is_empty());
                        g.state_timestamp = (v.current_state_timestamp >= 0)
                            .then_some(v.current_state_timestamp)
                            .or(Some(now));
                        for m in v.members {
                            if let Some(i) = &m.group_instance_id {
                                g.static_members.insert(i.clone(), m.member_id.clone());
                            }
                            g.members.insert(
                                m.member_id.clone(),
                                Member {
                                    id: m.member_id,
                                    instance_id: m.group_instance_id,
                                    client_id: m.client_id,
                                    client_host: m.client_host,
                                    rebalance_timeout_ms: m.rebalance_timeout,
                                    session_timeout_ms: m.session_timeout,
                                    protocols: vec![(
                                        g.protocol_name.clone().unwrap_or_default(),
                                        m.subscription,
                                    )],
                                    assignment: m.assignment,
                                    join_waiter: None,
                                    sync_waiter: None,
                                    is_new: false,
                                    heartbeat_deadline: i64::MAX,
                                },
                            );
                        }
                        g.state = if g.members.is_empty() {
                            GroupState::Empty
                        } else {
                            GroupState::Stable
                        };
                        self.groups.insert(group, g);
                    }
                    None => {
                        if !g.offsets.is_empty() || has_open_txn(&self.pending_txn, &group) {
                            self.groups.insert(group, g);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// After replay: loaded members must heartbeat within their session timeout, and a group
    /// above `group.max.size` (the setting may have shrunk) rebalances.
    pub fn finish_loading(&mut self, now: i64) {
        self.finish_loading_where(now, |_| true);
    }

    /// [`Coordinator::finish_loading`] for the groups `loaded` selects (those of one
    /// `__consumer_offsets` partition, whose replay just ended; the others keep their
    /// deadlines).
    pub fn finish_loading_where(&mut self, now: i64, loaded: impl Fn(&str) -> bool) {
        let cfg = &self.config;
        let out = &mut self.effects;
        for g in self.groups.values_mut().filter(|g| loaded(&g.id)) {
            for m in g.members.values_mut() {
                m.heartbeat_deadline = now + m.session_timeout_ms as i64;
            }
            if g.members.len() > cfg.max_size {
                let mut cx = Cx { cfg, out, now };
                prepare_rebalance(g, &mut cx);
            }
        }
        info!(groups = self.groups.len(), "group coordinator loaded");
    }

    /// Forgets the groups `unloaded` selects — this node no longer coordinates their
    /// `__consumer_offsets` partition (Kafka's `GroupMetadataManager.onUnloaded`): their
    /// members, offsets and pending transactional offsets go (the partition's new leader
    /// replays them), and JoinGroup/SyncGroup answers still pending are completed with
    /// NOT_COORDINATOR so their clients find the new coordinator. Returns how many groups
    /// were unloaded.
    pub fn unload_where(&mut self, unloaded: impl Fn(&str) -> bool) -> usize {
        let ids: Vec<String> = self
            .groups
            .keys()
            .filter(|id| unloaded(id))
            .cloned()
            .collect();
        for id in &ids {
            let Some(g) = self.groups.remove(id) else {
                continue;
            };
            for m in g.members.values() {
                if let Some(t) = m.join_waiter {
                    let r = join_error(&m.id, ErrorCode::NotCoordinator);
                    self.effects.completions.push(Completion::Join(t, r));
                }
                if let Some(t) = m.sync_waiter {
                    let r = sync_error(ErrorCode::NotCoordinator);
                    self.effects.completions.push(Completion::Sync(t, r));
                }
            }
            self.offset_seq.remove(id);
        }
        // Pending transactional offsets of groups without a loaded entry (only pending ones).
        for pending in self.pending_txn.values_mut() {
            pending.retain(|group, _| !unloaded(group));
        }
        self.pending_txn.retain(|_, pending| !pending.is_empty());
        self.offset_seq.retain(|group, _| !unloaded(group));
        ids.len()
    }
}

// -------------------------------------------------------------------- offsets

/// The next log sequence (see `Coordinator::next_seq`).
fn bump(next: &mut u64) -> u64 {
    let s = *next;
    *next = next.saturating_add(1);
    s
}

fn entry_from_value(v: OffsetCommitValue) -> OffsetEntry {
    OffsetEntry {
        offset: v.offset,
        leader_epoch: v.leader_epoch,
        metadata: v.metadata,
        commit_timestamp: v.commit_timestamp,
        expire_timestamp: (v.expire_timestamp >= 0).then_some(v.expire_timestamp),
    }
}

/// Kafka's `openTransactionsByGroup.containsKey(group)`.
fn has_open_txn(pending: &BTreeMap<i64, ProducerPending>, group: &str) -> bool {
    pending.values().any(|p| p.contains_key(group))
}

fn pending_has(
    pending: &BTreeMap<i64, ProducerPending>,
    group: &str,
    topic: &str,
    partition: i32,
) -> bool {
    pending.values().any(|p| {
        p.get(group)
            .is_some_and(|o| o.contains_key(&(topic.to_string(), partition)))
    })
}

/// Drops every open transaction's pending offset for the partition; the transactions stay
/// open for the group (Kafka keeps `openTransactionsByGroup` until the marker).
fn drop_pending(pending: &mut BTreeMap<i64, ProducerPending>, group: &str, key: &(String, i32)) {
    for p in pending.values_mut() {
        if let Some(o) = p.get_mut(group) {
            o.remove(key);
        }
    }
}

fn forget_seq(
    seqs: &mut BTreeMap<String, BTreeMap<(String, i32), u64>>,
    group: &str,
    key: &(String, i32),
) {
    if let Some(s) = seqs.get_mut(group) {
        s.remove(key);
        if s.is_empty() {
            seqs.remove(group);
        }
    }
}

/// Kafka's `ClassicGroup.validateOffsetCommit` with `isTransactional = true`: the member
/// fields are optional in TxnOffsetCommit (< v3 has none), so they are checked only when
/// the request carries any of them, and a group mid-rebalance is not refused.
fn validate_txn_commit(
    g: &Group,
    generation_id: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ErrorCode> {
    if g.state == GroupState::Dead {
        return Err(ErrorCode::CoordinatorNotAvailable);
    }
    if generation_id < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
        // Kafka's `ClassicGroup.validateMember`.
        if let Some(i) = instance_id {
            match g.static_members.get(i) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(known) if known != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
            }
        }
        if !g.members.contains_key(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        if generation_id != g.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
    }
    Ok(())
}
