//! Committed offsets: OffsetCommit (answered once the commit is fsynced in
//! `__consumer_offsets`), TxnOffsetCommit (pending until the producer's transaction
//! commits), OffsetFetch (single group up to v7, batched groups from v8; `require_stable`
//! answers UNSTABLE_OFFSET_COMMIT while a transactional commit is pending) and OffsetDelete.

use std::sync::Arc;

use arus_group::records::offsets_partition_for;
use arus_group::{CommitParams, CommitPartition, OffsetEntry, TxnCommitParams};
use arus_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use arus_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use arus_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use arus_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use arus_protocol::messages::{
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TxnOffsetCommitRequest,
};

use arus_protocol::{ErrorCode, Uuid};

use crate::Broker;
use crate::groups::{PersistError, offsets_topic};

/// The name a request's topic row stands for. From OffsetCommit v10, OffsetFetch v10 and
/// TxnOffsetCommit v6 rows carry a topic id instead of a name (KIP-848, KIP-1319): as Kafka's
/// request handlers, an id this broker knows becomes its topic's name, and an unknown (or
/// zero) id becomes no name at all, which is UNKNOWN_TOPIC_ID for each of its partitions.
fn row_topic(broker: &Broker, by_id: bool, name: &str, id: &Uuid) -> Option<String> {
    if !by_id {
        return Some(name.to_string());
    }
    broker.topics.get_by_id(id).map(|t| t.name.clone())
}

/// The id reported beside `name` in a response that names topics by id.
fn topic_id_of(broker: &Broker, name: &str) -> Uuid {
    broker.topics.get(name).map(|t| t.id).unwrap_or(Uuid::ZERO)
}

fn partition_exists(broker: &Broker, topic: &str, partition: i32) -> bool {
    broker
        .topics
        .get(topic)
        .is_some_and(|t| t.has_partition(partition))
}

/// Per topic (name as resolved, id as asked): each partition with the error decided before
/// the coordinator runs, or `None` when the coordinator's answer applies.
type PlanRows = Vec<(String, Uuid, Vec<(i32, Option<ErrorCode>)>)>;

/// An offset commit split into what is refused up front (topics named by an unknown id, then
/// partitions this broker does not host, as Kafka's request handler does before it calls the
/// coordinator, then `early` for all the others) and what goes to the coordinator.
struct CommitPlan {
    rows: PlanRows,
    partitions: Vec<CommitPartition>,
}

/// One topic row of a commit: its name (`None`: unknown id), its id as asked, and its
/// partitions (each built for the resolved name).
type CommitTopic<P> = (Option<String>, Uuid, P);

fn plan_commit<P: Iterator<Item = CommitPartition>>(
    broker: &Broker,
    early: Option<ErrorCode>,
    topics: impl Iterator<Item = CommitTopic<P>>,
) -> CommitPlan {
    let mut plan = CommitPlan {
        rows: Vec::new(),
        partitions: Vec::new(),
    };
    for (name, id, parts) in topics {
        let mut rows = Vec::new();
        for p in parts {
            if name.is_none() {
                rows.push((p.partition, Some(ErrorCode::UnknownTopicId)));
            } else if !partition_exists(broker, &p.topic, p.partition) {
                rows.push((p.partition, Some(ErrorCode::UnknownTopicOrPartition)));
            } else if let Some(code) = early {
                rows.push((p.partition, Some(code)));
            } else {
                rows.push((p.partition, None));
                plan.partitions.push(p);
            }
        }
        plan.rows.push((name.unwrap_or_default(), id, rows));
    }
    plan
}

/// Per-partition codes of a commit: the coordinator's answer (or its request-wide error
/// for all `n`), with a failed persist turning the successes into its error.
fn partition_codes(
    result: Result<Vec<ErrorCode>, ErrorCode>,
    n: usize,
    persisted: Result<(), PersistError>,
) -> Vec<ErrorCode> {
    let mut codes = result.unwrap_or_else(|code| vec![code; n]);
    if let Err(e) = persisted {
        for c in codes.iter_mut().filter(|c| **c == ErrorCode::None) {
            *c = e.code();
        }
    }
    codes
}

/// A topic's name (as resolved), id (as asked) and each partition's final code.
type ResolvedTopic = (String, Uuid, Vec<(i32, ErrorCode)>);

/// The final code of every planned partition: its early error, else the coordinator's
/// answers in order.
fn resolve(rows: PlanRows, codes: Vec<ErrorCode>) -> Vec<ResolvedTopic> {
    let mut next = codes.into_iter();
    rows.into_iter()
        .map(|(name, id, rows)| {
            let rows = rows
                .into_iter()
                .map(|(p, code)| {
                    (
                        p,
                        code.or_else(|| next.next())
                            .unwrap_or(ErrorCode::UnknownServerError),
                    )
                })
                .collect();
            (name, id, rows)
        })
        .collect()
}

pub async fn commit(
    broker: &Arc<Broker>,
    r: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let driver = broker.groups.clone();
    let early = driver.coordinator_error(broker, &r.group_id);
    let CommitPlan {
        rows: plan,
        partitions,
    } = plan_commit(
        broker,
        early,
        r.topics.iter().map(|t| {
            let name = row_topic(broker, version >= 10, &t.name, &t.topic_id);
            let topic = name.clone().unwrap_or_default();
            (
                name,
                t.topic_id,
                t.partitions.iter().map(move |p| CommitPartition {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.clone(),
                }),
            )
        }),
    );
    let mut codes: Vec<ErrorCode> = Vec::new();
    if !partitions.is_empty() {
        let n = partitions.len();
        let params = CommitParams {
            group_id: r.group_id.clone(),
            generation_id: r.generation_id_or_member_epoch,
            member_id: r.member_id.clone(),
            group_instance_id: if version >= 7 {
                r.group_instance_id.clone()
            } else {
                None
            },
            retention_time_ms: if (2..=4).contains(&version) {
                r.retention_time_ms
            } else {
                -1
            },
            partitions,
        };
        let (result, after) = driver.locked_groups(broker, |g, now| {
            if g.consumer.contains(&params.group_id) {
                // Kafka's `ConsumerGroup.validateOffsetCommit`; the offsets themselves are
                // kept with the classic side's, as a commit without group management.
                g.consumer.validate_offset_commit(
                    &params.group_id,
                    &params.member_id,
                    params.group_instance_id.as_deref(),
                    params.generation_id,
                    false,
                    version,
                )?;
                let params = CommitParams {
                    generation_id: -1,
                    member_id: String::new(),
                    group_instance_id: None,
                    ..params
                };
                return g.classic.commit_offsets(params, now);
            }
            g.classic.commit_offsets(params, now)
        });
        let persisted = driver.finish(broker, after).await;
        codes = partition_codes(result, n, persisted);
    }
    OffsetCommitResponse {
        topics: resolve(plan, codes)
            .into_iter()
            .map(|(name, topic_id, rows)| OffsetCommitResponseTopic {
                name,
                topic_id,
                partitions: rows
                    .into_iter()
                    .map(|(partition_index, code)| OffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// TxnOffsetCommit: validated like OffsetCommit (KIP-447 generation/member checks from v3),
/// and by the transaction coordinator (the group's `__consumer_offsets` partition must be in
/// the producer's transaction, added by AddOffsetsToTxn); the offsets stay pending until the
/// transaction's COMMIT marker reaches that partition.
pub async fn txn_commit(
    broker: &Arc<Broker>,
    r: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let driver = broker.groups.clone();
    let mut early: Option<ErrorCode> = None;
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        early = Some(code);
    } else {
        match offsets_topic(broker) {
            Ok(topic) => {
                let index = offsets_partition_for(&r.group_id, topic.partition_count());
                // v5+ (transactions v2): the group's offsets partition is added to the
                // transaction here, the client no longer sends AddOffsetsToTxn.
                let code = if version >= 5 {
                    broker
                        .txns
                        .add_for_produce(
                            broker,
                            Some(&r.transactional_id),
                            r.producer_id,
                            r.producer_epoch,
                            &[arus_txn::TopicPartition::new(
                                crate::groups::OFFSETS_TOPIC,
                                index,
                            )],
                        )
                        .await
                } else {
                    let tp = [arus_txn::TopicPartition::new(
                        crate::groups::OFFSETS_TOPIC,
                        index,
                    )];
                    // The transaction coordinator may be another node: asked there.
                    match broker
                        .txns
                        .verify_elsewhere(
                            broker,
                            Some(&r.transactional_id),
                            r.producer_id,
                            r.producer_epoch,
                            &tp,
                            version <= 3,
                        )
                        .await
                    {
                        Some(codes) => codes.first().map_or(ErrorCode::None, |(_, c)| *c),
                        None => broker.txns.verify_produce(
                            r.producer_id,
                            r.producer_epoch,
                            crate::groups::OFFSETS_TOPIC,
                            index,
                        ),
                    }
                };
                // Kafka's GroupCoordinatorService normalizes a transient verification
                // answer to COORDINATOR_NOT_AVAILABLE for this API.
                match code {
                    ErrorCode::None => {}
                    ErrorCode::NotEnoughReplicas => {
                        early = Some(ErrorCode::CoordinatorNotAvailable)
                    }
                    other => early = Some(other),
                }
            }
            Err(_) => early = Some(ErrorCode::CoordinatorNotAvailable),
        }
    }
    let CommitPlan {
        rows: plan,
        partitions,
    } = plan_commit(
        broker,
        early,
        r.topics.iter().map(|t| {
            let name = row_topic(broker, version >= 6, &t.name, &t.topic_id);
            let topic = name.clone().unwrap_or_default();
            (
                name,
                t.topic_id,
                t.partitions.iter().map(move |p| CommitPartition {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.clone(),
                }),
            )
        }),
    );
    let mut codes: Vec<ErrorCode> = Vec::new();
    if !partitions.is_empty() {
        let n = partitions.len();
        let params = TxnCommitParams {
            group_id: r.group_id.clone(),
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            generation_id: if version >= 3 {
                r.generation_id_or_member_epoch
            } else {
                -1
            },
            member_id: if version >= 3 {
                r.member_id.clone()
            } else {
                String::new()
            },
            group_instance_id: if version >= 3 {
                r.group_instance_id.clone()
            } else {
                None
            },
            partitions,
        };
        let (result, after) = driver.locked_groups(broker, |g, now| {
            if g.consumer.contains(&params.group_id) {
                g.consumer.validate_txn_offset_commit(
                    &params.group_id,
                    &params.member_id,
                    params.group_instance_id.as_deref(),
                    params.generation_id,
                )?;
                let params = TxnCommitParams {
                    generation_id: -1,
                    member_id: String::new(),
                    group_instance_id: None,
                    ..params
                };
                return g.classic.txn_commit_offsets(params, now);
            }
            g.classic.txn_commit_offsets(params, now)
        });
        let persisted = driver.finish(broker, after).await;
        codes = partition_codes(result, n, persisted);
    }
    TxnOffsetCommitResponse {
        topics: resolve(plan, codes)
            .into_iter()
            .map(|(name, topic_id, rows)| TxnOffsetCommitResponseTopic {
                name,
                topic_id,
                partitions: rows
                    .into_iter()
                    .map(|(partition_index, code)| TxnOffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// (offset, leader epoch, metadata) as OffsetFetch reports them; never-committed
/// partitions are offset -1 with empty metadata and no error, as in Kafka.
fn reported(e: Option<OffsetEntry>) -> (i64, i32, String) {
    match e {
        Some(e) => (e.offset, e.leader_epoch, e.metadata),
        None => (-1, -1, String::new()),
    }
}

pub fn fetch(broker: &Arc<Broker>, r: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let driver = &broker.groups;
    // KIP-447: with `require_stable`, a partition with a pending transactional commit is
    // UNSTABLE_OFFSET_COMMIT (retriable) instead of a possibly stale offset.
    let require_stable = version >= 7 && r.require_stable;
    let unstable = |group: &str, topic: &str, partition: i32| {
        require_stable && driver.read(|c| c.has_pending_txn_offset(group, topic, partition))
    };
    if version >= 8 {
        let groups = r
            .groups
            .into_iter()
            .map(|g| {
                if let Some(code) = driver.coordinator_error(broker, &g.group_id) {
                    return OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        error_code: code.code(),
                        ..Default::default()
                    };
                }
                // v10 names topics by id: those this broker knows are fetched by name and
                // reported with the id asked; unknown ids follow, UNKNOWN_TOPIC_ID.
                let by_id = version >= 10;
                let mut asked_ids: std::collections::HashMap<String, Uuid> = Default::default();
                let mut unknown_ids: Vec<(Uuid, Vec<i32>)> = Vec::new();
                let wanted: Option<Vec<(String, Vec<i32>)>> = g.topics.map(|ts| {
                    ts.into_iter()
                        .filter_map(|t| match row_topic(broker, by_id, &t.name, &t.topic_id) {
                            Some(name) => {
                                asked_ids.insert(name.clone(), t.topic_id);
                                Some((name, t.partition_indexes))
                            }
                            None => {
                                unknown_ids.push((t.topic_id, t.partition_indexes));
                                None
                            }
                        })
                        .collect()
                });
                let id_of = |name: &str| {
                    if !by_id {
                        Uuid::ZERO
                    } else if let Some(id) = asked_ids.get(name) {
                        *id
                    } else {
                        topic_id_of(broker, name)
                    }
                };
                let member_id = if version >= 9 {
                    g.member_id.clone()
                } else {
                    None
                };
                let epoch = if version >= 9 { g.member_epoch } else { -1 };
                let found: Result<_, ErrorCode> = driver.read_groups(|c, consumer| {
                    if consumer.contains(&g.group_id) {
                        consumer.validate_offset_fetch(&g.group_id, member_id.as_deref(), epoch)?;
                    }
                    Ok(c.fetch_offsets(&g.group_id, wanted.as_deref()))
                });
                let found = match found {
                    Ok(found) => found,
                    Err(code) => {
                        return OffsetFetchResponseGroup {
                            group_id: g.group_id,
                            error_code: code.code(),
                            ..Default::default()
                        };
                    }
                };
                OffsetFetchResponseGroup {
                    topics: found
                        .into_iter()
                        // A v10 answer cannot name a topic that has no id any more (deleted):
                        // Kafka leaves such offsets out.
                        .filter(|(name, _)| !by_id || id_of(name) != Uuid::ZERO)
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            partitions: parts
                                .into_iter()
                                .map(|(partition_index, e)| {
                                    if unstable(&g.group_id, &name, partition_index) {
                                        return OffsetFetchResponsePartitions {
                                            partition_index,
                                            committed_offset: -1,
                                            committed_leader_epoch: -1,
                                            metadata: Some(String::new()),
                                            error_code: ErrorCode::UnstableOffsetCommit.code(),
                                            ..Default::default()
                                        };
                                    }
                                    let (offset, epoch, metadata) = reported(e);
                                    OffsetFetchResponsePartitions {
                                        partition_index,
                                        committed_offset: offset,
                                        committed_leader_epoch: epoch,
                                        metadata: Some(metadata),
                                        error_code: 0,
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            topic_id: id_of(&name),
                            name,
                            ..Default::default()
                        })
                        .chain(unknown_ids.into_iter().map(|(topic_id, partitions)| {
                            OffsetFetchResponseTopics {
                                topic_id,
                                partitions: partitions
                                    .into_iter()
                                    .map(|partition_index| OffsetFetchResponsePartitions {
                                        partition_index,
                                        committed_offset: -1,
                                        committed_leader_epoch: -1,
                                        metadata: Some(String::new()),
                                        error_code: ErrorCode::UnknownTopicId.code(),
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            }
                        }))
                        .collect(),
                    group_id: g.group_id,
                    error_code: 0,
                    ..Default::default()
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        // v2+ carries a top-level error; older versions report it per partition.
        let code = code.code();
        return OffsetFetchResponse {
            error_code: if version >= 2 { code } else { 0 },
            topics: r
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| OffsetFetchResponseTopic {
                    name: t.name,
                    partitions: t
                        .partition_indexes
                        .into_iter()
                        .map(|partition_index| OffsetFetchResponsePartition {
                            partition_index,
                            committed_offset: -1,
                            error_code: code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = r.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let found = driver.read(|c| c.fetch_offsets(&r.group_id, wanted.as_deref()));
    OffsetFetchResponse {
        topics: found
            .into_iter()
            .map(|(name, parts)| OffsetFetchResponseTopic {
                partitions: parts
                    .into_iter()
                    .map(|(partition_index, e)| {
                        if unstable(&r.group_id, &name, partition_index) {
                            return OffsetFetchResponsePartition {
                                partition_index,
                                committed_offset: -1,
                                committed_leader_epoch: -1,
                                metadata: Some(String::new()),
                                error_code: ErrorCode::UnstableOffsetCommit.code(),
                                ..Default::default()
                            };
                        }
                        let (offset, epoch, metadata) = reported(e);
                        OffsetFetchResponsePartition {
                            partition_index,
                            committed_offset: offset,
                            committed_leader_epoch: if version >= 5 { epoch } else { -1 },
                            metadata: Some(metadata),
                            error_code: 0,
                            ..Default::default()
                        }
                    })
                    .collect(),
                name,
                ..Default::default()
            })
            .collect(),
        error_code: 0,
        ..Default::default()
    }
}

pub async fn delete(broker: &Arc<Broker>, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let topics: Vec<(String, Vec<i32>)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let (result, after) = driver.locked_groups(broker, |g, now| {
        let Some(cg) = g.consumer.group(&r.group_id) else {
            return g.classic.delete_offsets(&r.group_id, &topics, now);
        };
        // Kafka's OffsetDelete for a consumer group: offsets of topics the group subscribes
        // to stay (GROUP_SUBSCRIBED_TO_TOPIC); the others are deleted.
        let subscribed: std::collections::BTreeSet<String> = cg
            .subscribed_topic_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let free: Vec<(String, Vec<i32>)> = topics
            .iter()
            .filter(|(t, _)| !subscribed.contains(t))
            .cloned()
            .collect();
        let mut deleted = match g.classic.delete_offsets(&r.group_id, &free, now) {
            Ok(rows) => rows.into_iter(),
            // No offsets were ever committed: nothing to delete.
            Err(_) => Vec::new().into_iter(),
        };
        Ok(topics
            .iter()
            .map(|(t, parts)| {
                if subscribed.contains(t) {
                    let rows = parts
                        .iter()
                        .map(|p| (*p, ErrorCode::GroupSubscribedToTopic))
                        .collect();
                    (t.clone(), rows)
                } else {
                    deleted.next().unwrap_or_else(|| {
                        (
                            t.clone(),
                            parts.iter().map(|p| (*p, ErrorCode::None)).collect(),
                        )
                    })
                }
            })
            .collect())
    });
    let persisted = driver.finish(broker, after).await;
    match result {
        Err(code) => OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        },
        Ok(rows) => OffsetDeleteResponse {
            error_code: match persisted {
                Err(e) => e.code().code(),
                Ok(()) => 0,
            },
            topics: rows
                .into_iter()
                .map(|(name, parts)| OffsetDeleteResponseTopic {
                    partitions: parts
                        .into_iter()
                        .map(|(partition_index, code)| OffsetDeleteResponsePartition {
                            partition_index,
                            // Kafka checks that the partition exists before the group rules.
                            error_code: if partition_exists(broker, &name, partition_index)
                                || code != ErrorCode::None
                            {
                                code.code()
                            } else {
                                ErrorCode::UnknownTopicOrPartition.code()
                            },
                            ..Default::default()
                        })
                        .collect(),
                    name,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    }
}
