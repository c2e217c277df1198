//! Where a new partition goes: Kafka's `LogManager.nextLogDirs`. With one online directory,
//! that one; otherwise the online directories ordered by how many partitions (current and
//! future replicas) each holds, fewest first. The caller tries them in order and uses the
//! first in which the partition's directory can be created. Kafka breaks ties in hash-map
//! order (unspecified); Arus breaks them in `log.dirs` order, so placement is
//! deterministic.

/// `online[i]`: whether directory `i` is online; `counts[i]`: partitions it holds.
/// Returns directory indexes, best first (empty when none is online).
pub fn next_log_dirs(online: &[bool], counts: &[usize]) -> Vec<usize> {
    let mut live: Vec<usize> = (0..online.len()).filter(|&i| online[i]).collect();
    // Stable: equal counts keep `log.dirs` order.
    live.sort_by_key(|&i| counts.get(i).copied().unwrap_or(0));
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_partitions_first_ties_in_configured_order() {
        assert_eq!(
            next_log_dirs(&[true, true, true], &[2, 0, 1]),
            vec![1, 2, 0]
        );
        assert_eq!(
            next_log_dirs(&[true, true, true], &[1, 1, 1]),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn offline_directories_are_skipped() {
        assert_eq!(next_log_dirs(&[false, true, true], &[0, 5, 3]), vec![2, 1]);
        assert!(next_log_dirs(&[false, false], &[0, 0]).is_empty());
    }

    /// Creating partitions one by one, counting each, spreads them evenly.
    #[test]
    fn successive_placements_spread_evenly() {
        let mut counts = vec![0; 3];
        for _ in 0..7 {
            let d = next_log_dirs(&[true; 3], &counts)[0];
            counts[d] += 1;
        }
        assert_eq!(counts, vec![3, 2, 2]);
    }
}
