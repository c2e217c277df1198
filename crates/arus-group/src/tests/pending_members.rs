//! Members answered MEMBER_ID_REQUIRED hold the initial join phase until they rejoin
//! (see `crate::initial_join`), bounded by their session timeout and the rebalance timeout.

use super::*;

fn zero_delay() -> Coordinator {
    Coordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..cfg()
        },
        0,
    )
}

/// Sends the first JoinGroup of a new dynamic member: returns the id it must rejoin with.
fn member_id_required(c: &mut Coordinator, now: i64) -> String {
    let r = now_join(c.join_group(join("", None, &range()), now));
    assert_eq!(r.error_code, ErrorCode::MemberIdRequired.code());
    r.member_id
}

fn completed(c: &mut Coordinator) -> Done {
    let mut d = Done::default();
    d.absorb(c.take_effects());
    d
}

#[test]
fn a_zero_delay_waits_for_a_member_told_member_id_required() {
    let mut c = zero_delay();
    let a = member_id_required(&mut c, 0);
    let b = member_id_required(&mut c, 0);
    // a rejoins first: with b still pending the zero delay must not complete without it.
    let ta = pending(c.join_group(join(&a, None, &range()), 1));
    assert!(completed(&mut c).joins.is_empty());
    assert_eq!(c.group_state(G), Some(GroupState::PreparingRebalance));
    // b's rejoin completes the phase: its own answer comes back at once.
    let rb = now_join(c.join_group(join(&b, None, &range()), 2));
    let ra = completed(&mut c).join(ta);
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    let leader = if ra.leader == a { &ra } else { &rb };
    assert_eq!(leader.members.len(), 2);
    assert_eq!(c.group_state(G), Some(GroupState::CompletingRebalance));
}

#[test]
fn without_pending_members_a_zero_delay_completes_at_once() {
    let mut c = zero_delay();
    let a = member_id_required(&mut c, 0);
    let r = now_join(c.join_group(join(&a, None, &range()), 0));
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn a_pending_member_that_never_rejoins_is_dropped_at_its_session_timeout() {
    let mut c = zero_delay();
    let a = member_id_required(&mut c, 0);
    let _b = member_id_required(&mut c, 0);
    let ta = pending(c.join_group(join(&a, None, &range()), 0));
    // b's deadline is its session timeout (10 s) from MEMBER_ID_REQUIRED.
    assert_eq!(c.next_deadline(), 10_000);
    c.tick(9_999);
    assert!(completed(&mut c).joins.is_empty());
    c.tick(10_000);
    let r = completed(&mut c).join(ta);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn a_pending_member_leaving_completes_the_join_phase() {
    let mut c = zero_delay();
    let a = member_id_required(&mut c, 0);
    let b = member_id_required(&mut c, 0);
    let ta = pending(c.join_group(join(&a, None, &range()), 0));
    let left = c.leave_group(G, &[(b, None)], 5).unwrap();
    assert_eq!(left, vec![ErrorCode::None]);
    let r = completed(&mut c).join(ta);
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 1, 1));
}

#[test]
fn the_wait_for_pending_members_ends_with_the_rebalance_timeout() {
    let mut c = zero_delay();
    let a = member_id_required(&mut c, 0);
    let _b = member_id_required(&mut c, 0);
    let mut p = join(&a, None, &range());
    p.rebalance_timeout_ms = 4_000;
    let ta = pending(c.join_group(p, 0));
    assert_eq!(c.next_deadline(), 4_000);
    c.tick(4_000);
    let r = completed(&mut c).join(ta);
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 1, 1));
}

#[test]
fn after_a_nonzero_delay_pending_members_are_still_awaited() {
    // Default delay (3 s): b was told MEMBER_ID_REQUIRED at 0 but rejoins only at 3.5 s.
    let mut c = Coordinator::new(cfg(), 0);
    let a = member_id_required(&mut c, 0);
    let b = member_id_required(&mut c, 0);
    let ta = pending(c.join_group(join(&a, None, &range()), 0));
    c.tick(3_000);
    assert!(completed(&mut c).joins.is_empty());
    let rb = now_join(c.join_group(join(&b, None, &range()), 3_500));
    assert_eq!(rb.generation_id, 1);
    assert_eq!(completed(&mut c).join(ta).generation_id, 1);
}
