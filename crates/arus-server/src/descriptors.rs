//! File descriptors: every connection holds one and every open partition a few (segment,
//! indexes), so the process limit decides how many of each a broker can hold. At start-up the
//! soft limit is raised to the hard limit (as systemd units for Kafka set `LimitNOFILE`), and
//! the broker says what that leaves for connections.

use tracing::warn;

/// The soft limit before and after raising it to the hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    pub before: u64,
    pub after: u64,
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit.
pub fn raise_limit() -> std::io::Result<Raised> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads only the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(Raised {
        before,
        after: lim.rlim_cur,
    })
}

/// Descriptors this process has open now.
pub fn in_use() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// One line for the operator: the limit, what the open partitions use, and the room left.
///
/// `before_open` is what was in use before the partitions were opened (standard streams,
/// the runtime's), so the per-partition figure counts only theirs.
pub fn summary(limit: Raised, before_open: usize, partitions: usize) -> String {
    let used = in_use() as u64;
    let by_partitions = used.saturating_sub(before_open as u64);
    let room = limit.after.saturating_sub(used);
    let per_partition = if partitions > 0 {
        format!(
            ", about {:.1} per partition",
            by_partitions as f64 / partitions as f64
        )
    } else {
        String::new()
    };
    let raised = if limit.after > limit.before {
        format!(" (raised from {})", limit.before)
    } else {
        String::new()
    };
    if room < 1024 {
        warn!(
            limit = limit.after,
            in_use = used,
            "few file descriptors left for connections: raise the hard limit (ulimit -Hn, LimitNOFILE)"
        );
    }
    format!(
        "file descriptors: limit {}{raised}, {used} in use for {partitions} partitions{per_partition}: room for about {room} connections",
        limit.after
    )
}
