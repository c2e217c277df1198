//! Which partition of a coordinator topic owns a key. Kafka places a group id in
//! `__consumer_offsets` and a transactional id in `__transaction_state` the same way:
//! `Utils.abs(key.hashCode()) % partitions`, with Java's `String.hashCode`. Clients and
//! tools rely on it (a group's committed offsets are read from that partition), so it must
//! match Java bit for bit.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, in
/// wrapping `int` arithmetic.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition owning `key` among `partitions`: `Utils.abs(key.hashCode()) % partitions`
/// (`Utils.abs(i32::MIN)` is 0). Returns 0 when `partitions` is not positive.
pub fn coordinator_partition_for(key: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    let h = java_string_hash(key);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code() {
        // Values of Java's String.hashCode (checked with Java 17).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_string_hash("grüppe"), -1_233_264_812);
        assert_eq!(java_string_hash("日本"), 835_047);
        // Outside the BMP: two UTF-16 code units (0xD83D, 0xDE00).
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn partition_for_key() {
        // Java: Utils.abs(s.hashCode()) % 50, checked with Kafka 4.1.1's Utils.
        assert_eq!(coordinator_partition_for("my-group", 50), 12);
        assert_eq!(coordinator_partition_for("hello", 50), 22);
        assert_eq!(coordinator_partition_for("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition_for("grüppe", 50), 12);
        assert_eq!(coordinator_partition_for("日本", 50), 47);
        assert_eq!(coordinator_partition_for("😀", 50), 49);
        assert_eq!(coordinator_partition_for("console-consumer-12345", 50), 6);
        assert_eq!(coordinator_partition_for("x", 1), 0);
        assert_eq!(coordinator_partition_for("x", 0), 0);
        assert_eq!(coordinator_partition_for("x", -3), 0);
    }
}
