//! Differential test of the leader epoch cache and the `leader-epoch-checkpoint` bytes
//! against Apache Kafka 4.4's own `LeaderEpochFileCache` and `LeaderEpochCheckpointFile`:
//! `kafka-epoch-cache/EpochCacheOps.java` runs random operation sequences (assign, both
//! truncations, endOffsetFor, latest/previous epoch, epochForOffset, loading a written
//! checkpoint, reading valid and corrupted checkpoint files) and this test runs the same on `arus-replication`, comparing every answer,
//! the entries and the checkpoint file byte for byte.
//!
//! Needs `java` (11+) and Kafka's classpath: the file named by `ARUS_KAFKA_CLASSPATH_FILE`,
//! or `compat/work/reference-classpath.txt` (made by `compat/reference/kafka-broker.sh`, or
//! `cd compat/reference && mvn -q dependency:build-classpath
//! -Dmdep.outputFile=../work/reference-classpath.txt`). Without them the test says so and
//! passes without checking, unless `ARUS_KAFKA_SERDE_REQUIRED` is set: then it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arus_replication::{EpochEntry, LeaderEpochCache, decode_checkpoint, encode_checkpoint};

fn kafka_classpath() -> Result<String, String> {
    let file = std::env::var_os("ARUS_KAFKA_CLASSPATH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/work/reference-classpath.txt")
        });
    let classpath = std::fs::read_to_string(&file)
        .map_err(|e| format!("no Kafka classpath at {} ({e})", file.display()))?;
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Err("`java` is not installed".into());
    }
    Ok(classpath.trim().to_string())
}

fn run_kafka(classpath: &str, input: String) -> String {
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka-epoch-cache/EpochCacheOps.java");
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start java");
    let mut stdin = child.stdin.take().expect("java stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("run java");
    writer.join().unwrap().expect("write to java");
    assert!(
        output.status.success(),
        "EpochCacheOps.java failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("java output is UTF-8")
}

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }

    /// Mostly small values that collide, sometimes -1.
    fn value(&mut self, n: u64) -> i64 {
        if self.below(25) == 0 {
            -1
        } else {
            self.below(n)
        }
    }
}

fn operations(seed: u64, sequences: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut ops = Vec::new();
    for _ in 0..sequences {
        ops.push("reset".to_string());
        for _ in 0..rng.below(40) + 5 {
            let op = match rng.below(12) {
                0..=3 => format!("assign {} {}", rng.value(10), rng.value(40)),
                4 => format!("tend {}", rng.value(45)),
                5 => format!("tstart {}", rng.value(45)),
                6 | 7 => {
                    let epoch = if rng.below(6) == 0 { -1 } else { rng.below(12) };
                    format!("end {epoch} {}", 40 + rng.below(10))
                }
                8 => "latest".into(),
                9 => "previous".into(),
                10 => format!("epochfor {}", rng.value(45)),
                _ => {
                    let n = rng.below(5);
                    let entries: Vec<String> = (0..n)
                        .map(|_| format!("{}:{}", rng.value(10), rng.value(40)))
                        .collect();
                    format!("load {}", entries.join(" ")).trim_end().to_string()
                }
            };
            ops.push(op);
        }
        ops.push("entries".into());
        ops.push("file".into());
    }
    ops
}

fn entries_line(entries: &[EpochEntry]) -> String {
    let mut line = "entries".to_string();
    for e in entries {
        line.push_str(&format!(" {}:{}", e.epoch, e.start_offset));
    }
    line
}

fn opt(v: Option<i32>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}

/// The same operations on `arus-replication`, answered in `EpochCacheOps.java`'s format.
fn ours(op: &str, cache: &mut LeaderEpochCache) -> String {
    let f: Vec<&str> = op.split(' ').collect();
    let int = |i: usize| f[i].parse::<i64>().unwrap();
    match f[0] {
        "reset" => {
            *cache = LeaderEpochCache::new();
            "ok".into()
        }
        "assign" => match cache.assign(int(1) as i32, int(2)) {
            Ok(_) => "ok".into(),
            Err(_) => "invalid".into(),
        },
        "tend" => {
            cache.truncate_from_end(int(1));
            "ok".into()
        }
        "tstart" => {
            cache.truncate_from_start(int(1));
            "ok".into()
        }
        "end" => {
            let (epoch, offset) = cache.end_offset_for(int(1) as i32, int(2));
            format!("{epoch} {offset}")
        }
        "latest" => opt(cache.latest_epoch()),
        "previous" => opt(cache.previous_epoch()),
        "epochfor" => opt(cache.epoch_for_offset(int(1))),
        "entries" => entries_line(&cache.entries()),
        "file" => {
            let bytes = encode_checkpoint(&cache.entries());
            assert_eq!(decode_checkpoint(&bytes).unwrap(), cache.entries());
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        "load" => {
            let entries: Vec<EpochEntry> = f[1..]
                .iter()
                .map(|eo| {
                    let (e, o) = eo.split_once(':').unwrap();
                    EpochEntry::new(e.parse().unwrap(), o.parse().unwrap())
                })
                .collect();
            // Through the file bytes, as Kafka does.
            let read = decode_checkpoint(&encode_checkpoint(&entries)).unwrap();
            match LeaderEpochCache::from_entries(&read) {
                Ok(loaded) => {
                    *cache = loaded;
                    entries_line(&cache.entries())
                }
                Err(_) => {
                    *cache = LeaderEpochCache::new();
                    "invalid".into()
                }
            }
        }
        "parse" => {
            let hex = f.get(1).copied().unwrap_or("");
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            match decode_checkpoint(&bytes) {
                Ok(entries) => entries_line(&entries),
                Err(_) => "error".into(),
            }
        }
        other => panic!("unknown operation {other}"),
    }
}

/// Checkpoint files, valid and corrupted: a valid encoding with one character replaced,
/// inserted or removed, drawn from the characters that matter to the parser.
fn checkpoint_files(seed: u64, count: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"0123456789  -+\n\n\r\tx\x0b";
    let mut rng = Rng(seed);
    let mut files: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"0".to_vec(),
        b"0\n".to_vec(),
        b"0\n0".to_vec(),
        b"0\r1\r3 4".to_vec(),
        b"0\n1\n3 4\r\n".to_vec(),
        b"0\n1\n 3 4\n".to_vec(),
        b"0\n1\n3 4 \n".to_vec(),
        b"0\n2\n3 4\n".to_vec(),
        b"0\n-1\n".to_vec(),
        b"1\n0\n".to_vec(),
        b"0\n1\n+3 -4\n".to_vec(),
        b"0\n1\n99999999999 4\n".to_vec(),
        b"0\n\n".to_vec(),
    ];
    for _ in 0..count {
        let n = rng.below(4) as usize;
        let entries: Vec<EpochEntry> = (0..n)
            .map(|_| EpochEntry::new(rng.below(20) as i32, rng.below(500)))
            .collect();
        let mut bytes = encode_checkpoint(&entries);
        let at = rng.below(bytes.len() as u64 + 1) as usize;
        let c = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
        match rng.below(3) {
            0 if at < bytes.len() => bytes[at] = c,
            1 => bytes.insert(at, c),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
        files.push(bytes);
    }
    files
        .iter()
        .map(|b| {
            let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
            format!("parse {hex}").trim_end().to_string()
        })
        .collect()
}

#[test]
fn epoch_cache_matches_kafka() {
    let classpath = match kafka_classpath() {
        Ok(cp) => cp,
        Err(why) if std::env::var_os("ARUS_KAFKA_SERDE_REQUIRED").is_some() => {
            panic!("Kafka epoch cache comparison required but cannot run: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: Kafka epoch cache comparison not run: {why}");
            return;
        }
    };
    let mut ops = operations(0x5eed_cafe_f00d_0001, 400);
    ops.extend(checkpoint_files(0x5eed_cafe_f00d_0002, 3000));
    let kafka = run_kafka(&classpath, ops.join("\n") + "\n");
    let kafka: Vec<&str> = kafka.lines().collect();
    assert_eq!(kafka.len(), ops.len(), "one answer per operation");
    let mut cache = LeaderEpochCache::new();
    let mut compared = 0;
    for (i, (op, theirs)) in ops.iter().zip(&kafka).enumerate() {
        let mine = ours(op, &mut cache);
        assert_eq!(
            mine,
            *theirs,
            "operation {i} `{op}` differs; the sequence so far:\n{}",
            ops[..=i]
                .iter()
                .rev()
                .take_while(|o| *o != "reset" && !o.starts_with("parse"))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        compared += 1;
    }
    let parsed: Vec<&&str> = ops
        .iter()
        .zip(&kafka)
        .filter(|(op, _)| op.starts_with("parse"))
        .map(|(_, answer)| answer)
        .collect();
    let refused = parsed.iter().filter(|a| ***a == "error").count();
    assert!(
        refused > 100 && parsed.len() - refused > 100,
        "corrupted files: {refused} of {} refused",
        parsed.len()
    );
    assert!(compared > 5_000, "only {compared} operations compared");
}
