//! Kafka 4.4.0's `kafka-dump-log` (`org.apache.kafka.tools.DumpLogSegments`) on the data
//! directory of a real Arus broker, written by Kafka's own clients
//! (`kafka_dump_log/Produce.java`: the workload of the Kafka fixture in
//! `crates/arus-log/tests/fixtures/kafka-4.4`). The tool must read every segment, index,
//! time index and transaction index without an error, show what it shows for Kafka's files
//! of the same workload (producer ids, epochs, CRCs and marker timestamps aside), and decode
//! `__transaction_state` and `__consumer_offsets`. Needs Java and the reference classpath
//! (`compat/work/reference-classpath.txt`, made by `compat/reference/kafka-broker.sh`);
//! without them the test prints why and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::BrokerProcess;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn classpath() -> Option<String> {
    let cp = std::fs::read_to_string(workspace().join("compat/work/reference-classpath.txt"))
        .ok()?
        .trim()
        .to_string();
    let java = Command::new("java").arg("-version").output().ok()?;
    (java.status.success() && !cp.is_empty()).then_some(cp)
}

/// The partition directories named `name` under `root` (whatever the log-dir layout).
fn find_dirs(root: &Path, pred: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            let name = e.file_name().to_string_lossy().to_string();
            if pred(&name) {
                out.push(e.path());
            } else {
                find_dirs(&e.path(), pred, out);
            }
        }
    }
}

fn segment_files(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| suffixes.contains(&x.to_str().unwrap()))
        })
        .collect();
    v.sort();
    v
}

/// stdout of DumpLogSegments, `dir` replaced by `DIR`; stderr must hold nothing but the
/// tool's own per-file offset-continuity note (it starts each file at -1, so it flags
/// every segment not based at 0, Kafka's too).
fn dump(cp: &str, dir: &Path, files: &[PathBuf], flags: &[&str]) -> String {
    let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let out = Command::new("java")
        .args([
            "-cp",
            cp,
            "org.apache.kafka.tools.DumpLogSegments",
            "--files",
        ])
        .arg(list.join(","))
        .args(flags)
        .output()
        .expect("run java");
    let text = String::from_utf8_lossy(&out.stdout).replace(&dir.display().to_string(), "DIR");
    let err = String::from_utf8_lossy(&out.stderr).replace(&dir.display().to_string(), "DIR");
    assert!(
        out.status.success(),
        "DumpLogSegments failed: {text}\n{err}"
    );
    let mut lines = err.lines().filter(|l| !l.starts_with("SLF4J")).peekable();
    while let Some(l) = lines.next() {
        let base = l
            .strip_prefix("Non-consecutive offsets in DIR/")
            .and_then(|f| f.strip_suffix(".log"))
            .and_then(|b| b.parse::<i64>().ok());
        match base {
            Some(b) if lines.peek() == Some(&format!("  -1 is followed by {b}").as_str()) => {
                lines.next();
            }
            _ => panic!("DumpLogSegments complained: {l}\n{err}\n{text}"),
        }
    }
    let lower = text.to_lowercase();
    for bad in [
        "mismatch",
        "not found",
        "exception",
        "not sorted",
        "corrupt",
        "isvalid: false",
        "unknown",
    ] {
        assert!(!lower.contains(bad), "{bad:?} in:\n{text}");
    }
    text
}

/// Blanks what differs between two runs of the same workload on two brokers: ids, epochs
/// and sequences the brokers' coordinators assigned, and CRCs covering them.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words: Vec<String> = Vec::new();
        let mut blank_next = false;
        for w in line.split(' ') {
            if blank_next && !w.is_empty() {
                words.push("_".into());
                blank_next = false;
                continue;
            }
            // Sequences too: Kafka 4.4 bumps the producer epoch at every transaction end
            // (transaction.version 2), so its sequences restart where Arus's go on.
            blank_next = matches!(
                w,
                "producerId:"
                    | "producerEpoch:"
                    | "crc:"
                    | "coordinatorEpoch:"
                    | "baseSequence:"
                    | "lastSequence:"
                    | "sequence:"
            );
            words.push(w.to_string());
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// Marker timestamps are the brokers' clocks: blank every timestamp after 2023.
fn blank_recent_timestamps(text: &str) -> String {
    text.split(' ')
        .map(|w| match w.parse::<i64>() {
            Ok(n) if n > 1_700_000_100_000 => "T".to_string(),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn dump_log_reads_an_arus_data_directory() {
    let Some(cp) = classpath() else {
        eprintln!(
            "skipped: no java or no compat/work/reference-classpath.txt (run compat/reference/kafka-broker.sh once)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let produce = Command::new("java")
        .args(["-cp", &cp])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_dump_log/Produce.java"))
        .arg(&broker.addr)
        .output()
        .expect("run java");
    assert!(
        produce.status.success(),
        "Produce.java failed: {}\n{}",
        String::from_utf8_lossy(&produce.stdout),
        String::from_utf8_lossy(&produce.stderr)
    );
    broker.stop();

    let mut dirs = Vec::new();
    find_dirs(&data, &|n| n == "fx-0", &mut dirs);
    let fx = dirs.pop().expect("fx-0");
    let kafka = workspace().join("crates/arus-log/tests/fixtures/kafka-4.4/fx-0");
    let all = ["log", "index", "timeindex", "txnindex"];
    let ours_files = segment_files(&fx, &all);
    let kafka_files = segment_files(&kafka, &all);
    let names = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect()
    };
    assert_eq!(names(&ours_files), names(&kafka_files), "same segments");
    for flags in [
        &["--print-data-log"][..],
        &["--deep-iteration"][..],
        &["--verify-index-only"][..],
    ] {
        let ours = blank_recent_timestamps(&normalise(&dump(&cp, &fx, &ours_files, flags)));
        let theirs = blank_recent_timestamps(&normalise(&dump(&cp, &kafka, &kafka_files, flags)));
        for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
            assert_eq!(a, b, "flags {flags:?}, line {i}");
        }
        assert_eq!(
            ours.lines().count(),
            theirs.lines().count(),
            "flags {flags:?}"
        );
    }
    let indexes = segment_files(&fx, &["index", "timeindex"]);
    let sanity = dump(&cp, &fx, &indexes, &["--index-sanity-check"]);
    assert_eq!(sanity.matches("passed sanity check").count(), indexes.len());
    assert_eq!(
        std::fs::read_to_string(fx.join("leader-epoch-checkpoint")).unwrap(),
        "0\n1\n0 0\n"
    );
    let meta = std::fs::read_to_string(fx.join("partition.metadata")).unwrap();
    assert!(meta.starts_with("version: 0\ntopic_id: "), "{meta}");

    // The coordinators' logs, through Kafka's decoders.
    for (prefix, flag, expect) in [
        (
            "__transaction_state-",
            "--transaction-log-decoder",
            "fx-txn",
        ),
        ("__consumer_offsets-", "--offsets-decoder", "fx-group"),
    ] {
        let mut dirs = Vec::new();
        find_dirs(&data, &|n| n.starts_with(prefix), &mut dirs);
        let logs: Vec<PathBuf> = dirs
            .iter()
            .flat_map(|d| segment_files(d, &["log"]))
            .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
            .collect();
        assert!(!logs.is_empty(), "no {prefix} data");
        let text = dump(&cp, &data, &logs, &[flag]);
        assert!(text.contains(expect), "{flag}:\n{text}");
    }
}
