//! `arus cluster describe`: the cluster as its clients see it, over the wire, so that it
//! works against one Arus node, an Arus cluster, or Apache Kafka: DescribeCluster (id,
//! brokers, racks, fenced, controller), DescribeQuorum (the `__cluster_metadata` quorum:
//! leader, epoch, high watermark, voters and observers with their lag) and ApiVersions (the
//! finalized features).

use anyhow::{Context, bail};
use arus_client::Client;
use arus_client::arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_client::arus_protocol::messages::describe_quorum_response::ReplicaState;
use arus_client::arus_protocol::messages::{
    ApiVersionsRequest, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse,
};
use arus_client::arus_protocol::{ApiKey, ErrorCode, Request, Response};
use clap::Subcommand;

use super::ConnectArgs;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the cluster id, the nodes and their roles, the active controller, the metadata
    /// quorum and the finalized features.
    Describe {
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Describe { connect } => {
            let mut client = connect.connect().await?;
            let text = describe(&mut client).await?;
            print!("{text}");
            Ok(())
        }
    }
}

/// One node as the describe output lists it.
struct NodeRow {
    id: i32,
    endpoint: String,
    rack: Option<String>,
    broker: bool,
    voter: bool,
    fenced: Option<bool>,
}

async fn describe_cluster(client: &mut Client) -> anyhow::Result<DescribeClusterResponse> {
    let request = DescribeClusterRequest {
        include_fenced_brokers: true,
        endpoint_type: 1,
        ..Default::default()
    };
    match client.send(Request::DescribeCluster(request)).await? {
        Response::DescribeCluster(r) if r.error_code == ErrorCode::None.code() => Ok(r),
        Response::DescribeCluster(r) => bail!(
            "DescribeCluster failed: {}{}",
            error_name(r.error_code),
            r.error_message
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        other => bail!(
            "unexpected answer to DescribeCluster: {:?}",
            other.api_key()
        ),
    }
}

/// The quorum, or why it could not be described (an old broker, no authorization …).
async fn describe_quorum(client: &mut Client) -> Result<DescribeQuorumResponse, String> {
    if client.broker_versions(ApiKey::DescribeQuorum).is_none() {
        return Err("the broker does not serve DescribeQuorum".into());
    }
    let request = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData { partition_index: 0 }],
        }],
    };
    match client.send(Request::DescribeQuorum(request)).await {
        Ok(Response::DescribeQuorum(r)) => Ok(r),
        Ok(other) => Err(format!("unexpected answer {:?}", other.api_key())),
        Err(e) => Err(e.to_string()),
    }
}

async fn finalized_features(client: &mut Client) -> anyhow::Result<(i64, Vec<(String, i16)>)> {
    let request = ApiVersionsRequest {
        client_software_name: "arus-cli".into(),
        client_software_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    match client.send(Request::ApiVersions(request)).await? {
        Response::ApiVersions(r) => Ok((
            r.finalized_features_epoch,
            r.finalized_features
                .iter()
                .map(|f| (f.name.clone(), f.max_version_level))
                .collect(),
        )),
        other => bail!("unexpected answer to ApiVersions: {:?}", other.api_key()),
    }
}

/// Everything `arus cluster describe` prints.
pub async fn describe(client: &mut Client) -> anyhow::Result<String> {
    let cluster = describe_cluster(client)
        .await
        .context("cannot describe the cluster")?;
    let quorum = describe_quorum(client).await;
    let (epoch, features) = finalized_features(client).await?;
    let partition = quorum.as_ref().ok().and_then(|q| {
        q.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == 0)
    });
    let voters: Vec<&ReplicaState> = partition
        .map(|p| p.current_voters.iter().collect())
        .unwrap_or_default();
    let observers: Vec<&ReplicaState> = partition
        .map(|p| p.observers.iter().collect())
        .unwrap_or_default();

    let mut nodes: Vec<NodeRow> = cluster
        .brokers
        .iter()
        .map(|b| NodeRow {
            id: b.broker_id,
            endpoint: format!("{}:{}", b.host, b.port),
            rack: b.rack.clone(),
            broker: true,
            voter: false,
            fenced: Some(b.is_fenced),
        })
        .collect();
    for v in &voters {
        match nodes.iter_mut().find(|n| n.id == v.replica_id) {
            Some(n) => n.voter = true,
            None => {
                // A dedicated controller: its address is in the quorum's node list (v2).
                let endpoint = quorum
                    .as_ref()
                    .ok()
                    .and_then(|q| q.nodes.iter().find(|n| n.node_id == v.replica_id))
                    .and_then(|n| n.listeners.first())
                    .map_or_else(|| "-".to_string(), |l| format!("{}:{}", l.host, l.port));
                nodes.push(NodeRow {
                    id: v.replica_id,
                    endpoint,
                    rack: None,
                    broker: false,
                    voter: true,
                    fenced: None,
                });
            }
        }
    }
    nodes.sort_by_key(|n| n.id);

    let mut out = String::new();
    out.push_str(&format!("Cluster id:        {}\n", cluster.cluster_id));
    out.push_str(&format!(
        "Active controller: {}\n",
        if cluster.controller_id < 0 {
            "none".to_string()
        } else {
            cluster.controller_id.to_string()
        }
    ));
    out.push_str("\nNodes:\n");
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|n| {
            let roles = match (n.broker, n.voter) {
                (true, true) => "broker,controller",
                (true, false) => "broker",
                (false, true) => "controller",
                (false, false) => "-",
            };
            [
                n.id.to_string(),
                n.endpoint.clone(),
                n.rack.clone().unwrap_or_else(|| "-".into()),
                roles.to_string(),
                n.fenced.map_or_else(|| "-".into(), |f| f.to_string()),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ID", "ENDPOINT", "RACK", "ROLES", "FENCED"],
        &rows,
    ));

    out.push_str("\nMetadata quorum (__cluster_metadata-0):\n");
    match (&quorum, partition) {
        (Err(why), _) => out.push_str(&format!("  not available: {why}\n")),
        (Ok(q), _) if q.error_code != ErrorCode::None.code() => out.push_str(&format!(
            "  not available: {}{}\n",
            error_name(q.error_code),
            q.error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        (Ok(_), None) => out.push_str("  not available: no answer for partition 0\n"),
        (Ok(_), Some(p)) if p.error_code != ErrorCode::None.code() => out.push_str(&format!(
            "  not available: {}{}\n",
            error_name(p.error_code),
            p.error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        (Ok(_), Some(p)) => {
            out.push_str(&format!(
                "  Leader: {}  Epoch: {}  High watermark: {}\n",
                p.leader_id, p.leader_epoch, p.high_watermark
            ));
            let replica_rows = |list: &[&ReplicaState], kind: &str| -> Vec<[String; 5]> {
                list.iter()
                    .map(|r| {
                        // kafka-metadata-quorum's lag: the high watermark minus the
                        // replica's log end offset.
                        let lag = if r.log_end_offset >= 0 && p.high_watermark >= 0 {
                            (p.high_watermark - r.log_end_offset).max(0).to_string()
                        } else {
                            "-".into()
                        };
                        let status = if r.replica_id == p.leader_id {
                            "Leader".to_string()
                        } else {
                            kind.to_string()
                        };
                        [
                            r.replica_id.to_string(),
                            r.replica_directory_id.to_string(),
                            r.log_end_offset.to_string(),
                            lag,
                            status,
                        ]
                    })
                    .collect()
            };
            let mut rows = replica_rows(&voters, "Follower");
            rows.extend(replica_rows(&observers, "Observer"));
            out.push_str(&indent(&table(
                &["NODE", "DIRECTORY ID", "LOG END OFFSET", "LAG", "STATUS"],
                &rows,
            )));
        }
    }

    out.push_str(&format!("\nFinalized features (epoch {epoch}):\n"));
    if features.is_empty() {
        out.push_str("  none\n");
    }
    for (name, level) in &features {
        out.push_str(&format!("  {name:<36} {level}\n"));
    }
    Ok(out)
}

fn error_name(code: i16) -> String {
    ErrorCode::from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Left-aligned columns, two spaces apart, each line indented by two.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
