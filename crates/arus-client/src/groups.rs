//! Consumer-group admin helpers: find the coordinator, list/describe/delete groups, read
//! and write committed offsets (the requests `arus group` and Kafka's
//! kafka-consumer-groups.sh send). A single Arus node coordinates every group, so these are
//! sent on this connection; [`Client::find_coordinator`] says where a multi-node cluster
//! would want them.

use arus_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    describe_groups_response::DescribedGroup,
    list_groups_response::ListedGroup,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    },
};
use arus_protocol::{ApiKey, Bytes, ErrorCode, Message, Request, Response};

use crate::{Client, ClientError, wrong_response};

/// FindCoordinator key type for consumer groups.
const COORDINATOR_KEY_GROUP: i8 = 0;

/// Where a group's coordinator lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coordinator {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// One committed offset of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when the group has no offset for the partition.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// One offset to commit with [`Client::offset_commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Decodes a consumer group member's assignment (`ConsumerProtocolAssignment`: an i16
/// version, then the body at that version), as DescribeGroups returns it for groups of
/// protocol type `consumer`. Empty bytes (a member that has no assignment yet) decode to an
/// empty assignment.
pub fn decode_consumer_assignment(
    bytes: &Bytes,
) -> Result<ConsumerProtocolAssignment, ClientError> {
    if bytes.is_empty() {
        return Ok(ConsumerProtocolAssignment {
            assigned_partitions: Vec::new(),
            user_data: None,
        });
    }
    let bad = |what: String| ClientError::UnexpectedResponse(format!("member assignment: {what}"));
    if bytes.len() < 2 {
        return Err(bad(format!(
            "{} bytes, too short for a version",
            bytes.len()
        )));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    // Later versions only add tagged/optional fields; read them as the newest we know.
    let read_as = version.clamp(0, ConsumerProtocolAssignment::VERSIONS.1);
    if version < 0 {
        return Err(bad(format!("negative version {version}")));
    }
    let mut body = bytes.slice(2..);
    ConsumerProtocolAssignment::decode(&mut body, read_as).map_err(|e| bad(e.to_string()))
}

/// How often a group request is retried after a coordinator error, and the pause between
/// tries (Kafka clients' `retry.backoff.ms` is 100; the bound keeps a test from hanging).
const COORDINATOR_RETRIES: u32 = 100;
const COORDINATOR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The errors after which Kafka clients look the coordinator up again and retry.
fn is_coordinator_retriable(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
        )
    )
}

impl Client {
    /// FindCoordinator for a consumer group (batched form on v4+).
    pub async fn find_coordinator(&mut self, group: &str) -> Result<Coordinator, ClientError> {
        let version = self.api_version(ApiKey::FindCoordinator)?;
        let request = if version >= 4 {
            FindCoordinatorRequest {
                key: String::new(),
                key_type: COORDINATOR_KEY_GROUP,
                coordinator_keys: vec![group.to_owned()],
            }
        } else {
            FindCoordinatorRequest {
                key: group.to_owned(),
                key_type: COORDINATOR_KEY_GROUP,
                coordinator_keys: Vec::new(),
            }
        };
        let r = match self.send(Request::FindCoordinator(request)).await? {
            Response::FindCoordinator(r) => r,
            other => return Err(wrong_response(ApiKey::FindCoordinator, &other)),
        };
        if version >= 4 {
            let c = r
                .coordinators
                .iter()
                .find(|c| c.key == group)
                .ok_or_else(|| {
                    ClientError::UnexpectedResponse(format!(
                        "group '{group}' missing from FindCoordinator response"
                    ))
                })?;
            ClientError::check(c.error_code, c.error_message.as_deref())?;
            Ok(Coordinator {
                node_id: c.node_id,
                host: c.host.clone(),
                port: c.port,
            })
        } else {
            ClientError::check(r.error_code, r.error_message.as_deref())?;
            Ok(Coordinator {
                node_id: r.node_id,
                host: r.host,
                port: r.port,
            })
        }
    }

    /// ListGroups (sorted by group id), optionally only groups in the given states
    /// (`Empty`, `Stable`, …; the filter needs ListGroups v4+).
    pub async fn list_groups(&mut self, states: &[&str]) -> Result<Vec<ListedGroup>, ClientError> {
        let version = self.api_version(ApiKey::ListGroups)?;
        if !states.is_empty() && version < 4 {
            // The state filter (and the state in the answer) arrived in ListGroups v4.
            return Err(ClientError::UnsupportedApi {
                api: ApiKey::ListGroups,
                broker_versions: self.broker_versions(ApiKey::ListGroups),
            });
        }
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| (*s).to_owned()).collect(),
            types_filter: Vec::new(),
        };
        let r = match self.send(Request::ListGroups(request)).await? {
            Response::ListGroups(r) => r,
            other => return Err(wrong_response(ApiKey::ListGroups, &other)),
        };
        ClientError::check(r.error_code, None)?;
        let mut groups = r.groups;
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// DescribeGroups; every group's own error code is left in its `error_code` (a group
    /// that does not exist is described as state `Dead`, as Kafka does).
    pub async fn describe_groups(
        &mut self,
        groups: &[&str],
    ) -> Result<Vec<DescribedGroup>, ClientError> {
        let request = DescribeGroupsRequest {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            include_authorized_operations: false,
        };
        match self.send(Request::DescribeGroups(request)).await? {
            Response::DescribeGroups(r) => Ok(r.groups),
            other => Err(wrong_response(ApiKey::DescribeGroups, &other)),
        }
    }

    /// DescribeGroups for one group; its error code becomes an error.
    pub async fn describe_group(&mut self, group: &str) -> Result<DescribedGroup, ClientError> {
        let g = self
            .describe_groups(&[group])
            .await?
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "group '{group}' missing from DescribeGroups response"
                ))
            })?;
        ClientError::check(g.error_code, None)?;
        Ok(g)
    }

    /// OffsetFetch: the group's committed offsets, for every topic (`topics = None`) or the
    /// given topics' partitions. Sorted by topic, partition.
    pub async fn offset_fetch(
        &mut self,
        group: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        let mut attempt = 0;
        loop {
            match self.offset_fetch_once(group, topics).await {
                Err(e) if attempt < COORDINATOR_RETRIES && is_coordinator_retriable(&e) => {
                    attempt += 1;
                    self.await_coordinator(group).await?;
                }
                other => return other,
            }
        }
    }

    async fn offset_fetch_once(
        &mut self,
        group: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        let version = self.api_version(ApiKey::OffsetFetch)?;
        let request = if version >= 8 {
            OffsetFetchRequest {
                group_id: String::new(),
                topics: Some(Vec::new()),
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.to_owned(),
                    member_id: None,
                    member_epoch: -1,
                    topics: topics.map(|ts| {
                        ts.iter()
                            .map(|(name, parts)| OffsetFetchRequestTopics {
                                name: name.clone(),
                                partition_indexes: parts.clone(),
                                ..Default::default()
                            })
                            .collect()
                    }),
                }],
                require_stable: false,
            }
        } else {
            OffsetFetchRequest {
                group_id: group.to_owned(),
                topics: topics.map(|ts| {
                    ts.iter()
                        .map(|(name, parts)| OffsetFetchRequestTopic {
                            name: name.clone(),
                            partition_indexes: parts.clone(),
                        })
                        .collect()
                }),
                groups: Vec::new(),
                require_stable: false,
            }
        };
        let r = match self.send(Request::OffsetFetch(request)).await? {
            Response::OffsetFetch(r) => r,
            other => return Err(wrong_response(ApiKey::OffsetFetch, &other)),
        };
        let mut out = Vec::new();
        if version >= 8 {
            let g = r
                .groups
                .into_iter()
                .find(|g| g.group_id == group)
                .ok_or_else(|| {
                    ClientError::UnexpectedResponse(format!(
                        "group '{group}' missing from OffsetFetch response"
                    ))
                })?;
            ClientError::check(g.error_code, None)?;
            for t in g.topics {
                for p in t.partitions {
                    ClientError::check(p.error_code, None)?;
                    out.push(CommittedOffset {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata,
                    });
                }
            }
        } else {
            ClientError::check(r.error_code, None)?;
            for t in r.topics {
                for p in t.partitions {
                    ClientError::check(p.error_code, None)?;
                    out.push(CommittedOffset {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// OffsetCommit outside any generation (generation -1, no member id), the way admin
    /// tools reset a group's offsets: the broker accepts it only while the group has no
    /// active members. The first failing partition's error is returned.
    pub async fn offset_commit(
        &mut self,
        group: &str,
        offsets: &[OffsetToCommit],
    ) -> Result<(), ClientError> {
        let mut attempt = 0;
        loop {
            match self.offset_commit_once(group, offsets).await {
                Err(e) if attempt < COORDINATOR_RETRIES && is_coordinator_retriable(&e) => {
                    attempt += 1;
                    self.await_coordinator(group).await?;
                }
                other => return other,
            }
        }
    }

    /// Waits (bounded) until FindCoordinator names a coordinator for `group`: the first
    /// FindCoordinator creates `__consumer_offsets`, whose partitions then need a leader and
    /// a loaded coordinator (COORDINATOR_NOT_AVAILABLE / _LOAD_IN_PROGRESS meanwhile), as
    /// Kafka clients wait.
    async fn await_coordinator(&mut self, group: &str) -> Result<(), ClientError> {
        let mut attempt = 0;
        loop {
            match self.find_coordinator(group).await {
                Ok(_) => {
                    tokio::time::sleep(COORDINATOR_BACKOFF).await;
                    return Ok(());
                }
                Err(e) if attempt < COORDINATOR_RETRIES && is_coordinator_retriable(&e) => {
                    attempt += 1;
                    tokio::time::sleep(COORDINATOR_BACKOFF).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn offset_commit_once(
        &mut self,
        group: &str,
        offsets: &[OffsetToCommit],
    ) -> Result<(), ClientError> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for o in offsets {
            let partition = OffsetCommitRequestPartition {
                partition_index: o.partition,
                committed_offset: o.offset,
                committed_leader_epoch: -1,
                committed_metadata: Some(String::new()),
            };
            match topics.iter_mut().find(|t| t.name == o.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(OffsetCommitRequestTopic {
                    name: o.topic.clone(),
                    partitions: vec![partition],
                    ..Default::default()
                }),
            }
        }
        let request = OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics,
        };
        let r = match self.send(Request::OffsetCommit(request)).await? {
            Response::OffsetCommit(r) => r,
            other => return Err(wrong_response(ApiKey::OffsetCommit, &other)),
        };
        for t in &r.topics {
            for p in &t.partitions {
                ClientError::check(p.error_code, None)?;
            }
        }
        Ok(())
    }

    /// DeleteGroups; one result per group, in request order (a group missing from the
    /// response is an error).
    pub async fn delete_groups(
        &mut self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = DeleteGroupsRequest {
            groups_names: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let r = match self.send(Request::DeleteGroups(request)).await? {
            Response::DeleteGroups(r) => r,
            other => return Err(wrong_response(ApiKey::DeleteGroups, &other)),
        };
        Ok(groups
            .iter()
            .map(|g| {
                let result = match r.results.iter().find(|x| x.group_id == *g) {
                    Some(x) => ClientError::check(x.error_code, None),
                    None => Err(ClientError::UnexpectedResponse(format!(
                        "group '{g}' missing from DeleteGroups response"
                    ))),
                };
                ((*g).to_owned(), result)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::BytesMut;
    use arus_protocol::messages::consumer_protocol_assignment::TopicPartition;

    fn encoded(a: &ConsumerProtocolAssignment, version: i16) -> Bytes {
        let mut out = BytesMut::new();
        out.extend_from_slice(&version.to_be_bytes());
        a.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn assignment_round_trip_every_version() {
        let a = ConsumerProtocolAssignment {
            assigned_partitions: vec![
                TopicPartition {
                    topic: "t1".into(),
                    partitions: vec![0, 2],
                },
                TopicPartition {
                    topic: "t2".into(),
                    partitions: vec![1],
                },
            ],
            user_data: Some(Bytes::from_static(b"ud")),
        };
        for v in 0..=ConsumerProtocolAssignment::VERSIONS.1 {
            assert_eq!(
                decode_consumer_assignment(&encoded(&a, v)).unwrap(),
                a,
                "v{v}"
            );
        }
    }

    #[test]
    fn assignment_edge_cases() {
        let empty = decode_consumer_assignment(&Bytes::new()).unwrap();
        assert!(empty.assigned_partitions.is_empty());
        assert!(decode_consumer_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_consumer_assignment(&Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        // A newer version than we know is read as the newest we know.
        let a = ConsumerProtocolAssignment {
            assigned_partitions: vec![TopicPartition {
                topic: "t".into(),
                partitions: vec![3],
            }],
            user_data: None,
        };
        let mut b = encoded(&a, ConsumerProtocolAssignment::VERSIONS.1).to_vec();
        b[0..2].copy_from_slice(&(ConsumerProtocolAssignment::VERSIONS.1 + 1).to_be_bytes());
        assert_eq!(decode_consumer_assignment(&Bytes::from(b)).unwrap(), a);
        // Truncated body.
        let full = encoded(&a, 0);
        assert!(decode_consumer_assignment(&full.slice(..full.len() - 2)).is_err());
    }
}
