use super::*;
use crate::state::DIR_MIGRATING;

fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionInfo {
    PartitionInfo {
        replicas: replicas.to_vec(),
        directories: vec![DIR_MIGRATING; replicas.len()],
        isr: isr.to_vec(),
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader,
        leader_recovery_state: RECOVERED,
        leader_epoch: 3,
        partition_epoch: 5,
        elr: vec![],
        last_known_elr: vec![],
    }
}

fn build(
    p: &PartitionInfo,
    alive: &[i32],
    elr: bool,
    election: Election,
    isr: Option<Vec<i32>>,
) -> Option<PartitionChangeRecord> {
    let ok = |r: i32| alive.contains(&r);
    let dir = |_| DIR_MIGRATING;
    let ctx = ChangeContext {
        is_acceptable_leader: &ok,
        min_isr: 1,
        elr_enabled: elr,
        bump_epoch_on_isr_shrink: false,
        directory_assignment: true,
        default_dir: &dir,
    };
    let mut b = PartitionChangeBuilder::new(p, Uuid([1; 16]), 0, ctx).election(election);
    if let Some(isr) = isr {
        b = b.target_isr(isr);
    }
    b.build()
}

#[test]
fn no_change_is_no_record() {
    let p = part(&[1, 2, 3], &[1, 2, 3], 1);
    assert!(build(&p, &[1, 2, 3], false, Election::Online, None).is_none());
}

#[test]
fn a_removed_leader_is_replaced_by_the_first_live_isr_replica() {
    let p = part(&[1, 2, 3], &[1, 2, 3], 1);
    let r = build(&p, &[2, 3], false, Election::Online, Some(vec![2, 3])).unwrap();
    assert_eq!(r.leader, 2);
    assert_eq!(r.isr, Some(vec![2, 3]));
}

#[test]
fn the_last_isr_member_stays_without_elr_and_leaves_with_it() {
    let p = part(&[1], &[1], 1);
    let r = build(&p, &[], false, Election::Online, Some(vec![])).unwrap();
    assert_eq!(r.leader, NO_LEADER);
    assert_eq!(
        r.isr, None,
        "ISR unchanged: an empty ISR is never written without ELR"
    );
    let r = build(&p, &[], true, Election::Online, Some(vec![])).unwrap();
    assert_eq!(r.leader, NO_LEADER);
    assert_eq!(r.isr, Some(vec![]));
    assert_eq!(r.eligible_leader_replicas, Some(vec![1]));
    assert_eq!(r.last_known_elr, Some(vec![1]));
}

#[test]
fn unclean_election_picks_any_live_replica_and_marks_it_recovering() {
    let p = part(&[1, 2], &[1], NO_LEADER);
    assert!(build(&p, &[2], false, Election::Online, None).is_none());
    let r = build(&p, &[2], false, Election::Unclean, None).unwrap();
    assert_eq!(r.leader, 2);
    assert_eq!(r.isr, Some(vec![2]));
    assert_eq!(r.leader_recovery_state, RECOVERING);
}

#[test]
fn preferred_election_prefers_the_first_replica() {
    let p = part(&[1, 2, 3], &[1, 2, 3], 2);
    let r = build(&p, &[1, 2, 3], false, Election::Preferred, None).unwrap();
    assert_eq!(r.leader, 1);
    assert!(build(&p, &[2, 3], false, Election::Preferred, None).is_none());
}
