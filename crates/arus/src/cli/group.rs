//! `arus group list|describe|reset-offsets|delete`: consumer-group administration, with
//! the output and rules of Kafka's kafka-consumer-groups.sh where they make sense
//! (reset-offsets is a dry run unless `--execute`, and refuses while the group has members).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{anyhow, bail};
use arus_client::arus_protocol::ErrorCode;
use arus_client::arus_protocol::messages::describe_groups_response::DescribedGroup;
use arus_client::{
    ClientError, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, OffsetToCommit, decode_consumer_assignment,
};
use clap::{ArgGroup, Args, Subcommand};

use super::{BrokerContext, ConnectArgs, topic_error};

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups.
    List(ListArgs),
    /// Show a group's state, members and assignments, and per partition the committed
    /// offset, log end offset and lag.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (dry run unless --execute; the group must have no
    /// active members).
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets (the group must have no active members).
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only groups in this state (Empty, Stable, PreparingRebalance, CompletingRebalance,
    /// Dead; repeatable).
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// Also print each group's state and protocol type.
    #[arg(long, short = 'l')]
    pub long: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Group id.
    pub group: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// Topic whose offsets to reset.
    #[arg(long)]
    pub topic: String,
    /// Only this partition (repeatable; default: every partition of the topic).
    #[arg(long = "partition", value_name = "P")]
    pub partitions: Vec<i32>,
    /// Reset to the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to this offset (clamped to the partition's log start..end).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// Reset to the first offset at or after this time: RFC 3339
    /// (2026-11-22T10:00:00Z, 2026-11-22T10:00:00.5+01:00; no zone means UTC) or ms
    /// since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to log start..end.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only print the plan).
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Group id.
    pub group: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(cmd: GroupCommand) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let result = run_to(cmd, &mut out).await;
    std::io::stdout().write_all(&out)?;
    result
}

/// Runs a group command, writing what it prints to `out`.
pub async fn run_to(cmd: GroupCommand, out: &mut Vec<u8>) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List(a) => list(a, out).await,
        GroupCommand::Describe(a) => describe(a, out).await,
        GroupCommand::ResetOffsets(a) => reset_offsets(a, out).await,
        GroupCommand::Delete(a) => delete(a, out).await,
    }
}

// ------------------------------------------------------------------- list

async fn list(a: ListArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let states: Vec<&str> = a.states.iter().map(String::as_str).collect();
    let groups = client
        .list_groups(&states)
        .await
        .broker_context(|| "listing groups".to_owned())?;
    if !a.long {
        for g in &groups {
            writeln!(out, "{}", g.group_id)?;
        }
        return Ok(());
    }
    let mut rows = vec![row(["GROUP", "STATE", "PROTOCOL-TYPE"])];
    for g in &groups {
        rows.push(row([
            g.group_id.as_str(),
            or_dash(&g.group_state),
            or_dash(&g.protocol_type),
        ]));
    }
    write_table(out, &rows)?;
    Ok(())
}

// ------------------------------------------------------------------- describe

/// One member's assignment, decoded (consumer groups) or described as opaque bytes.
fn member_assignment(
    group: &DescribedGroup,
    bytes: &arus_client::arus_protocol::Bytes,
) -> Result<Vec<(String, Vec<i32>)>, String> {
    if group.protocol_type != "consumer" {
        return Err(format!(
            "{} bytes ({} protocol)",
            bytes.len(),
            or_dash(&group.protocol_type)
        ));
    }
    match decode_consumer_assignment(bytes) {
        Ok(a) => Ok(a
            .assigned_partitions
            .into_iter()
            .map(|tp| {
                let mut parts = tp.partitions;
                parts.sort_unstable();
                (tp.topic, parts)
            })
            .collect()),
        Err(e) => Err(format!("undecodable ({e})")),
    }
}

fn format_assignment(a: &Result<Vec<(String, Vec<i32>)>, String>) -> String {
    match a {
        Ok(tps) if tps.is_empty() => "-".to_owned(),
        Ok(tps) => {
            let mut tps = tps.clone();
            tps.sort();
            tps.iter()
                .map(|(t, ps)| {
                    let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                    format!("{t}:{}", ps.join(","))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        Err(e) => e.clone(),
    }
}

/// DescribeGroups of one group. A group that does not exist is described `Dead` (up to
/// DescribeGroups v5) or refused GROUP_ID_NOT_FOUND (v6, KIP-1043): both come back `Dead`.
async fn describe_group(
    client: &mut arus_client::Client,
    group: &str,
) -> anyhow::Result<DescribedGroup> {
    match client.describe_group(group).await {
        Err(e) if e.code() == Some(ErrorCode::GroupIdNotFound) => Ok(DescribedGroup {
            group_id: group.to_string(),
            group_state: "Dead".into(),
            ..Default::default()
        }),
        r => r.broker_context(|| format!("describing group '{group}'")),
    }
}

async fn describe(a: DescribeArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let g = describe_group(&mut client, &a.group).await?;
    let committed = client
        .offset_fetch(&a.group, None)
        .await
        .broker_context(|| format!("fetching the committed offsets of group '{}'", a.group))?;
    if g.group_state == "Dead" && committed.is_empty() {
        bail!("group '{}' does not exist", a.group);
    }
    writeln!(
        out,
        "Group '{}': state {}, protocol type {}, assignor {}, {} member{}",
        g.group_id,
        or_dash(&g.group_state),
        or_dash(&g.protocol_type),
        or_dash(&g.protocol_data),
        g.members.len(),
        if g.members.len() == 1 { "" } else { "s" },
    )?;

    // partition -> owning member id
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    if !g.members.is_empty() {
        writeln!(out)?;
        let mut rows = vec![row([
            "MEMBER",
            "INSTANCE",
            "CLIENT-ID",
            "HOST",
            "ASSIGNMENT",
        ])];
        let mut members: Vec<_> = g.members.iter().collect();
        members.sort_by(|x, y| x.member_id.cmp(&y.member_id));
        for m in members {
            let asg = member_assignment(&g, &m.member_assignment);
            if let Ok(tps) = &asg {
                for (t, ps) in tps {
                    for p in ps {
                        owner.insert((t.clone(), *p), m.member_id.clone());
                    }
                }
            }
            rows.push(vec![
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".into()),
                or_dash(&m.client_id).to_owned(),
                or_dash(&m.client_host).to_owned(),
                format_assignment(&asg),
            ]);
        }
        write_table(out, &rows)?;
    }

    // Every partition that has a committed offset or an owner.
    let mut partitions: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
    for c in &committed {
        partitions.insert(
            (c.topic.clone(), c.partition),
            (c.offset >= 0).then_some(c.offset),
        );
    }
    for tp in owner.keys() {
        partitions.entry(tp.clone()).or_insert(None);
    }
    if partitions.is_empty() {
        writeln!(out, "\nNo committed offsets and no assigned partitions.")?;
        return Ok(());
    }
    writeln!(out)?;
    let mut rows = vec![row([
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER",
    ])];
    for ((topic, partition), current) in &partitions {
        let end = client
            .list_offset(topic, *partition, LATEST_TIMESTAMP)
            .await;
        let (end_s, lag_s) = match (&end, current) {
            (Ok((end, _)), Some(c)) => (end.to_string(), lag(*c, *end).to_string()),
            (Ok((end, _)), None) => (end.to_string(), "-".to_owned()),
            (Err(e), _) => (format!("? ({e})"), "-".to_owned()),
        };
        rows.push(vec![
            topic.clone(),
            partition.to_string(),
            current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            end_s,
            lag_s,
            owner
                .get(&(topic.clone(), *partition))
                .cloned()
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    write_table(out, &rows)?;
    Ok(())
}

/// Lag of a committed offset behind the log end (never negative: a committed offset past
/// the end, e.g. after the log was truncated, has no lag).
pub fn lag(committed: i64, log_end: i64) -> i64 {
    (log_end - committed).max(0)
}

// ------------------------------------------------------------------- reset-offsets

/// Where `reset-offsets` moves a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    /// The offset a ListOffsets lookup for the time answered (-1: no record at or after it).
    Datetime,
    ShiftBy(i64),
}

/// What is known about one partition when planning a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub partition: i32,
    /// The group's committed offset, if any.
    pub current: Option<i64>,
    pub log_start: i64,
    pub log_end: i64,
    /// For `--to-datetime`: the ListOffsets answer for the time (-1 if none).
    pub offset_for_time: Option<i64>,
}

/// The new offset for one partition, as Kafka's tool computes it: clamped to
/// `log_start..=log_end`; a time after the last record resets to the log end.
pub fn plan_reset(spec: ResetSpec, s: &PartitionState) -> Result<i64, String> {
    let clamp = |o: i64| o.clamp(s.log_start, s.log_end.max(s.log_start));
    Ok(match spec {
        ResetSpec::Earliest => s.log_start,
        ResetSpec::Latest => s.log_end,
        ResetSpec::Offset(o) => clamp(o),
        ResetSpec::Datetime => match s.offset_for_time {
            Some(o) if o >= 0 => clamp(o),
            _ => s.log_end,
        },
        ResetSpec::ShiftBy(n) => {
            let current = s.current.ok_or_else(|| {
                format!(
                    "partition {} has no committed offset to shift from",
                    s.partition
                )
            })?;
            clamp(current.saturating_add(n))
        }
    })
}

/// Group states in which offsets may be reset (Kafka's rule: the group must be inactive).
fn resettable(state: &str) -> bool {
    matches!(state, "Empty" | "Dead")
}

async fn reset_offsets(a: ResetArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let spec = if a.to_earliest {
        ResetSpec::Earliest
    } else if a.to_latest {
        ResetSpec::Latest
    } else if let Some(o) = a.to_offset {
        ResetSpec::Offset(o)
    } else if a.to_datetime.is_some() {
        ResetSpec::Datetime
    } else if let Some(n) = a.shift_by {
        ResetSpec::ShiftBy(n)
    } else {
        bail!(
            "one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by is required"
        );
    };
    let mut client = a.connect.connect().await?;
    let g = describe_group(&mut client, &a.group).await?;
    if !resettable(&g.group_state) {
        bail!(
            "offsets of group '{}' can only be reset while it is inactive, but its state is {} \
             with {} member(s); stop its consumers first",
            a.group,
            g.group_state,
            g.members.len()
        );
    }
    let count = client
        .partition_count(&a.topic)
        .await
        .map_err(|e| topic_error(&a.topic, "reading metadata of topic", e))?;
    let partitions: BTreeSet<i32> = if a.partitions.is_empty() {
        (0..count).collect()
    } else {
        a.partitions.iter().copied().collect()
    };
    if let Some(p) = partitions.iter().find(|p| **p < 0 || **p >= count) {
        bail!(
            "topic '{}' has no partition {p} ({count} partitions)",
            a.topic
        );
    }
    let committed: BTreeMap<i32, i64> = client
        .offset_fetch(
            &a.group,
            Some(&[(a.topic.clone(), partitions.iter().copied().collect())]),
        )
        .await
        .broker_context(|| format!("fetching the committed offsets of group '{}'", a.group))?
        .into_iter()
        .filter(|c| c.topic == a.topic && c.offset >= 0)
        .map(|c| (c.partition, c.offset))
        .collect();

    let mut plan = Vec::new();
    for &p in &partitions {
        let start = client.list_offset(&a.topic, p, EARLIEST_TIMESTAMP).await;
        let end = client.list_offset(&a.topic, p, LATEST_TIMESTAMP).await;
        let (log_start, log_end) = match (start, end) {
            (Ok((s, _)), Ok((e, _))) => (s, e),
            (Err(e), _) | (_, Err(e)) => {
                return Err(
                    anyhow::Error::new(e).context(format!("listing offsets of {}-{p}", a.topic))
                );
            }
        };
        let offset_for_time = match a.to_datetime {
            Some(ts) => Some(
                client
                    .list_offset(&a.topic, p, ts)
                    .await
                    .broker_context(|| {
                        format!("looking up the offset for time {ts} in {}-{p}", a.topic)
                    })?
                    .0,
            ),
            None => None,
        };
        let state = PartitionState {
            partition: p,
            current: committed.get(&p).copied(),
            log_start,
            log_end,
            offset_for_time,
        };
        let new = plan_reset(spec, &state).map_err(|e| anyhow!("{}: {e}", a.topic))?;
        plan.push((state, new));
    }

    let mut rows = vec![row([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ])];
    for (s, new) in &plan {
        rows.push(vec![
            a.group.clone(),
            a.topic.clone(),
            s.partition.to_string(),
            s.current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            new.to_string(),
        ]);
    }
    if !a.execute {
        writeln!(
            out,
            "Dry run: nothing is committed; add --execute to commit these offsets.\n"
        )?;
        write_table(out, &rows)?;
        return Ok(());
    }
    let offsets: Vec<OffsetToCommit> = plan
        .iter()
        .map(|(s, new)| OffsetToCommit {
            topic: a.topic.clone(),
            partition: s.partition,
            offset: *new,
        })
        .collect();
    client.offset_commit(&a.group, &offsets).await.map_err(|e| {
        match e.code() {
            Some(ErrorCode::UnknownMemberId) | Some(ErrorCode::IllegalGeneration) | Some(ErrorCode::RebalanceInProgress) => anyhow!(
                "group '{}' became active while resetting ({e}); nothing was committed for the failing partitions",
                a.group
            ),
            _ => anyhow::Error::new(e).context(format!("committing offsets for group '{}'", a.group)),
        }
    })?;
    write_table(out, &rows)?;
    Ok(())
}

/// Parses `--to-datetime`: milliseconds since the epoch, or RFC 3339
/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (no zone: UTC).
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|e| format!("'{s}': {e}"));
    }
    let bad =
        || format!("'{s}' is neither ms since the epoch nor a time like 2026-11-22T10:00:00Z");
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let ms_digits: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms_digits.parse::<i64>().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let z = &rest[1..];
            let (h, m) = match z.len() {
                5 if z.as_bytes()[2] == b':' => (&z[0..2], &z[3..5]),
                4 => (&z[0..2], &z[2..4]),
                2 => (z, "00"),
                _ => return Err(bad()),
            };
            let (h, m) = (
                h.parse::<i64>().map_err(|_| bad())?,
                m.parse::<i64>().map_err(|_| bad())?,
            );
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Ok(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ------------------------------------------------------------------- delete

async fn delete(a: DeleteArgs, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut client = a.connect.connect().await?;
    let results = client
        .delete_groups(&[a.group.as_str()])
        .await
        .broker_context(|| format!("deleting group '{}'", a.group))?;
    for (group, result) in results {
        match result {
            Ok(()) => writeln!(out, "Deleted group '{group}'")?,
            Err(e) => return Err(delete_error(&group, e)),
        }
    }
    Ok(())
}

fn delete_error(group: &str, e: ClientError) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::GroupIdNotFound) => anyhow!("group '{group}' does not exist"),
        Some(ErrorCode::NonEmptyGroup) => {
            anyhow!("group '{group}' still has active members; stop its consumers first")
        }
        _ => anyhow::Error::new(e).context(format!("deleting group '{group}'")),
    }
}

// ------------------------------------------------------------------- output

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Left-aligned columns separated by two spaces (the last column is not padded).
fn write_table(out: &mut Vec<u8>, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(current: Option<i64>, start: i64, end: i64, for_time: Option<i64>) -> PartitionState {
        PartitionState {
            partition: 0,
            current,
            log_start: start,
            log_end: end,
            offset_for_time: for_time,
        }
    }

    #[test]
    fn plans() {
        let s = st(Some(5), 2, 10, None);
        assert_eq!(plan_reset(ResetSpec::Earliest, &s), Ok(2));
        assert_eq!(plan_reset(ResetSpec::Latest, &s), Ok(10));
        assert_eq!(plan_reset(ResetSpec::Offset(7), &s), Ok(7));
        assert_eq!(
            plan_reset(ResetSpec::Offset(0), &s),
            Ok(2),
            "clamped to log start"
        );
        assert_eq!(
            plan_reset(ResetSpec::Offset(99), &s),
            Ok(10),
            "clamped to log end"
        );
        assert_eq!(plan_reset(ResetSpec::ShiftBy(-2), &s), Ok(3));
        assert_eq!(plan_reset(ResetSpec::ShiftBy(-20), &s), Ok(2));
        assert_eq!(plan_reset(ResetSpec::ShiftBy(3), &s), Ok(8));
        assert_eq!(plan_reset(ResetSpec::ShiftBy(30), &s), Ok(10));
        assert_eq!(plan_reset(ResetSpec::ShiftBy(i64::MAX), &s), Ok(10));
        assert!(plan_reset(ResetSpec::ShiftBy(1), &st(None, 0, 10, None)).is_err());
        assert_eq!(
            plan_reset(ResetSpec::Datetime, &st(None, 0, 10, Some(4))),
            Ok(4)
        );
        assert_eq!(
            plan_reset(ResetSpec::Datetime, &st(None, 0, 10, Some(-1))),
            Ok(10),
            "after the last record: log end"
        );
        assert_eq!(
            plan_reset(ResetSpec::Datetime, &st(None, 3, 10, Some(1))),
            Ok(3)
        );
        // An empty partition: everything lands on its (equal) start and end.
        let e = st(Some(0), 4, 4, Some(-1));
        for spec in [
            ResetSpec::Earliest,
            ResetSpec::Latest,
            ResetSpec::Offset(9),
            ResetSpec::Datetime,
            ResetSpec::ShiftBy(-1),
        ] {
            assert_eq!(plan_reset(spec, &e), Ok(4), "{spec:?}");
        }
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag(4, 10), 6);
        assert_eq!(lag(10, 10), 0);
        assert_eq!(lag(12, 10), 0);
    }

    #[test]
    fn resettable_states() {
        assert!(resettable("Empty"));
        assert!(resettable("Dead"));
        for s in [
            "Stable",
            "PreparingRebalance",
            "CompletingRebalance",
            "Assigning",
            "Reconciling",
        ] {
            assert!(!resettable(s), "{s}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("0"), Ok(0));
        assert_eq!(parse_datetime("1795341600000"), Ok(1_795_341_600_000));
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime("2026-11-22T10:00:00Z"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime("2026-11-22T10:00:00"),
            Ok(1_795_341_600_000),
            "no zone: UTC"
        );
        assert_eq!(
            parse_datetime("2026-11-22T11:00:00+01:00"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime("2026-11-22T09:30:00-0030"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime("2026-11-22T10:00:00.5Z"),
            Ok(1_795_341_600_500)
        );
        assert_eq!(
            parse_datetime("2026-11-22T10:00:00.123456Z"),
            Ok(1_795_341_600_123)
        );
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Ok(-1000));
        for bad in [
            "",
            "yesterday",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:00+25:00",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00Q",
            "-5",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        write_table(&mut out, &[row(["A", "BB", "C"]), row(["xxx", "y", ""])]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB  C\nxxx  y\n");
    }

    #[test]
    fn assignments_format() {
        let a: Result<Vec<(String, Vec<i32>)>, String> =
            Ok(vec![("b".into(), vec![2]), ("a".into(), vec![0, 1])]);
        assert_eq!(format_assignment(&a), "a:0,1 b:2");
        assert_eq!(format_assignment(&Ok(vec![])), "-");
        assert_eq!(format_assignment(&Err("x".into())), "x");
    }
}
