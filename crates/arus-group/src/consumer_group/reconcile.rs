//! Member reconciliation: Kafka's `CurrentAssignmentBuilder` (Kafka 4.0 semantics).
//!
//! Given a member's current state and the target assignment of the group's assignment epoch,
//! computes the member's next state:
//! - partitions no longer in the target must be revoked first: the member stays in its epoch
//!   in `UNREVOKED_PARTITIONS` until its heartbeat no longer reports them as owned;
//! - then it moves to the target epoch and gets the target partitions that no other member
//!   still owns; if some are still owned elsewhere it is `UNRELEASED_PARTITIONS` and gets
//!   them on a later heartbeat once released; otherwise it is `STABLE`.

use std::collections::BTreeSet;

use super::member::{Assignment, Member, MemberState};

/// The member owns no partition it must revoke? `owned` is the member's report in the
/// heartbeat (`None` when not sent, which counts as still owning).
fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, parts)| {
        revoking
            .get(topic)
            .is_some_and(|r| parts.iter().any(|p| r.contains(p)))
    })
}

/// Reconciliation could not proceed: the member is in a state this version does not know
/// and still owns partitions (Kafka fences it with `FENCED_MEMBER_EPOCH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMemberState;

/// Computes the member's next state (Kafka's `CurrentAssignmentBuilder.build`).
///
/// `partition_epoch(topic, partition)` is the epoch of the member currently owning the
/// partition (assigned or pending revocation), or -1 when free.
pub fn reconcile(
    member: &Member,
    target_epoch: i32,
    target: &Assignment,
    partition_epoch: &dyn Fn(&arus_protocol::Uuid, i32) -> i32,
    owned: Option<&Assignment>,
) -> Result<Member, UnknownMemberState> {
    match member.state {
        MemberState::Stable => {
            if member.member_epoch != target_epoch {
                Ok(next_assignment(
                    member,
                    member.member_epoch,
                    target_epoch,
                    target,
                    partition_epoch,
                    owned,
                ))
            } else {
                Ok(member.clone())
            }
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.partitions_pending_revocation) {
                Ok(member.clone())
            } else {
                Ok(next_assignment(
                    member,
                    member.member_epoch,
                    target_epoch,
                    target,
                    partition_epoch,
                    owned,
                ))
            }
        }
        MemberState::UnreleasedPartitions => Ok(next_assignment(
            member,
            member.member_epoch,
            target_epoch,
            target,
            partition_epoch,
            owned,
        )),
        MemberState::Unknown => {
            if owned.is_none_or(|o| o.values().any(|p| !p.is_empty())) {
                return Err(UnknownMemberState);
            }
            Ok(next_assignment(
                member,
                target_epoch,
                target_epoch,
                target,
                partition_epoch,
                owned,
            ))
        }
    }
}

/// Kafka's `Builder.updateMemberEpoch`: the previous epoch always becomes the current one,
/// even when the epoch does not change.
fn with_epoch(member: &Member, epoch: i32) -> Member {
    let mut m = member.clone();
    m.previous_member_epoch = m.member_epoch;
    m.member_epoch = epoch;
    m
}

fn next_assignment(
    member: &Member,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    partition_epoch: &dyn Fn(&arus_protocol::Uuid, i32) -> i32,
    owned: Option<&Assignment>,
) -> Member {
    let mut has_unreleased = false;
    let mut new_assigned = Assignment::new();
    let mut new_revoking = Assignment::new();
    let mut new_pending_assignment = Assignment::new();
    let empty = BTreeSet::new();

    let topics: BTreeSet<_> = target
        .keys()
        .chain(member.assigned_partitions.keys())
        .copied()
        .collect();
    for topic in topics {
        let tgt = target.get(&topic).unwrap_or(&empty);
        let cur = member.assigned_partitions.get(&topic).unwrap_or(&empty);
        let pending_rev = member
            .partitions_pending_revocation
            .get(&topic)
            .unwrap_or(&empty);
        // Assigned = Current ∩ Target; Revoking = Current − Target.
        let assigned: BTreeSet<i32> = cur.intersection(tgt).copied().collect();
        let revoking: BTreeSet<i32> = cur.difference(tgt).copied().collect();
        // Pending assignment = Target − Assigned − (partitions other members still own).
        let mut pending: BTreeSet<i32> = BTreeSet::new();
        for &p in tgt.difference(&assigned) {
            if partition_epoch(&topic, p) != -1 && !pending_rev.contains(&p) {
                has_unreleased = true;
            } else {
                pending.insert(p);
            }
        }
        if !assigned.is_empty() {
            new_assigned.insert(topic, assigned);
        }
        if !revoking.is_empty() {
            new_revoking.insert(topic, revoking);
        }
        if !pending.is_empty() {
            new_pending_assignment.insert(topic, pending);
        }
    }

    if !new_revoking.is_empty() && owns_any(owned, &new_revoking) {
        // Revoke first: stay in the current epoch until the member acknowledges.
        let mut m = with_epoch(member, member_epoch);
        m.state = MemberState::UnrevokedPartitions;
        m.assigned_partitions = new_assigned;
        m.partitions_pending_revocation = new_revoking;
        return m;
    }
    for (topic, parts) in new_pending_assignment {
        new_assigned.entry(topic).or_default().extend(parts);
    }
    let mut m = with_epoch(member, target_epoch);
    m.state = if has_unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    m.assigned_partitions = new_assigned;
    m.partitions_pending_revocation = Assignment::new();
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Uuid;

    fn t(n: u8) -> Uuid {
        Uuid([n; 16])
    }
    fn a(parts: &[(u8, &[i32])]) -> Assignment {
        parts
            .iter()
            .map(|(tp, ps)| (t(*tp), ps.iter().copied().collect()))
            .collect()
    }
    fn stable(epoch: i32, assigned: Assignment) -> Member {
        Member {
            member_id: "m".into(),
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            assigned_partitions: assigned,
            ..Default::default()
        }
    }
    fn free(_: &Uuid, _: i32) -> i32 {
        -1
    }

    #[test]
    fn stable_to_stable_when_everything_free() {
        let m = stable(10, a(&[(1, &[0, 1])]));
        let n = reconcile(
            &m,
            11,
            &a(&[(1, &[0, 1, 2])]),
            &free,
            Some(&a(&[(1, &[0, 1])])),
        )
        .unwrap();
        assert_eq!(n.state, MemberState::Stable);
        assert_eq!((n.member_epoch, n.previous_member_epoch), (11, 10));
        assert_eq!(n.assigned_partitions, a(&[(1, &[0, 1, 2])]));
    }

    #[test]
    fn revocation_first_then_assignment() {
        let m = stable(10, a(&[(1, &[0, 1])]));
        let target = a(&[(1, &[0, 2])]);
        let owned = a(&[(1, &[0, 1])]);
        let n = reconcile(&m, 11, &target, &free, Some(&owned)).unwrap();
        assert_eq!(n.state, MemberState::UnrevokedPartitions);
        assert_eq!(n.member_epoch, 10);
        assert_eq!(n.assigned_partitions, a(&[(1, &[0])]));
        assert_eq!(n.partitions_pending_revocation, a(&[(1, &[1])]));
        // Still owning partition 1: no progress; owned not sent: no progress.
        assert_eq!(reconcile(&n, 11, &target, &free, Some(&owned)).unwrap(), n);
        assert_eq!(reconcile(&n, 11, &target, &free, None).unwrap(), n);
        // Revoked: moves to epoch 11 with partition 2 (its own pending-revocation partition
        // does not block).
        let owner_of_1 = |_: &Uuid, p: i32| if p == 1 { 10 } else { -1 };
        let n2 = reconcile(&n, 11, &target, &owner_of_1, Some(&a(&[(1, &[0])]))).unwrap();
        assert_eq!(n2.state, MemberState::Stable);
        assert_eq!((n2.member_epoch, n2.previous_member_epoch), (11, 10));
        assert_eq!(n2.assigned_partitions, target);
    }

    #[test]
    fn unreleased_partitions_wait_for_their_owner() {
        let m = stable(10, a(&[(1, &[0])]));
        let target = a(&[(1, &[0, 1])]);
        let owned_elsewhere = |_: &Uuid, p: i32| if p == 1 { 9 } else { -1 };
        let n = reconcile(&m, 11, &target, &owned_elsewhere, Some(&a(&[(1, &[0])]))).unwrap();
        assert_eq!(n.state, MemberState::UnreleasedPartitions);
        assert_eq!(n.member_epoch, 11);
        assert_eq!(n.assigned_partitions, a(&[(1, &[0])]));
        let n2 = reconcile(&n, 11, &target, &free, Some(&a(&[(1, &[0])]))).unwrap();
        assert_eq!(n2.state, MemberState::Stable);
        assert_eq!(n2.assigned_partitions, target);
        assert_eq!(n2.previous_member_epoch, 11);
    }

    #[test]
    fn already_revoked_partitions_skip_unrevoked_state() {
        let m = stable(10, a(&[(1, &[0, 1])]));
        let n = reconcile(&m, 11, &a(&[(1, &[0])]), &free, Some(&a(&[(1, &[0])]))).unwrap();
        assert_eq!(n.state, MemberState::Stable);
        assert_eq!(n.member_epoch, 11);
    }

    #[test]
    fn unknown_state_fences_unless_owning_nothing() {
        let mut m = stable(10, a(&[(1, &[0])]));
        m.state = MemberState::Unknown;
        assert!(reconcile(&m, 11, &a(&[]), &free, None).is_err());
        assert!(reconcile(&m, 11, &a(&[]), &free, Some(&a(&[(1, &[0])]))).is_err());
        let n = reconcile(&m, 11, &a(&[(1, &[0])]), &free, Some(&a(&[]))).unwrap();
        assert_eq!((n.state, n.member_epoch), (MemberState::Stable, 11));
    }
}
