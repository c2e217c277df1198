//! The controller quorum's membership as configured: the static `controller.quorum.voters`
//! (`id@host:port`, Kafka's `QuorumConfig.parseVoterConnections`), the dynamic quorum's
//! `controller.quorum.bootstrap.servers` (`host:port`), and the `--initial-controllers` of
//! `storage format` (`id@host:port:directoryId`, Kafka's `DynamicVoter.parse`).

use std::fmt;

use arus_protocol::Uuid;

/// A `host:port` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A static voter: its node id and the address of its controller listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub address: HostPort,
}

/// One of `--initial-controllers`: a voter of a dynamic quorum with its metadata
/// directory's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialController {
    pub id: i32,
    pub address: HostPort,
    pub directory_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error(
        "Invalid configuration value for controller.quorum.voters. Each entry should be in the form `{{id}}@{{host}}:{{port}}`."
    )]
    VoterForm,
    #[error("Failed to parse node id {0} for the configuration controller.quorum.voters")]
    VoterId(String),
    #[error(
        "Failed to parse host name from entry {0} for the configuration controller.quorum.voters"
    )]
    VoterHost(String),
    #[error(
        "Failed to parse host port from entry {0} for the configuration controller.quorum.voters"
    )]
    VoterPort(String),
    #[error("Host string ({0}) is not routeable")]
    NotRoutable(String),
    #[error("Invalid url in controller.quorum.bootstrap.servers: {0}")]
    BootstrapUrl(String),
    #[error("{0}")]
    InitialController(String),
}

/// Kafka's `Utils.getHost` / `Utils.getPort` on `host:port` (IPv6 in brackets).
fn split_host_port(s: &str) -> (Option<&str>, Option<u16>) {
    let Some((host, port)) = s.rsplit_once(':') else {
        return (None, None);
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._:%".contains(&c));
    (host_ok.then_some(host), port.parse().ok())
}

/// Parses `controller.quorum.voters`. The order is kept; an id named twice keeps its last
/// address, as Kafka's map does.
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, QuorumError> {
    let mut voters: Vec<Voter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split('@').collect();
        let [id, address] = parts.as_slice() else {
            return Err(QuorumError::VoterForm);
        };
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| QuorumError::VoterId(id.to_string()))?;
        let (host, port) = split_host_port(address);
        let host = host.ok_or_else(|| QuorumError::VoterHost(entry.to_string()))?;
        let port = port.ok_or_else(|| QuorumError::VoterPort(entry.to_string()))?;
        if host == "0.0.0.0" {
            return Err(QuorumError::NotRoutable(host.to_string()));
        }
        let voter = Voter {
            id,
            address: HostPort {
                host: host.to_string(),
                port,
            },
        };
        match voters.iter_mut().find(|v| v.id == id) {
            Some(v) => *v = voter,
            None => voters.push(voter),
        }
    }
    Ok(voters)
}

/// Parses `controller.quorum.bootstrap.servers`.
pub fn parse_bootstrap_servers(value: &str) -> Result<Vec<HostPort>, QuorumError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| match split_host_port(entry) {
            (Some(host), Some(port)) => Ok(HostPort {
                host: host.to_string(),
                port,
            }),
            _ => Err(QuorumError::BootstrapUrl(entry.to_string())),
        })
        .collect()
}

/// Parses `--initial-controllers` (Kafka's `DynamicVoters.parse`).
pub fn parse_initial_controllers(value: &str) -> Result<Vec<InitialController>, QuorumError> {
    let err = |m: String| QuorumError::InitialController(m);
    let mut out: Vec<InitialController> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        let (id, rest) = entry
            .split_once('@')
            .ok_or_else(|| err("No @ found in dynamic voter string.".into()))?;
        if id.is_empty() {
            return Err(err("Invalid @ at beginning of dynamic voter string.".into()));
        }
        let id: i32 = id
            .parse()
            .map_err(|_| err("Failed to parse node id in dynamic voter string.".into()))?;
        if id < 0 {
            return Err(err(format!(
                "Invalid negative node id {id} in dynamic voter string."
            )));
        }
        let (host, rest) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, rest) = bracketed.split_once(']').ok_or_else(|| {
                err("Hostname began with left bracket, but no right bracket was found.".into())
            })?;
            let rest = rest
                .strip_prefix(':')
                .ok_or_else(|| err("Found right bracket, but no colon following it.".into()))?;
            (host, rest)
        } else {
            rest.split_once(':')
                .ok_or_else(|| err("No colon following hostname could be found.".into()))?
        };
        let (port, directory) = rest
            .split_once(':')
            .ok_or_else(|| err("No colon following port could be found.".into()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| err("Failed to parse port in dynamic voter string.".into()))?;
        let directory_id = Uuid::parse(directory)
            .ok_or_else(|| err("Failed to parse directory ID in dynamic voter string.".into()))?;
        if out.iter().any(|c| c.id == id) {
            return Err(err(format!(
                "Node id {id} was specified more than once in the dynamic voter string."
            )));
        }
        out.push(InitialController {
            id,
            address: HostPort {
                host: host.to_string(),
                port,
            },
            directory_id,
        });
    }
    if out.is_empty() {
        return Err(err("No voters given.".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_with_kafkas_errors() {
        let v = parse_voters("1@a:9093, 2@[::1]:9094").unwrap();
        assert_eq!(v[0].id, 1);
        assert_eq!(v[1].address.to_string(), "[::1]:9094");
        assert_eq!(parse_voters("1a:9093"), Err(QuorumError::VoterForm));
        assert_eq!(parse_voters("x@a:1"), Err(QuorumError::VoterId("x".into())));
        assert!(matches!(
            parse_voters("1@a"),
            Err(QuorumError::VoterHost(_))
        ));
        assert!(matches!(
            parse_voters("1@a:x"),
            Err(QuorumError::VoterPort(_))
        ));
        assert!(matches!(
            parse_voters("1@0.0.0.0:1"),
            Err(QuorumError::NotRoutable(_))
        ));
        assert!(parse_voters("").unwrap().is_empty());
    }

    #[test]
    fn bootstrap_servers_and_initial_controllers() {
        assert_eq!(parse_bootstrap_servers("a:1,b:2").unwrap().len(), 2);
        assert!(parse_bootstrap_servers("a").is_err());
        let dir = crate::ids::random_directory_id(&[]);
        let c = parse_initial_controllers(&format!("1@localhost:9093:{dir},2@[::1]:9094:{dir}"))
            .unwrap();
        assert_eq!(c[0].directory_id, dir);
        assert_eq!(c[1].address.host, "::1");
        assert!(parse_initial_controllers("1@h:1").is_err());
        assert!(parse_initial_controllers(&format!("1@h:1:{dir},1@h:2:{dir}")).is_err());
    }
}
