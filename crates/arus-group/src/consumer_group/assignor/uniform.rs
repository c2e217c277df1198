//! The `uniform` assignor (Kafka's `UniformAssignor`): spreads partitions as evenly as
//! possible (member counts differ by at most one when subscriptions are homogeneous) while
//! keeping members' current partitions wherever that is compatible with balance.
//!
//! - Homogeneous subscriptions follow Kafka's `OptimizedUniformAssignmentBuilder`: with
//!   `P` partitions and `M` members each member gets `P / M` and `P % M` of them one more;
//!   members keep what they have up to that quota, the surplus and the unowned partitions
//!   are handed to the members under quota. Only the partitions that must move, move.
//! - Heterogeneous subscriptions (Kafka's `GeneralUniformAssignmentBuilder` in spirit):
//!   members keep their valid partitions, unowned partitions go to the least-loaded
//!   subscriber (topics with the fewest subscribers first), then partitions move one at a
//!   time from a member to a less-loaded subscriber of the same topic while that narrows
//!   the gap by two or more.
//!
//! Ties are broken by member id, so results are deterministic (Kafka's depend on hash order).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arus_protocol::Uuid;

use super::{GroupSpec, TopicCounts, valid_partitions};
use crate::consumer_group::member::Assignment;

/// Computes the target assignment.
pub fn assign(spec: &GroupSpec, topics: &TopicCounts) -> BTreeMap<String, Assignment> {
    let members = &spec.members;
    if members.is_empty() {
        return BTreeMap::new();
    }
    let result = if spec.is_homogeneous() {
        homogeneous(spec, topics)
    } else {
        heterogeneous(spec, topics)
    };
    members
        .iter()
        .zip(result)
        .map(|(m, a)| (m.member_id.clone(), a))
        .collect()
}

fn insert(a: &mut Assignment, t: Uuid, p: i32) {
    a.entry(t).or_default().insert(p);
}

fn homogeneous(spec: &GroupSpec, topics: &TopicCounts) -> Vec<Assignment> {
    let members = &spec.members;
    let n = members.len();
    let subscribed: Vec<(Uuid, i32)> = members[0]
        .subscribed_topics
        .iter()
        .filter_map(|t| topics.get(t).map(|c| (*t, *c)))
        .collect();
    let total: usize = subscribed.iter().map(|(_, c)| (*c).max(0) as usize).sum();
    let min_quota = total / n;
    let mut extra_left = total % n;

    let mut out = vec![Assignment::new(); n];
    let mut counts = vec![0usize; n];
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // 1. Keep current partitions up to the quota (one more while extras remain).
    for (i, m) in members.iter().enumerate() {
        let valid: Vec<(Uuid, i32)> = valid_partitions(m, topics)
            .filter(|tp| !taken.contains(tp))
            .collect();
        let mut keep = valid.len().min(min_quota);
        if valid.len() > min_quota && extra_left > 0 {
            keep += 1;
            extra_left -= 1;
        }
        for &(t, p) in &valid[..keep] {
            taken.insert((t, p));
            insert(&mut out[i], t, p);
        }
        counts[i] = keep;
    }
    // 2. Hand out the rest: members under the minimum quota first, then the extras.
    let mut unassigned = subscribed
        .iter()
        .flat_map(|(t, c)| (0..*c).map(move |p| (*t, p)))
        .filter(|tp| !taken.contains(tp));
    for i in 0..n {
        while counts[i] < min_quota {
            let Some((t, p)) = unassigned.next() else {
                break;
            };
            insert(&mut out[i], t, p);
            counts[i] += 1;
        }
    }
    for i in 0..n {
        if extra_left == 0 {
            break;
        }
        if counts[i] == min_quota
            && let Some((t, p)) = unassigned.next()
        {
            insert(&mut out[i], t, p);
            counts[i] += 1;
            extra_left -= 1;
        }
    }
    debug_assert!(unassigned.next().is_none());
    out
}

fn heterogeneous(spec: &GroupSpec, topics: &TopicCounts) -> Vec<Assignment> {
    let members = &spec.members;
    let n = members.len();
    let mut subscribers: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        for t in &m.subscribed_topics {
            if topics.contains_key(t) {
                subscribers.entry(*t).or_default().push(i);
            }
        }
    }
    let mut out = vec![Assignment::new(); n];
    let mut counts = vec![0usize; n];
    let mut taken: HashMap<(Uuid, i32), usize> = HashMap::new();
    // 1. Keep valid current partitions.
    for (i, m) in members.iter().enumerate() {
        for (t, p) in valid_partitions(m, topics) {
            if let std::collections::hash_map::Entry::Vacant(e) = taken.entry((t, p)) {
                e.insert(i);
                insert(&mut out[i], t, p);
                counts[i] += 1;
            }
        }
    }
    // 2. Unowned partitions to the least-loaded subscriber, scarce topics first.
    let mut order: Vec<(&Uuid, &Vec<usize>)> = subscribers.iter().collect();
    order.sort_by_key(|(t, s)| (s.len(), **t));
    for (t, subs) in &order {
        for p in 0..topics[*t] {
            if taken.contains_key(&(**t, p)) {
                continue;
            }
            let &i = subs
                .iter()
                .min_by_key(|i| (counts[**i], **i))
                .expect("subscribers");
            taken.insert((**t, p), i);
            insert(&mut out[i], **t, p);
            counts[i] += 1;
        }
    }
    // 3. Balance: move partitions from the most loaded members towards members with at
    //    least two fewer, directly or along a chain of members where each hands one
    //    partition of a topic the next subscribes to (so intermediate counts are unchanged).
    loop {
        let mut donors: Vec<usize> = (0..n).collect();
        donors.sort_by_key(|i| (std::cmp::Reverse(counts[*i]), *i));
        let min = counts.iter().copied().min().unwrap_or(0);
        let mut path = None;
        for &d in &donors {
            if counts[d] < min + 2 {
                break;
            }
            if let Some(p) = find_chain(d, &out, &counts, &subscribers) {
                path = Some(p);
                break;
            }
        }
        let Some(path) = path else {
            break;
        };
        counts[path[0].0] -= 1;
        counts[path[path.len() - 1].1] += 1;
        for (from, to, t) in path {
            let p = *out[from][&t].iter().next_back().expect("partition");
            let ps = out[from].get_mut(&t).expect("topic");
            ps.remove(&p);
            if ps.is_empty() {
                out[from].remove(&t);
            }
            insert(&mut out[to], t, p);
        }
    }
    out
}

/// Breadth-first search from `donor` for the nearest member holding at least two fewer
/// partitions, through "can take a partition of a topic I hold" edges. Returns the hops
/// (from, to, topic) in order, or `None`.
fn find_chain(
    donor: usize,
    out: &[Assignment],
    counts: &[usize],
    subscribers: &BTreeMap<Uuid, Vec<usize>>,
) -> Option<Vec<(usize, usize, Uuid)>> {
    let n = out.len();
    let mut prev: Vec<Option<(usize, Uuid)>> = vec![None; n];
    let mut seen = vec![false; n];
    seen[donor] = true;
    let mut queue = std::collections::VecDeque::from([donor]);
    while let Some(u) = queue.pop_front() {
        for t in out[u].keys() {
            let Some(subs) = subscribers.get(t) else {
                continue;
            };
            for &v in subs {
                if seen[v] {
                    continue;
                }
                seen[v] = true;
                prev[v] = Some((u, *t));
                if counts[v] + 2 <= counts[donor] {
                    let mut hops = Vec::new();
                    let mut cur = v;
                    while let Some((p, t)) = prev[cur] {
                        hops.push((p, cur, t));
                        cur = p;
                    }
                    hops.reverse();
                    return Some(hops);
                }
                queue.push_back(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn spec(ms: Vec<super::super::MemberSpec>) -> GroupSpec {
        GroupSpec { members: ms }
    }

    #[test]
    fn balanced_fresh_assignment() {
        let topics: TopicCounts = [(topic(1), 6)].into();
        let s = spec(vec![
            member("a", &[1]),
            member("b", &[1]),
            member("c", &[1]),
        ]);
        let r = assign(&s, &topics);
        check_complete(&s, &topics, &r);
        for m in ["a", "b", "c"] {
            assert_eq!(count(&r, m), 2);
        }
        // Uneven: 7 partitions over 3 members → 3,2,2.
        let topics7: TopicCounts = [(topic(1), 4), (topic(2), 3)].into();
        let s = spec(vec![
            member("a", &[1, 2]),
            member("b", &[1, 2]),
            member("c", &[1, 2]),
        ]);
        let r = assign(&s, &topics7);
        check_complete(&s, &topics7, &r);
        let mut c: Vec<usize> = ["a", "b", "c"].iter().map(|m| count(&r, m)).collect();
        c.sort();
        assert_eq!(c, vec![2, 2, 3]);
    }

    #[test]
    fn sticky_when_members_join_and_leave() {
        let topics: TopicCounts = [(topic(1), 12)].into();
        let s = spec(vec![
            member("a", &[1]),
            member("b", &[1]),
            member("c", &[1]),
        ]);
        let r1 = assign(&s, &topics);
        // A fourth member joins: only 3 partitions move (one from each).
        let mut s2 = with_current(&s, &r1);
        s2.members.push(member("d", &[1]));
        let r2 = assign(&s2, &topics);
        check_complete(&s2, &topics, &r2);
        assert_eq!(moved(&r1, &r2), 3);
        for m in ["a", "b", "c", "d"] {
            assert_eq!(count(&r2, m), 3);
        }
        // "b" leaves: its 3 partitions spread, nobody else loses anything.
        let mut s3 = with_current(&s2, &r2);
        s3.members.retain(|m| m.member_id != "b");
        let r3 = assign(&s3, &topics);
        check_complete(&s3, &topics, &r3);
        let mut without_b = r2.clone();
        without_b.remove("b");
        assert_eq!(moved(&without_b, &r3), 0);
        for m in ["a", "c", "d"] {
            assert_eq!(count(&r3, m), 4);
        }
        // Same input again: nothing moves.
        let r4 = assign(&with_current(&s3, &r3), &topics);
        assert_eq!(r4, r3);
    }

    #[test]
    fn partitions_added_and_invalid_current_dropped() {
        let topics: TopicCounts = [(topic(1), 4)].into();
        let s = spec(vec![member("a", &[1]), member("b", &[1])]);
        let r1 = assign(&s, &topics);
        let more: TopicCounts = [(topic(1), 8)].into();
        let r2 = assign(&with_current(&s, &r1), &more);
        check_complete(&s, &more, &r2);
        assert_eq!(moved(&r1, &r2), 0);
        assert_eq!((count(&r2, "a"), count(&r2, "b")), (4, 4));
        // Shrunk topic (not possible in Kafka, but current may reference a deleted topic).
        let gone: TopicCounts = [(topic(2), 2)].into();
        let s2 = spec(vec![member("a", &[2]), member("b", &[2])]);
        let r3 = assign(&with_current(&s2, &r2), &gone);
        check_complete(&s2, &gone, &r3);
    }

    #[test]
    fn heterogeneous_subscriptions() {
        let topics: TopicCounts = [(topic(1), 6), (topic(2), 6)].into();
        let s = spec(vec![
            member("a", &[1]),
            member("b", &[1, 2]),
            member("c", &[2]),
        ]);
        let r = assign(&s, &topics);
        check_complete(&s, &topics, &r);
        assert_eq!((count(&r, "a"), count(&r, "b"), count(&r, "c")), (4, 4, 4));
        // Sticky on re-run.
        let r2 = assign(&with_current(&s, &r), &topics);
        assert_eq!(r2, r);
        // A member only on topic 2 joins: balance among subscribers of topic 2.
        let mut s2 = with_current(&s, &r);
        s2.members.push(member("d", &[2]));
        let r3 = assign(&s2, &topics);
        check_complete(&s2, &topics, &r3);
        let max = ["a", "b", "c", "d"]
            .iter()
            .map(|m| count(&r3, m))
            .max()
            .unwrap();
        let min = ["a", "b", "c", "d"]
            .iter()
            .map(|m| count(&r3, m))
            .min()
            .unwrap();
        assert!(max - min <= 1, "{r3:?}");
    }

    #[test]
    fn more_members_than_partitions() {
        let topics: TopicCounts = [(topic(1), 2)].into();
        let s = spec(vec![
            member("a", &[1]),
            member("b", &[1]),
            member("c", &[1]),
        ]);
        let r = assign(&s, &topics);
        check_complete(&s, &topics, &r);
        let total: usize = ["a", "b", "c"].iter().map(|m| count(&r, m)).sum();
        assert_eq!(total, 2);
        // Members subscribed to nothing that exists get nothing.
        let s2 = spec(vec![member("a", &[9])]);
        assert!(assign(&s2, &topics).values().all(|a| a.is_empty()));
    }
}
