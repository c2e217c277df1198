//! Consumer lag per group and partition: the group's committed offset against the
//! partition's high watermark, the same figures `kafka-consumer-groups.sh --describe` shows.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::topics::INPUT_TOPICS;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// `None` until the group commits for this partition.
    pub committed: Option<i64>,
    pub high_watermark: i64,
    pub lag: i64,
}

#[derive(Debug, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub total_lag: i64,
    pub partitions: Vec<PartitionLag>,
}

/// One idle consumer per group, used only to read that group's committed offsets (an
/// OffsetFetch); it never subscribes, so it never joins the group or disturbs its members.
pub struct LagReporter {
    groups: Vec<(String, BaseConsumer)>,
}

impl LagReporter {
    pub fn new(bootstrap: &str, groups: &[&str]) -> anyhow::Result<Self> {
        let groups = groups
            .iter()
            .map(|g| {
                let consumer = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    .set("group.id", *g)
                    .set("enable.auto.commit", "false")
                    .create()
                    .with_context(|| format!("creating the lag reader for {g}"))?;
                Ok((g.to_string(), consumer))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { groups })
    }

    /// Blocking (several broker round trips): call from `spawn_blocking`.
    pub fn report(&self) -> anyhow::Result<Vec<GroupLag>> {
        let Some((_, any)) = self.groups.first() else {
            return Ok(Vec::new());
        };
        let mut watermarks = Vec::new();
        for topic in INPUT_TOPICS {
            let metadata = any
                .fetch_metadata(Some(topic), TIMEOUT)
                .with_context(|| format!("metadata of {topic}"))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (low, high) = any
                        .fetch_watermarks(topic, p.id(), TIMEOUT)
                        .with_context(|| format!("watermarks of {topic}-{}", p.id()))?;
                    watermarks.push((topic, p.id(), low, high));
                }
            }
        }
        watermarks.sort();

        let mut tpl = TopicPartitionList::new();
        for (topic, partition, _, _) in &watermarks {
            tpl.add_partition(topic, *partition);
        }
        let mut report = Vec::new();
        for (group, consumer) in &self.groups {
            let committed = consumer
                .committed_offsets(tpl.clone(), TIMEOUT)
                .with_context(|| format!("committed offsets of {group}"))?;
            let partitions: Vec<PartitionLag> = watermarks
                .iter()
                .map(|(topic, partition, low, high)| {
                    let committed =
                        committed.find_partition(topic, *partition).and_then(|e| {
                            match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            }
                        });
                    // With nothing committed the group would start at the log start (it uses
                    // auto.offset.reset=earliest), so everything retained is still to read.
                    let from = committed.unwrap_or(*low).max(*low);
                    PartitionLag {
                        topic: topic.to_string(),
                        partition: *partition,
                        committed,
                        high_watermark: *high,
                        lag: (*high - from).max(0),
                    }
                })
                .collect();
            report.push(GroupLag {
                group: group.clone(),
                total_lag: partitions.iter().map(|p| p.lag).sum(),
                partitions,
            });
        }
        Ok(report)
    }
}
