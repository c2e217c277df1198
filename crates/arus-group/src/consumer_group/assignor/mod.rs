//! Server-side assignors (`group.consumer.assignors`): `uniform` (the default) and `range`,
//! as plain functions from a group specification to a target assignment.
//!
//! As in Kafka (`GroupSpec`), each member's "current" assignment handed to an assignor is
//! its current *target* assignment, which is what makes the assignors sticky.

pub mod range;
pub mod uniform;

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::Uuid;

use super::member::Assignment;

/// Name of the uniform assignor (Kafka's `UniformAssignor`).
pub const UNIFORM: &str = "uniform";
/// Name of the range assignor (Kafka's server `RangeAssignor`).
pub const RANGE: &str = "range";

/// One member as an assignor sees it.
#[derive(Clone, Debug, Default)]
pub struct MemberSpec {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// Ids of the subscribed topics that exist.
    pub subscribed_topics: BTreeSet<Uuid>,
    /// The member's current target assignment.
    pub assignment: Assignment,
}

/// The group as an assignor sees it.
#[derive(Clone, Debug, Default)]
pub struct GroupSpec {
    /// Members, sorted by member id.
    pub members: Vec<MemberSpec>,
}

impl GroupSpec {
    /// Every member subscribes to the same topics (Kafka's `SubscriptionType.HOMOGENEOUS`).
    pub fn is_homogeneous(&self) -> bool {
        self.members
            .windows(2)
            .all(|w| w[0].subscribed_topics == w[1].subscribed_topics)
    }
}

/// Topic id → partition count of the topics the group subscribes to.
pub type TopicCounts = BTreeMap<Uuid, i32>;

/// Runs the named assignor; `None` for an unknown name.
pub fn assign(
    name: &str,
    spec: &GroupSpec,
    topics: &TopicCounts,
) -> Option<BTreeMap<String, Assignment>> {
    match name {
        UNIFORM => Some(uniform::assign(spec, topics)),
        RANGE => Some(range::assign(spec, topics)),
        _ => None,
    }
}

/// The partitions of `current` that still exist and belong to a subscribed topic.
pub(crate) fn valid_partitions<'a>(
    m: &'a MemberSpec,
    topics: &'a TopicCounts,
) -> impl Iterator<Item = (Uuid, i32)> + 'a {
    m.assignment
        .iter()
        .filter(|(t, _)| m.subscribed_topics.contains(*t))
        .filter_map(|(t, ps)| topics.get(t).map(|n| (t, ps, *n)))
        .flat_map(|(t, ps, n)| {
            ps.iter()
                .filter(move |p| **p >= 0 && **p < n)
                .map(|p| (*t, *p))
        })
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn topic(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    pub fn member(id: &str, topics: &[u8]) -> MemberSpec {
        MemberSpec {
            member_id: id.to_string(),
            subscribed_topics: topics.iter().map(|t| topic(*t)).collect(),
            ..Default::default()
        }
    }

    /// Feeds an assignment back as the members' current target (sticky rounds).
    pub fn with_current(spec: &GroupSpec, result: &BTreeMap<String, Assignment>) -> GroupSpec {
        let mut s = spec.clone();
        for m in &mut s.members {
            m.assignment = result.get(&m.member_id).cloned().unwrap_or_default();
        }
        s
    }

    /// Every partition of every subscribed topic assigned exactly once, only to subscribers.
    pub fn check_complete(
        spec: &GroupSpec,
        topics: &TopicCounts,
        r: &BTreeMap<String, Assignment>,
    ) {
        let mut seen = BTreeSet::new();
        for (mid, a) in r {
            let m = spec.members.iter().find(|m| &m.member_id == mid).unwrap();
            for (t, ps) in a {
                assert!(m.subscribed_topics.contains(t), "{mid} not subscribed");
                for p in ps {
                    assert!(*p >= 0 && *p < topics[t]);
                    assert!(seen.insert((*t, *p)), "partition assigned twice");
                }
            }
        }
        let subscribed: BTreeSet<Uuid> = spec
            .members
            .iter()
            .flat_map(|m| m.subscribed_topics.iter().copied())
            .collect();
        let expected: usize = subscribed
            .iter()
            .filter_map(|t| topics.get(t))
            .map(|n| *n as usize)
            .sum();
        assert_eq!(seen.len(), expected, "not every partition assigned");
    }

    pub fn count(r: &BTreeMap<String, Assignment>, m: &str) -> usize {
        r.get(m)
            .map(crate::consumer_group::member::assignment_size)
            .unwrap_or(0)
    }

    pub fn moved(
        before: &BTreeMap<String, Assignment>,
        after: &BTreeMap<String, Assignment>,
    ) -> usize {
        let mut n = 0;
        for (m, a) in before {
            for (t, ps) in a {
                for p in ps {
                    if !after
                        .get(m)
                        .and_then(|x| x.get(t))
                        .is_some_and(|x| x.contains(p))
                    {
                        n += 1;
                    }
                }
            }
        }
        n
    }
}
