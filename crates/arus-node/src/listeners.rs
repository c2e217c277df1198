//! Named listeners (`NAME://host:port`) and `listener.security.protocol.map`, parsed as
//! Kafka's `SocketServerConfigs.listenerListToEndPoints` and
//! `KafkaConfig.effectiveListenerSecurityProtocolMap` do.

use std::collections::BTreeMap;
use std::fmt;

/// Kafka's `SecurityProtocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's `SecurityProtocol.forName` (case-insensitive).
    pub fn for_name(name: &str) -> Option<SecurityProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's `SecurityProtocol.id`, as RegisterBrokerRecord and DescribeQuorum carry it.
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener: its (upper-case) name, host, port and security protocol. An empty host in
/// the configuration binds every interface and is kept here as `0.0.0.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    #[error("Unable to parse {0} to a broker endpoint")]
    Unparsable(String),
    #[error("No security protocol defined for listener {0}")]
    NoSecurityProtocol(String),
    #[error("Each listener must have a different name, listeners: {0}")]
    DuplicateName(String),
    #[error("Each listener must have a different port, listeners: {0}")]
    DuplicatePort(String),
    #[error("Invalid value {value} for configuration listener.security.protocol.map: {reason}")]
    ProtocolMap { value: String, reason: String },
}

/// Kafka's `ListenerName.normalised`.
pub fn normalised(name: &str) -> String {
    name.trim().to_ascii_uppercase()
}

/// The listener name of one `listeners` entry (`EndPoint.parseListenerName`).
pub fn listener_name_of(entry: &str) -> Option<String> {
    entry.split_once("://").map(|(n, _)| normalised(n))
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,…`).
pub fn parse_protocol_map(
    value: &str,
) -> Result<BTreeMap<String, SecurityProtocol>, ListenerError> {
    let invalid = |reason: String| ListenerError::ProtocolMap {
        value: value.to_string(),
        reason,
    };
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry.split_once(':').ok_or_else(|| {
            invalid(format!(
                "Map entry should be of form <key>:<value>: {entry}"
            ))
        })?;
        let protocol = SecurityProtocol::for_name(protocol.trim()).ok_or_else(|| {
            invalid(format!(
                "No enum constant org.apache.kafka.common.security.auth.SecurityProtocol.{}",
                protocol.trim()
            ))
        })?;
        if map.insert(normalised(name), protocol).is_some() {
            return Err(invalid(format!(
                "Each listener name should only appear once in the map: {}",
                normalised(name)
            )));
        }
    }
    Ok(map)
}

/// Parses a `listeners` / `advertised.listeners` value: `NAME://host:port` entries, where the
/// host may be empty (every interface) or a bracketed IPv6 address.
pub fn parse_endpoints(
    value: &str,
    protocols: &BTreeMap<String, SecurityProtocol>,
    require_distinct_ports: bool,
) -> Result<Vec<Endpoint>, ListenerError> {
    let mut out: Vec<Endpoint> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let unparsable = || ListenerError::Unparsable(entry.to_string());
        let (name, rest) = entry.split_once("://").ok_or_else(unparsable)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(unparsable)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host_ok = host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-%._:".contains(&c));
        let port: u16 = port.parse().map_err(|_| unparsable())?;
        if !host_ok {
            return Err(unparsable());
        }
        let name = normalised(name);
        let security_protocol = *protocols
            .get(&name)
            .ok_or_else(|| ListenerError::NoSecurityProtocol(name.clone()))?;
        out.push(Endpoint {
            name,
            host: if host.is_empty() {
                "0.0.0.0".into()
            } else {
                host.into()
            },
            port,
            security_protocol,
        });
    }
    let listed = || value.to_string();
    for (i, e) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.name == e.name) {
            return Err(ListenerError::DuplicateName(listed()));
        }
        // Port 0 asks the OS for a port: several listeners may ask.
        if require_distinct_ports
            && e.port != 0
            && out[..i]
                .iter()
                .any(|o| o.port == e.port && o.host.contains(':') == e.host.contains(':'))
        {
            return Err(ListenerError::DuplicatePort(listed()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_map() -> BTreeMap<String, SecurityProtocol> {
        parse_protocol_map(
            "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
        )
        .unwrap()
    }

    #[test]
    fn named_listeners_parse_with_their_protocols() {
        let mut map = default_map();
        map.insert("CONTROLLER".into(), SecurityProtocol::Plaintext);
        let l = parse_endpoints("PLAINTEXT://:9092, controller://[::1]:9093", &map, true).unwrap();
        assert_eq!(l[0].host, "0.0.0.0");
        assert_eq!(l[1].name, "CONTROLLER");
        assert_eq!(l[1].host, "::1");
        assert_eq!(l[1].to_string(), "CONTROLLER://[::1]:9093");
    }

    #[test]
    fn kafkas_listener_errors() {
        let map = default_map();
        assert_eq!(
            parse_endpoints("PLAINTEXT//x:1", &map, true)
                .unwrap_err()
                .to_string(),
            "Unable to parse PLAINTEXT//x:1 to a broker endpoint"
        );
        assert_eq!(
            parse_endpoints("INTERNAL://x:1", &map, true)
                .unwrap_err()
                .to_string(),
            "No security protocol defined for listener INTERNAL"
        );
        assert!(matches!(
            parse_endpoints("PLAINTEXT://:1,PLAINTEXT://:2", &map, true),
            Err(ListenerError::DuplicateName(_))
        ));
        assert!(matches!(
            parse_endpoints("PLAINTEXT://:1,SSL://:1", &map, true),
            Err(ListenerError::DuplicatePort(_))
        ));
        assert!(parse_endpoints("PLAINTEXT://:0,SSL://:0", &map, true).is_ok());
        assert!(parse_protocol_map("A:NOPE").is_err());
        assert!(parse_protocol_map("A").is_err());
    }
}
