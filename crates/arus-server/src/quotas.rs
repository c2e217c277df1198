//! Connection quotas, as Kafka's `ConnectionQuotas`: `max.connections` for the broker (the
//! acceptor waits for a free slot, leaving new connections in the listen backlog) and
//! `max.connections.per.ip` with `max.connections.per.ip.overrides` (a connection over its
//! address's limit is closed at once). The limits are read on every accept, so dynamic
//! changes (KIP-226 on the broker resource) take effect for new connections.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The limits in force; `usize::MAX` is Kafka's default (`Int.MaxValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub per_ip_overrides: HashMap<IpAddr, usize>,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
            per_ip_overrides: HashMap::new(),
        }
    }
}

impl QuotaLimits {
    fn for_ip(&self, ip: IpAddr) -> usize {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid max.connections.per.ip.overrides entry {entry:?}: expected host:count")]
pub struct OverrideError {
    pub entry: String,
}

/// Parses `host:count,…` (hosts are IP addresses or names, resolved once here; `[::1]:5` for
/// IPv6), as Kafka's `max.connections.per.ip.overrides`.
pub fn parse_overrides(text: &str) -> Result<HashMap<IpAddr, usize>, OverrideError> {
    let mut out = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let err = || OverrideError {
            entry: entry.to_string(),
        };
        let (host, count) = entry.rsplit_once(':').ok_or_else(err)?;
        let count: usize = count.trim().parse().map_err(|_| err())?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|_| err())?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in ips {
            out.insert(ip, count);
        }
    }
    Ok(out)
}

#[derive(Default, Debug)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Default, Debug)]
pub struct ConnectionQuotas {
    counts: Mutex<Counts>,
    closed: Notify,
}

/// One admitted connection; gives its slot back when dropped.
#[derive(Debug)]
pub struct Admitted {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        {
            let mut c = self.quotas.counts.lock();
            c.total -= 1;
            if let Some(n) = c.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&self.ip);
                }
            }
        }
        self.quotas.closed.notify_waiters();
    }
}

impl ConnectionQuotas {
    pub fn new() -> Arc<ConnectionQuotas> {
        Arc::default()
    }

    /// Waits until the broker has fewer than `max_connections` connections.
    pub async fn wait_for_slot(&self, mut limits: impl FnMut() -> QuotaLimits) {
        loop {
            let closed = self.closed.notified();
            if self.counts.lock().total < limits().max_connections {
                return;
            }
            closed.await;
        }
    }

    /// Admits a connection from `ip`, or returns the limit it is over.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limits: &QuotaLimits) -> Result<Admitted, usize> {
        let mut c = self.counts.lock();
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        let limit = limits.for_ip(ip);
        if from_ip >= limit {
            return Err(limit);
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        Ok(Admitted {
            quotas: self.clone(),
            ip,
        })
    }

    pub fn total(&self) -> usize {
        self.counts.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_ips_names_and_ipv6() {
        let o = parse_overrides("127.0.0.1:200, localhost:7,[::1]:5").unwrap();
        assert_eq!(o[&"127.0.0.1".parse::<IpAddr>().unwrap()], 7);
        assert_eq!(o[&"::1".parse::<IpAddr>().unwrap()], 5);
        assert!(parse_overrides("127.0.0.1").is_err());
        assert!(parse_overrides("127.0.0.1:x").is_err());
        assert!(parse_overrides("").unwrap().is_empty());
    }

    #[test]
    fn per_ip_limits_and_overrides_count_open_connections() {
        let q = ConnectionQuotas::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let limits = QuotaLimits {
            max_connections_per_ip: 2,
            per_ip_overrides: HashMap::from([(b, 1)]),
            ..QuotaLimits::default()
        };
        let a1 = q.admit(a, &limits).unwrap();
        let _a2 = q.admit(a, &limits).unwrap();
        assert_eq!(q.admit(a, &limits).unwrap_err(), 2);
        let _b1 = q.admit(b, &limits).unwrap();
        assert_eq!(q.admit(b, &limits).unwrap_err(), 1);
        drop(a1);
        let _a3 = q.admit(a, &limits).unwrap();
        assert_eq!(q.total(), 3);
    }

    #[tokio::test]
    async fn the_acceptor_waits_for_a_free_slot() {
        let q = ConnectionQuotas::new();
        let limits = || QuotaLimits {
            max_connections: 1,
            ..QuotaLimits::default()
        };
        let first = q.admit("10.0.0.1".parse().unwrap(), &limits()).unwrap();
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move { q.wait_for_slot(limits).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}
