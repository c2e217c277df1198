//! Kafka 4.4.0's `kafka-dump-log` (`org.apache.kafka.tools.DumpLogSegments`) on files Arus
//! wrote: the batches of the Kafka fixture (`tests/fixtures/kafka-4.4`) appended to an Arus
//! log, and a directory of the previous Arus release converted by opening it. The tool must
//! report no error and, for the same content, print exactly what it prints for Kafka's own
//! files. Needs Java and the reference classpath (`compat/work/reference-classpath.txt`,
//! made by `compat/reference/kafka-broker.sh`); without them the test prints why and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use arus_log::{Log, LogConfig, batch};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn classpath() -> Option<String> {
    let cp = std::fs::read_to_string(workspace().join("compat/work/reference-classpath.txt"))
        .ok()?
        .trim()
        .to_string();
    let java = Command::new("java").arg("-version").output().ok()?;
    (java.status.success() && !cp.is_empty()).then_some(cp)
}

/// DumpLogSegments' output for `files` (in `dir`) with `flags`, with `dir` replaced by
/// `DIR` so outputs of two directories compare.
fn dump(cp: &str, dir: &Path, files: &[&str], flags: &[&str]) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
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
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).replace(&dir.display().to_string(), "DIR");
    assert!(
        out.status.success(),
        "DumpLogSegments failed: {text}\n{err}"
    );
    let mut complaints = Vec::new();
    let mut lines = err.lines().filter(|l| !l.starts_with("SLF4J")).peekable();
    while let Some(l) = lines.next() {
        // The tool starts each file's offset check at -1, so it flags every segment not
        // based at 0 — Kafka's own as well.
        if let Some(base) = l
            .strip_prefix("Non-consecutive offsets in DIR/")
            .and_then(|f| f.strip_suffix(".log"))
            .and_then(|b| b.parse::<i64>().ok())
            && lines.peek() == Some(&format!("  -1 is followed by {base}").as_str())
        {
            lines.next();
            continue;
        }
        complaints.push(l.to_string());
    }
    assert!(
        complaints.is_empty(),
        "DumpLogSegments complained: {complaints:?}\n{text}"
    );
    text.replace(&dir.display().to_string(), "DIR")
}

fn assert_no_errors(out: &str) {
    let lower = out.to_lowercase();
    for bad in [
        "mismatch",
        "not found",
        "exception",
        "not sorted",
        "out of order",
        "corrupt",
        "isvalid: false",
    ] {
        assert!(!lower.contains(bad), "{bad:?} in:\n{out}");
    }
}

const SEGMENTS: [&str; 2] = ["00000000000000000000", "00000000000000000033"];

fn files(suffixes: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for s in SEGMENTS {
        for x in suffixes {
            v.push(format!("{s}.{x}"));
        }
    }
    v
}

#[test]
fn dump_log_reads_arus_files_as_it_reads_kafkas() {
    let Some(cp) = classpath() else {
        eprintln!(
            "skipped: no java or no compat/work/reference-classpath.txt (run compat/reference/kafka-broker.sh once)"
        );
        return;
    };
    let kafka = fixture("kafka-4.4/fx-0");
    let d = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 150,
        ..LogConfig::default()
    };
    let mut log = Log::open(d.path(), config, 0).unwrap();
    log.become_leader(0).unwrap();
    for s in SEGMENTS {
        let bytes = std::fs::read(kafka.join(format!("{s}.log"))).unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let h = batch::parse_header(&bytes[pos..]).unwrap();
            let mut b = bytes[pos..pos + h.size].to_vec();
            log.append(&mut b, Some(0), 0).unwrap();
            pos += h.size;
        }
    }
    log.close().unwrap();

    let all = files(&["log", "index", "timeindex"]);
    let mut all: Vec<&str> = all.iter().map(String::as_str).collect();
    all.push("00000000000000000033.txnindex");
    let indexes = files(&["index", "timeindex"]);
    let indexes: Vec<&str> = indexes.iter().map(String::as_str).collect();
    for (list, flags) in [
        (&all, &["--print-data-log"][..]),
        (&all, &["--deep-iteration"][..]),
        (&indexes, &["--verify-index-only"][..]),
        (&indexes, &["--index-sanity-check"][..]),
    ] {
        let ours = dump(&cp, d.path(), list, flags);
        let theirs = dump(&cp, &kafka, list, flags);
        assert_no_errors(&ours);
        assert_eq!(ours, theirs, "flags {flags:?}");
    }
    let sanity = dump(&cp, d.path(), &indexes, &["--index-sanity-check"]);
    assert_eq!(sanity.matches("passed sanity check").count(), 4);
}

#[test]
fn dump_log_reads_a_converted_previous_release_directory() {
    let Some(cp) = classpath() else {
        eprintln!(
            "skipped: no java or no compat/work/reference-classpath.txt (run compat/reference/kafka-broker.sh once)"
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture("arus-e4e557b/p-0")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    let config = LogConfig {
        segment_bytes: 1200,
        index_interval_bytes: 150,
        ..LogConfig::default()
    };
    Log::open(d.path(), config, 0).unwrap().close().unwrap();
    let segs = ["00000000000000000000", "00000000000000000035"];
    let mut all = Vec::new();
    for s in segs {
        for x in ["log", "index", "timeindex", "txnindex"] {
            all.push(format!("{s}.{x}"));
        }
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = dump(&cp, d.path(), &all, &["--print-data-log"]);
    assert_no_errors(&out);
    assert_eq!(out.matches("endTxnMarker: ABORT").count(), 2);
    assert_eq!(out.matches("version: 0 producerId: 9").count(), 2, "{out}");
    let idx: Vec<String> = segs
        .iter()
        .flat_map(|s| [format!("{s}.index"), format!("{s}.timeindex")])
        .collect();
    let idx: Vec<&str> = idx.iter().map(String::as_str).collect();
    assert_no_errors(&dump(&cp, d.path(), &idx, &["--verify-index-only"]));
    let sanity = dump(&cp, d.path(), &idx, &["--index-sanity-check"]);
    assert_eq!(sanity.matches("passed sanity check").count(), 4);
}
