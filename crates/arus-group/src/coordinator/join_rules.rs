//! The classic group's membership rules, as Kafka's `ClassicGroup` join and rebalance paths
//! apply them: who may join, how a join changes the group, when a rebalance is prepared and
//! when the join phase completes.

use super::*;

/// Kafka's `acceptJoiningMember` for `group.max.size`.
pub(super) fn accept_joining_member(g: &Group, member_id: &str, max: usize) -> bool {
    match g.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::CompletingRebalance | GroupState::Stable => {
            g.members.contains_key(member_id) || g.members.len() < max
        }
        GroupState::PreparingRebalance => {
            g.members
                .get(member_id)
                .is_some_and(|m| m.join_waiter.is_some())
                || g.members
                    .values()
                    .filter(|m| m.join_waiter.is_some())
                    .count()
                    < max
        }
    }
}

pub(super) fn new_member_join(
    g: &mut Group,
    p: &JoinParams,
    ticket: Ticket,
    cx: &mut Cx,
) -> Option<JoinGroupResponse> {
    if g.state == GroupState::Dead {
        return Some(join_error("", ErrorCode::CoordinatorNotAvailable));
    }
    if !g.supports_protocols(&p.protocol_type, &p.protocols) {
        return Some(join_error("", ErrorCode::InconsistentGroupProtocol));
    }
    if let Some(inst) = &p.group_instance_id {
        let new_id = new_member_id(inst);
        return match g.static_members.get(inst).cloned() {
            Some(old_id) => update_static_member(g, inst, &old_id, &new_id, p, ticket, cx),
            None => {
                add_member_and_rebalance(g, &new_id, p, ticket, cx);
                None
            }
        };
    }
    let new_id = new_member_id(&p.client_id);
    if p.require_known_member_id {
        // KIP-394: the member must come back with this id, so that a client that times out
        // and retries does not leave orphan members behind.
        g.pending_members
            .insert(new_id.clone(), cx.now + p.session_timeout_ms as i64);
        debug!(group = %g.id, member = %new_id, state = g.state.name(), "new member must rejoin with its member id (MEMBER_ID_REQUIRED)");
        return Some(join_error(&new_id, ErrorCode::MemberIdRequired));
    }
    add_member_and_rebalance(g, &new_id, p, ticket, cx);
    None
}

pub(super) fn current_member_join(
    g: &mut Group,
    p: &JoinParams,
    ticket: Ticket,
    cx: &mut Cx,
) -> Option<JoinGroupResponse> {
    let id = p.member_id.as_str();
    if g.state == GroupState::Dead {
        return Some(join_error(id, ErrorCode::CoordinatorNotAvailable));
    }
    if !g.supports_protocols(&p.protocol_type, &p.protocols) {
        return Some(join_error(id, ErrorCode::InconsistentGroupProtocol));
    }
    if g.pending_members.contains_key(id) {
        add_member_and_rebalance(g, id, p, ticket, cx);
        return None;
    }
    if g.is_static_member_fenced(id, p.group_instance_id.as_deref()) {
        return Some(join_error(id, ErrorCode::FencedInstanceId));
    }
    let Some(m) = g.members.get(id) else {
        return Some(join_error(id, ErrorCode::UnknownMemberId));
    };
    let same = m.protocols == p.protocols;
    match g.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(g, id, p, ticket, cx);
            None
        }
        GroupState::CompletingRebalance => {
            if same {
                // The member lost its JoinGroup response: send it again.
                let leader = g.is_leader(id);
                Some(join_response(g, id, leader))
            } else {
                update_member_and_rebalance(g, id, p, ticket, cx);
                None
            }
        }
        GroupState::Stable => {
            if g.is_leader(id) || !same {
                // The leader rejoining (e.g. its metadata changed) or a changed subscription
                // triggers a rebalance.
                update_member_and_rebalance(g, id, p, ticket, cx);
                None
            } else {
                Some(join_response(g, id, false))
            }
        }
        GroupState::Empty | GroupState::Dead => Some(join_error(id, ErrorCode::UnknownMemberId)),
    }
}

pub(super) fn add_member_and_rebalance(
    g: &mut Group,
    id: &str,
    p: &JoinParams,
    ticket: Ticket,
    cx: &mut Cx,
) {
    let member = Member {
        id: id.to_string(),
        instance_id: p.group_instance_id.clone(),
        client_id: p.client_id.clone(),
        client_host: p.client_host.clone(),
        rebalance_timeout_ms: p.rebalance_timeout_ms,
        session_timeout_ms: p.session_timeout_ms,
        protocols: p.protocols.clone(),
        assignment: Bytes::new(),
        join_waiter: Some(ticket),
        sync_waiter: None,
        is_new: true,
        // It has no member id to heartbeat with until its JoinGroup is answered.
        heartbeat_deadline: cx.now + cx.cfg.new_member_join_timeout_ms,
    };
    if g.members.is_empty() {
        g.protocol_type = Some(p.protocol_type.clone());
    }
    if g.leader.is_none() {
        g.leader = Some(id.to_string());
    }
    if let Some(inst) = &p.group_instance_id {
        g.static_members.insert(inst.clone(), id.to_string());
    }
    g.pending_members.remove(id);
    g.members.insert(id.to_string(), member);
    if g.state == GroupState::PreparingRebalance && g.generation == 0 {
        g.new_member_added = true;
    }
    debug!(group = %g.id, member = %id, "member joined");
    maybe_prepare_rebalance(g, cx);
}

pub(super) fn update_member_and_rebalance(
    g: &mut Group,
    id: &str,
    p: &JoinParams,
    ticket: Ticket,
    cx: &mut Cx,
) {
    let m = g.members.get_mut(id).expect("caller checked");
    m.protocols = p.protocols.clone();
    m.rebalance_timeout_ms = p.rebalance_timeout_ms;
    m.session_timeout_ms = p.session_timeout_ms;
    if let Some(old) = m.join_waiter.replace(ticket) {
        // A retried JoinGroup supersedes the earlier one; the client no longer reads it.
        cx.out.completions.push(Completion::Join(
            old,
            join_error(id, ErrorCode::RebalanceInProgress),
        ));
    }
    maybe_prepare_rebalance(g, cx);
}

/// A static member rejoined with a new member id (it restarted): the new id replaces the
/// old one. In a Stable group whose selected protocol stays the same this needs no
/// rebalance — the member gets its old assignment back through SyncGroup.
pub(super) fn update_static_member(
    g: &mut Group,
    inst: &str,
    old_id: &str,
    new_id: &str,
    p: &JoinParams,
    ticket: Ticket,
    cx: &mut Cx,
) -> Option<JoinGroupResponse> {
    let old_leader = g.leader.clone();
    let mut m = g.members.remove(old_id).expect("static member present");
    // The old incarnation's waiting requests are fenced.
    if let Some(t) = m.join_waiter.take() {
        cx.out.completions.push(Completion::Join(
            t,
            join_error(old_id, ErrorCode::FencedInstanceId),
        ));
    }
    if let Some(t) = m.sync_waiter.take() {
        cx.out
            .completions
            .push(Completion::Sync(t, sync_error(ErrorCode::FencedInstanceId)));
    }
    m.id = new_id.to_string();
    m.client_id = p.client_id.clone();
    m.client_host = p.client_host.clone();
    m.protocols = p.protocols.clone();
    m.rebalance_timeout_ms = p.rebalance_timeout_ms;
    m.session_timeout_ms = p.session_timeout_ms;
    m.heartbeat_deadline = cx.now + p.session_timeout_ms as i64;
    m.join_waiter = Some(ticket);
    g.static_members
        .insert(inst.to_string(), new_id.to_string());
    if g.is_leader(old_id) {
        g.leader = Some(new_id.to_string());
    }
    if g.pending_sync.remove(old_id) {
        g.pending_sync.insert(new_id.to_string());
    }
    g.members.insert(new_id.to_string(), m);
    info!(group = %g.id, instance = %inst, old = %old_id, new = %new_id, "static member rejoined with a new member id");
    match g.state {
        GroupState::Stable => {
            if g.select_protocol() == g.protocol_name {
                g.members.get_mut(new_id).expect("inserted").join_waiter = None;
                cx.out.records.push(group_record(g));
                let is_leader = g.is_leader(new_id);
                let mut r = join_response(g, new_id, is_leader && p.supports_skip_assignment);
                if p.supports_skip_assignment {
                    r.skip_assignment = is_leader;
                } else {
                    // Before KIP-814 the rejoined leader must not assign (a Stable group would
                    // not broadcast it): report the old leader id, which is not its own.
                    r.leader = old_leader.unwrap_or_default();
                }
                Some(r)
            } else {
                maybe_prepare_rebalance(g, cx);
                None
            }
        }
        GroupState::CompletingRebalance => {
            // The leader may be assigning to the old member id: rebalance so the new id gets
            // an assignment.
            prepare_rebalance(g, cx);
            None
        }
        GroupState::PreparingRebalance => None,
        GroupState::Empty | GroupState::Dead => {
            Some(join_error(new_id, ErrorCode::CoordinatorNotAvailable))
        }
    }
}

pub(super) fn maybe_prepare_rebalance(g: &mut Group, cx: &mut Cx) {
    if matches!(
        g.state,
        GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
    ) {
        prepare_rebalance(g, cx);
    }
}

pub(super) fn prepare_rebalance(g: &mut Group, cx: &mut Cx) {
    if g.state == GroupState::CompletingRebalance {
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
        }
        propagate_assignment(g, ErrorCode::RebalanceInProgress, cx);
    }
    g.pending_sync.clear();
    g.sync_deadline = None;
    let rebalance_timeout = g.rebalance_timeout_ms();
    g.join_timer = Some(if g.state == GroupState::Empty {
        let delay = cx.cfg.initial_rebalance_delay_ms;
        g.new_member_added = false;
        (
            cx.now + delay,
            JoinTimer::Initial {
                remaining_ms: (rebalance_timeout - delay).max(0),
            },
        )
    } else {
        (cx.now + rebalance_timeout, JoinTimer::Normal)
    });
    debug!(group = %g.id, generation = g.generation, "preparing rebalance");
    g.transition(GroupState::PreparingRebalance, cx.now);
}

/// Completes the join phase early when everyone has rejoined (never during the initial
/// delay, which exists to gather members).
pub(super) fn maybe_complete_join(g: &mut Group, cx: &mut Cx) {
    if g.state == GroupState::PreparingRebalance
        && g.join_timer
            .is_some_and(|(_, t)| t.completes_when_all_joined())
        && g.has_all_members_joined()
    {
        complete_join(g, cx);
    }
}

pub(super) fn complete_join(g: &mut Group, cx: &mut Cx) {
    // Dynamic members that did not rejoin in time are gone; static ones keep their place.
    let missing: Vec<String> = g
        .members
        .values()
        .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
        .map(|m| m.id.clone())
        .collect();
    for id in missing {
        info!(group = %g.id, member = %id, "member did not rejoin before the rebalance timeout");
        g.remove_member(&id);
    }
    if !g.members.is_empty() && !elect_joined_leader(g) {
        // Nobody is waiting (only static members that have not rejoined): wait another
        // rebalance timeout; their session timeouts remove them meanwhile.
        g.join_timer = Some((cx.now + g.rebalance_timeout_ms(), JoinTimer::Normal));
        return;
    }
    g.join_timer = None;
    g.new_member_added = false;
    g.generation += 1;
    if g.members.is_empty() {
        g.protocol_name = None;
        g.transition(GroupState::Empty, cx.now);
        info!(group = %g.id, generation = g.generation, "group is empty");
        cx.out.records.push(group_record(g));
        return;
    }
    g.protocol_name = g.select_protocol();
    g.transition(GroupState::CompletingRebalance, cx.now);
    info!(group = %g.id, generation = g.generation, members = g.members.len(), protocol = ?g.protocol_name, "rebalance: join phase complete");
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in &ids {
        let with_members = g.is_leader(id);
        let resp = join_response(g, id, with_members);
        let m = g.members.get_mut(id).expect("listed");
        if let Some(t) = m.join_waiter.take() {
            cx.out.completions.push(Completion::Join(t, resp));
        }
        m.heartbeat_deadline = cx.now + m.session_timeout_ms as i64;
        m.is_new = false;
    }
    g.pending_sync = ids.into_iter().collect();
    g.sync_deadline = Some(cx.now + g.rebalance_timeout_ms());
}

/// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined, else promote any
/// member that did.
pub(super) fn elect_joined_leader(g: &mut Group) -> bool {
    let Some(leader) = g.leader.clone() else {
        return false;
    };
    if g.members
        .get(&leader)
        .is_some_and(|m| m.join_waiter.is_some())
    {
        return true;
    }
    match g.members.values().find(|m| m.join_waiter.is_some()) {
        Some(m) => {
            g.leader = Some(m.id.clone());
            true
        }
        None => false,
    }
}

/// Answers every waiting SyncGroup: with its assignment, or with `error`.
pub(super) fn propagate_assignment(g: &mut Group, error: ErrorCode, cx: &mut Cx) {
    for m in g.members.values_mut() {
        if let Some(t) = m.sync_waiter.take() {
            let resp = if error == ErrorCode::None {
                SyncGroupResponse {
                    error_code: 0,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                    ..Default::default()
                }
            } else {
                sync_error(error)
            };
            cx.out.completions.push(Completion::Sync(t, resp));
            m.heartbeat_deadline = cx.now + m.session_timeout_ms as i64;
        }
    }
}

pub(super) fn remove_pending_sync(g: &mut Group, id: &str) {
    g.pending_sync.remove(id);
    if g.pending_sync.is_empty() {
        g.sync_deadline = None;
    }
}

pub(super) fn remove_member_and_update_group(g: &mut Group, id: &str, cx: &mut Cx) {
    if let Some(m) = g.members.get_mut(id) {
        if let Some(t) = m.join_waiter.take() {
            cx.out.completions.push(Completion::Join(
                t,
                join_error(id, ErrorCode::UnknownMemberId),
            ));
        }
        if let Some(t) = m.sync_waiter.take() {
            cx.out
                .completions
                .push(Completion::Sync(t, sync_error(ErrorCode::UnknownMemberId)));
        }
    }
    g.remove_member(id);
    match g.state {
        GroupState::Dead | GroupState::Empty => {}
        GroupState::Stable | GroupState::CompletingRebalance => maybe_prepare_rebalance(g, cx),
        GroupState::PreparingRebalance => maybe_complete_join(g, cx),
    }
}

/// One pass over a group's due timers; true if something happened.
pub(super) fn tick_group(g: &mut Group, cx: &mut Cx) -> bool {
    let now = cx.now;
    let mut acted = false;
    // Pending members (MEMBER_ID_REQUIRED) that never came back.
    let expired_pending: Vec<String> = g
        .pending_members
        .iter()
        .filter(|(_, d)| **d <= now)
        .map(|(id, _)| id.clone())
        .collect();
    for id in expired_pending {
        g.pending_members.remove(&id);
        maybe_complete_join(g, cx);
        acted = true;
    }
    // Session expiry.
    let due: Vec<String> = g
        .members
        .values()
        .filter(|m| m.heartbeat_deadline <= now)
        .map(|m| m.id.clone())
        .collect();
    for id in due {
        let Some(m) = g.members.get_mut(&id) else {
            continue;
        };
        if m.heartbeat_satisfied_by_waiting() {
            // Rescheduled when its rebalance completes.
            m.heartbeat_deadline = i64::MAX;
        } else {
            info!(group = %g.id, member = %id, "member session expired");
            remove_member_and_update_group(g, &id, cx);
        }
        acted = true;
    }
    if let Some((deadline, timer)) = g.join_timer
        && deadline <= now
        && g.state == GroupState::PreparingRebalance
    {
        match timer {
            JoinTimer::Initial { remaining_ms } if g.new_member_added && remaining_ms != 0 => {
                g.new_member_added = false;
                let delay = cx.cfg.initial_rebalance_delay_ms.min(remaining_ms);
                g.join_timer = Some((
                    now + delay,
                    JoinTimer::Initial {
                        remaining_ms: (remaining_ms - cx.cfg.initial_rebalance_delay_ms).max(0),
                    },
                ));
            }
            JoinTimer::Initial { remaining_ms } => {
                if !crate::initial_join::await_pending_members(g, remaining_ms, now) {
                    complete_join(g, cx);
                }
            }
            JoinTimer::Normal | JoinTimer::AwaitingPendingMembers => complete_join(g, cx),
        }
        acted = true;
    }
    if let Some(deadline) = g.sync_deadline
        && deadline <= now
    {
        g.sync_deadline = None;
        if matches!(
            g.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !g.pending_sync.is_empty()
        {
            let late: Vec<String> = g.pending_sync.iter().cloned().collect();
            for id in &late {
                info!(group = %g.id, member = %id, "member did not send SyncGroup before the rebalance timeout");
                g.remove_member(id);
            }
            prepare_rebalance(g, cx);
        }
        acted = true;
    }
    if g.join_timer.is_some_and(|(d, _)| d <= now) && g.state != GroupState::PreparingRebalance {
        g.join_timer = None;
    }
    acted
}
