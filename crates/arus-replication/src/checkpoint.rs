//! The `leader-epoch-checkpoint` file, byte for byte as Kafka writes it
//! (`LeaderEpochCheckpointFile` over `CheckpointFile`), so a Kafka log directory and an
//! Arus one hold the same file:
//!
//! ```text
//! 0            <- format version (only 0 exists)
//! 2            <- number of entries that follow
//! 3 100        <- leader epoch, one space, its start offset
//! 5 250
//! ```
//!
//! Lines end with `\n` (Java's `BufferedWriter.newLine` on Linux); reading splits lines as
//! Java's `readLine` does (`\n`, `\r` or `\r\n`). An empty file, or a file with only the version line, is an empty cache. Fields of
//! an entry are separated by whitespace (Kafka splits on `\s+`). Writing the bytes durably
//! (temporary file, fsync, rename, fsync of the directory) is the caller's job.

use crate::epoch_cache::EpochEntry;

/// The only version Kafka writes and reads.
pub const CHECKPOINT_VERSION: i32 = 0;
/// The file name inside a partition directory.
pub const LEADER_EPOCH_CHECKPOINT_FILENAME: &str = "leader-epoch-checkpoint";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("leader-epoch-checkpoint is not UTF-8")]
    NotUtf8,
    #[error("unrecognised leader-epoch-checkpoint version {found}, expected {CHECKPOINT_VERSION}")]
    UnknownVersion { found: i32 },
    #[error("malformed line {line_number} in leader-epoch-checkpoint: {line:?}")]
    MalformedLine { line_number: usize, line: String },
    #[error("expected {expected} entries in leader-epoch-checkpoint, found {found}")]
    WrongCount { expected: i32, found: usize },
}

pub fn encode_checkpoint(entries: &[EpochEntry]) -> Vec<u8> {
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
    }
    text.into_bytes()
}

/// Parses the file. The entries are returned as written; load them with
/// [`crate::LeaderEpochCache::from_entries`], which rejects negative values as Kafka does.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Vec<EpochEntry>, CheckpointError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CheckpointError::NotUtf8)?;
    let mut lines = java_lines(text)
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l));

    let Some((n, version_line)) = lines.next() else {
        return Ok(Vec::new());
    };
    let version = parse_int::<i32>(n, version_line)?;
    if version != CHECKPOINT_VERSION {
        return Err(CheckpointError::UnknownVersion { found: version });
    }
    let Some((n, count_line)) = lines.next() else {
        return Ok(Vec::new());
    };
    let expected = parse_int::<i32>(n, count_line)?;
    let mut entries = Vec::new();
    for (n, line) in lines {
        entries.push(parse_entry(n, line)?);
    }
    if usize::try_from(expected).ok() != Some(entries.len()) {
        return Err(CheckpointError::WrongCount {
            expected,
            found: entries.len(),
        });
    }
    Ok(entries)
}

/// The lines Java's `BufferedReader.readLine` yields: ended by `\n`, `\r` or `\r\n`, with
/// no empty line after a final terminator.
fn java_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn malformed(line_number: usize, line: &str) -> CheckpointError {
    // Bounded: a corrupt file may hold one enormous line.
    let line: String = line.chars().take(200).collect();
    CheckpointError::MalformedLine { line_number, line }
}

/// Java's `Integer.parseInt` / `Long.parseLong`: optional sign, decimal digits, nothing else.
fn parse_int<T: std::str::FromStr>(line_number: usize, text: &str) -> Result<T, CheckpointError> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(line_number, text));
    }
    text.parse().map_err(|_| malformed(line_number, text))
}

/// Java's `\s` (the class Kafka's `\s+` split uses).
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn parse_entry(line_number: usize, line: &str) -> Result<EpochEntry, CheckpointError> {
    // As Java's `line.split("\\s+")`: a leading blank yields an empty first field (so
    // three fields, which Kafka rejects); trailing blanks yield nothing.
    let mut fields: Vec<&str> = line
        .split(is_java_space)
        .filter(|f| !f.is_empty())
        .collect();
    if line.starts_with(is_java_space) {
        fields.insert(0, "");
    }
    let [epoch, start_offset] = fields[..] else {
        return Err(malformed(line_number, line));
    };
    let epoch = parse_int::<i32>(line_number, epoch).map_err(|_| malformed(line_number, line))?;
    let start_offset =
        parse_int::<i64>(line_number, start_offset).map_err(|_| malformed(line_number, line))?;
    Ok(EpochEntry::new(epoch, start_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_kafkas_layout() {
        let bytes = encode_checkpoint(&[EpochEntry::new(3, 100), EpochEntry::new(5, 250)]);
        assert_eq!(bytes, b"0\n2\n3 100\n5 250\n");
        assert_eq!(encode_checkpoint(&[]), b"0\n0\n");
    }

    #[test]
    fn round_trips() {
        let entries = vec![EpochEntry::new(0, 0), EpochEntry::new(7, i64::MAX)];
        assert_eq!(
            decode_checkpoint(&encode_checkpoint(&entries)).unwrap(),
            entries
        );
    }

    #[test]
    fn empty_file_and_version_only_are_empty() {
        assert_eq!(decode_checkpoint(b"").unwrap(), vec![]);
        assert_eq!(decode_checkpoint(b"0\n").unwrap(), vec![]);
    }

    #[test]
    fn accepts_crlf_and_runs_of_blanks() {
        assert_eq!(
            decode_checkpoint(b"0\r\n1\r\n4 \t 9\r\n").unwrap(),
            vec![EpochEntry::new(4, 9)]
        );
    }

    #[test]
    fn refuses_other_versions() {
        assert_eq!(
            decode_checkpoint(b"1\n0\n"),
            Err(CheckpointError::UnknownVersion { found: 1 })
        );
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in [
            &b"x\n0\n"[..],
            b"0\n1\n3\n",
            b"0\n1\n3 4 5\n",
            b"0\n1\n 3 4\n",
            b"0\n1\nthree 4\n",
            b"0\n1\n3 4.0\n",
            b"0\n1\n99999999999 4\n",
            b"0\n 1\n3 4\n",
        ] {
            assert!(
                matches!(
                    decode_checkpoint(bad),
                    Err(CheckpointError::MalformedLine { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_a_wrong_count() {
        assert_eq!(
            decode_checkpoint(b"0\n2\n3 4\n"),
            Err(CheckpointError::WrongCount {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            decode_checkpoint(b"0\n-1\n"),
            Err(CheckpointError::WrongCount {
                expected: -1,
                found: 0
            })
        );
    }

    #[test]
    fn refuses_non_utf8() {
        assert_eq!(
            decode_checkpoint(&[0x30, 0x0a, 0xff]),
            Err(CheckpointError::NotUtf8)
        );
    }

    #[test]
    fn malformed_line_report_is_bounded() {
        let mut bytes = b"0\n1\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'9', 10_000));
        match decode_checkpoint(&bytes) {
            Err(CheckpointError::MalformedLine { line, .. }) => assert!(line.len() <= 200),
            other => panic!("{other:?}"),
        }
    }
}
