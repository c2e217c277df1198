//! The `range` assignor (Kafka's server-side `RangeAssignor`): per topic, subscribers (in
//! member id order) get contiguous ranges, `P / M` each and the first `P % M` one more, so
//! that co-partitioned topics (same partition count, same subscribers) give each member the
//! same partition numbers. It is sticky as Kafka's: a member keeps its lowest current
//! partitions of the topic up to its quota, and the unowned ones are handed out in
//! ascending ranges.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::Uuid;

use super::{GroupSpec, TopicCounts};
use crate::consumer_group::member::Assignment;

/// Computes the target assignment.
pub fn assign(spec: &GroupSpec, topics: &TopicCounts) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    // Topic → subscribers (members are sorted by id).
    let mut per_topic: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, m) in spec.members.iter().enumerate() {
        for t in &m.subscribed_topics {
            if topics.contains_key(t) {
                per_topic.entry(*t).or_default().push(i);
            }
        }
    }
    for (topic, subs) in per_topic {
        let n = topics[&topic].max(0) as usize;
        let min_quota = n / subs.len();
        let mut extra = n % subs.len();
        let mut sticky: BTreeSet<i32> = BTreeSet::new();
        let mut unfilled: Vec<(usize, usize)> = Vec::new();
        for &i in &subs {
            let m = &spec.members[i];
            let current: Vec<i32> = m
                .assignment
                .get(&topic)
                .map(|ps| {
                    ps.iter()
                        .copied()
                        .filter(|p| *p >= 0 && (*p as usize) < n && !sticky.contains(p))
                        .collect()
                })
                .unwrap_or_default();
            let keep = current.len().min(min_quota);
            let a = out.get_mut(&m.member_id).expect("member");
            for &p in &current[..keep] {
                sticky.insert(p);
                a.entry(topic).or_default().insert(p);
            }
            if current.len() > min_quota && extra > 0 {
                extra -= 1;
                let p = current[min_quota];
                sticky.insert(p);
                a.entry(topic).or_default().insert(p);
            } else {
                unfilled.push((i, min_quota - keep));
            }
        }
        let mut free = (0..n as i32).filter(|p| !sticky.contains(p));
        for (i, mut remaining) in unfilled {
            if extra > 0 {
                remaining += 1;
                extra -= 1;
            }
            let a = out.get_mut(&spec.members[i].member_id).expect("member");
            for _ in 0..remaining {
                if let Some(p) = free.next() {
                    a.entry(topic).or_default().insert(p);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn parts(r: &BTreeMap<String, Assignment>, m: &str, t: u8) -> Vec<i32> {
        r[m].get(&topic(t))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    fn ranges_and_co_partitioning() {
        let topics: TopicCounts = [(topic(1), 7), (topic(2), 7)].into();
        let s = GroupSpec {
            members: vec![
                member("a", &[1, 2]),
                member("b", &[1, 2]),
                member("c", &[1, 2]),
            ],
        };
        let r = assign(&s, &topics);
        check_complete(&s, &topics, &r);
        assert_eq!(parts(&r, "a", 1), vec![0, 1, 2]);
        assert_eq!(parts(&r, "b", 1), vec![3, 4]);
        assert_eq!(parts(&r, "c", 1), vec![5, 6]);
        for m in ["a", "b", "c"] {
            assert_eq!(parts(&r, m, 1), parts(&r, m, 2), "co-partitioned");
        }
        // Stable on re-run.
        assert_eq!(assign(&with_current(&s, &r), &topics), r);
    }

    #[test]
    fn sticky_when_a_member_joins() {
        let topics: TopicCounts = [(topic(1), 6)].into();
        let s = GroupSpec {
            members: vec![member("a", &[1]), member("b", &[1])],
        };
        let r1 = assign(&s, &topics);
        assert_eq!(parts(&r1, "a", 1), vec![0, 1, 2]);
        let mut s2 = with_current(&s, &r1);
        s2.members.push(member("c", &[1]));
        let r2 = assign(&s2, &topics);
        check_complete(&s2, &topics, &r2);
        // a keeps 0,1; b keeps 3,4; c gets the released 2 and 5.
        assert_eq!(parts(&r2, "a", 1), vec![0, 1]);
        assert_eq!(parts(&r2, "b", 1), vec![3, 4]);
        assert_eq!(parts(&r2, "c", 1), vec![2, 5]);
        assert_eq!(moved(&r1, &r2), 2);
    }

    #[test]
    fn heterogeneous_and_more_members_than_partitions() {
        let topics: TopicCounts = [(topic(1), 2), (topic(2), 3)].into();
        let s = GroupSpec {
            members: vec![member("a", &[1]), member("b", &[1, 2]), member("c", &[1])],
        };
        let r = assign(&s, &topics);
        check_complete(&s, &topics, &r);
        assert_eq!(parts(&r, "a", 1), vec![0]);
        assert_eq!(parts(&r, "b", 1), vec![1]);
        assert_eq!(parts(&r, "c", 1), Vec::<i32>::new());
        assert_eq!(parts(&r, "b", 2), vec![0, 1, 2]);
    }
}
