//! `arus topic create|list|describe|alter|delete`.

use std::io::Write;

use anyhow::bail;
use arus_client::arus_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use arus_client::{Client, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use clap::{Args, Subcommand};

use super::{BrokerContext, ConnectArgs, parse_key_value, topic_error};

/// Config source TOPIC_CONFIG: a per-topic override.
const SOURCE_TOPIC_CONFIG: i8 = 1;

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names.
    List(ListArgs),
    /// Show a topic's id, partitions (leader, replicas, ISR, offsets) and config overrides.
    Describe(DescribeArgs),
    /// Change a topic's configs or grow its partition count.
    Alter(AlterArgs),
    /// Delete a topic and its data.
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Topic name.
    pub name: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Replication factor (default: the broker's default.replication.factor).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// Topic config override KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Topic name.
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct AlterArgs {
    /// Topic name.
    pub name: String,
    /// Set a topic config KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Remove a topic config override, reverting to the default (repeatable).
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete_configs: Vec<String>,
    /// Grow the topic to this many partitions.
    #[arg(long)]
    pub partitions: Option<i32>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Topic name.
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(cmd: TopicCommand) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let result = run_to(cmd, &mut out).await;
    std::io::stdout().write_all(&out)?;
    result
}

/// Runs a topic command, writing what it prints to `out`.
pub async fn run_to(cmd: TopicCommand, out: &mut Vec<u8>) -> anyhow::Result<()> {
    match cmd {
        TopicCommand::Create(a) => create(a, out).await,
        TopicCommand::List(a) => list(a, out).await,
        TopicCommand::Describe(a) => describe(a, out).await,
        TopicCommand::Alter(a) => alter(a, out).await,
        TopicCommand::Delete(a) => delete(a, out).await,
    }
}

async fn create(a: CreateArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let result = client
        .create_topic(
            &a.name,
            a.partitions.unwrap_or(-1),
            a.replication_factor.unwrap_or(-1),
            &a.configs,
        )
        .await
        .broker_context(|| format!("creating topic '{}'", a.name))?;
    let mut details = Vec::new();
    if result.num_partitions > 0 {
        details.push(format!("{} partitions", result.num_partitions));
    }
    if result.replication_factor > 0 {
        details.push(format!("replication factor {}", result.replication_factor));
    }
    if result.topic_id != arus_client::arus_protocol::Uuid::ZERO {
        details.push(format!("id {}", result.topic_id));
    }
    if details.is_empty() {
        writeln!(out, "Created topic '{}'", a.name)?;
    } else {
        writeln!(out, "Created topic '{}' ({})", a.name, details.join(", "))?;
    }
    Ok(())
}

async fn list(a: ListArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let metadata = client
        .metadata(None)
        .await
        .broker_context(|| "listing topics".into())?;
    let mut names: Vec<String> = metadata.topics.into_iter().filter_map(|t| t.name).collect();
    names.sort();
    for n in names {
        writeln!(out, "{n}")?;
    }
    Ok(())
}

async fn describe(a: DescribeArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let topic = client
        .topic_metadata(&a.name)
        .await
        .map_err(|e| topic_error(&a.name, "describing topic", e))?;
    let mut offsets = Vec::with_capacity(topic.partitions.len());
    for p in &topic.partitions {
        let i = p.partition_index;
        let earliest = offset_or_unknown(&mut client, &a.name, i, EARLIEST_TIMESTAMP).await;
        let latest = offset_or_unknown(&mut client, &a.name, i, LATEST_TIMESTAMP).await;
        offsets.push((earliest, latest));
    }
    // Last, so that a broker failing DescribeConfigs still lets the rest print.
    let configs = match client.describe_topic_configs(&a.name).await {
        Ok(configs) => format_overrides(&configs),
        Err(e) => format!("(unavailable: {:#})", anyhow::Error::new(e)),
    };

    let replication_factor = topic
        .partitions
        .first()
        .map_or(0, |p| p.replica_nodes.len());
    writeln!(
        out,
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}",
        a.name,
        topic.topic_id,
        topic.partitions.len(),
        replication_factor
    )?;
    writeln!(out, "Configs: {configs}")?;
    for (p, (earliest, latest)) in topic.partitions.iter().zip(offsets) {
        let leader = if p.leader_id < 0 {
            "none".to_owned()
        } else {
            p.leader_id.to_string()
        };
        writeln!(
            out,
            "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tEarliest: {}\tLatest: {}{}",
            p.partition_index,
            leader,
            join_ids(&p.replica_nodes),
            join_ids(&p.isr_nodes),
            earliest,
            latest,
            health_marks(p.leader_id, &p.replica_nodes, &p.isr_nodes),
        )?;
    }
    Ok(())
}

async fn offset_or_unknown(client: &mut Client, topic: &str, partition: i32, ts: i64) -> String {
    match client.list_offset(topic, partition, ts).await {
        Ok((offset, _)) => offset.to_string(),
        Err(e) => format!("? ({:#})", anyhow::Error::new(e)),
    }
}

/// What an operator must notice about a partition, as kafka-topics'
/// `--under-replicated-partitions` and `--unavailable-partitions` select them: no leader
/// (offline: nobody can read or write it), or fewer in-sync replicas than replicas
/// (under-replicated: a broker failure away from losing acknowledged data).
fn health_marks(leader: i32, replicas: &[i32], isr: &[i32]) -> &'static str {
    if leader < 0 {
        "\tOFFLINE"
    } else if isr.len() < replicas.len() {
        "\tUNDER-REPLICATED"
    } else {
        ""
    }
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The topic's own overrides as `k=v,k=v` (sorted), or `(none)`. Sensitive values are
/// masked.
fn format_overrides(configs: &[DescribeConfigsResourceResult]) -> String {
    let mut overrides: Vec<String> = configs
        .iter()
        .filter(|c| is_override(c))
        .map(|c| {
            let value = if c.is_sensitive {
                "(sensitive)".to_owned()
            } else {
                c.value.clone().unwrap_or_else(|| "null".into())
            };
            format!("{}={}", c.name, value)
        })
        .collect();
    overrides.sort();
    if overrides.is_empty() {
        "(none)".into()
    } else {
        overrides.join(",")
    }
}

/// A per-topic override: source TOPIC_CONFIG (every version Kafka 4 serves has a source).
fn is_override(c: &DescribeConfigsResourceResult) -> bool {
    c.config_source == SOURCE_TOPIC_CONFIG
}

async fn alter(a: AlterArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    if a.configs.is_empty() && a.delete_configs.is_empty() && a.partitions.is_none() {
        bail!("nothing to alter: give --config, --delete-config or --partitions");
    }
    let mut client = a.connect.connect().await?;
    let mut done = Vec::new();
    if !a.configs.is_empty() || !a.delete_configs.is_empty() {
        client
            .incremental_alter_topic_configs(&a.name, &a.configs, &a.delete_configs)
            .await
            .map_err(|e| topic_error(&a.name, "altering configs of topic", e))?;
        for (k, v) in &a.configs {
            done.push(format!("set {k}={v}"));
        }
        for k in &a.delete_configs {
            done.push(format!("deleted {k}"));
        }
    }
    if let Some(n) = a.partitions
        && let Err(e) = client.create_partitions(&a.name, n).await
    {
        let e = topic_error(&a.name, "adding partitions to topic", e);
        if done.is_empty() {
            return Err(e);
        }
        return Err(e.context(format!(
            "topic '{}' was altered ({}) but its partition count was not",
            a.name,
            done.join(", ")
        )));
    }
    if let Some(n) = a.partitions {
        done.push(format!("partitions now {n}"));
    }
    writeln!(out, "Altered topic '{}': {}", a.name, done.join(", "))?;
    Ok(())
}

async fn delete(a: DeleteArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    client
        .delete_topic(&a.name)
        .await
        .map_err(|e| topic_error(&a.name, "deleting topic", e))?;
    writeln!(out, "Deleted topic '{}'", a.name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, value: &str, source: i8, sensitive: bool) -> DescribeConfigsResourceResult {
        DescribeConfigsResourceResult {
            name: name.into(),
            value: Some(value.into()),
            config_source: source,
            is_sensitive: sensitive,
            ..Default::default()
        }
    }

    #[test]
    fn overrides_are_sorted_and_filtered() {
        let configs = vec![
            cfg("segment.bytes", "1024", 1, false),
            cfg("retention.ms", "604800000", 5, false),
            cfg("cleanup.policy", "compact", 1, false),
            cfg("secret", "x", 1, true),
            cfg("max.message.bytes", "1", 4, false),
        ];
        assert_eq!(
            format_overrides(&configs),
            "cleanup.policy=compact,secret=(sensitive),segment.bytes=1024"
        );
        assert_eq!(format_overrides(&[]), "(none)");
    }

    #[test]
    fn offline_and_under_replicated_partitions_are_marked() {
        assert_eq!(health_marks(1, &[1, 2, 3], &[1, 2, 3]), "");
        assert_eq!(health_marks(1, &[1, 2, 3], &[1, 3]), "\tUNDER-REPLICATED");
        assert_eq!(health_marks(-1, &[1, 2, 3], &[2]), "\tOFFLINE");
        assert_eq!(health_marks(1, &[1], &[1]), "");
    }
}
