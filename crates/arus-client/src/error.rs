//! The client's error type.

use std::io;

use arus_protocol::{ApiKey, DecodeError, EncodeError, ErrorCode};
use arus_records::RecordError;

/// Everything that can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    /// (`error` is not exposed as `source()`: the message already says it in words.)
    #[error("cannot connect to {addr}: {reason} — is `arus serve` running?")]
    Connect {
        addr: String,
        reason: String,
        error: io::Error,
    },
    /// Reading or writing the socket failed (includes the broker closing the connection).
    #[error("I/O error talking to {addr}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// No response arrived within the client's request timeout; the connection is dropped.
    #[error("no response from {addr} to {api} within {timeout_ms} ms")]
    Timeout {
        addr: String,
        api: ApiKey,
        timeout_ms: u64,
    },
    /// A previous failure left the connection unusable (mid-frame timeout, I/O error).
    #[error("the connection to {addr} is broken by an earlier error; reconnect")]
    Broken { addr: String },
    /// The request could not be encoded at the chosen version.
    #[error("cannot encode {api} v{version} request")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: EncodeError,
    },
    /// The broker's response could not be decoded.
    #[error("cannot decode {api} v{version} response")]
    Decode {
        api: ApiKey,
        version: i16,
        #[source]
        source: DecodeError,
    },
    /// A response whose size prefix is negative or beyond the client's limit.
    #[error("invalid response frame size {0}")]
    FrameSize(i64),
    /// The response answers another request.
    #[error("correlation id mismatch: sent {expected}, received {received}")]
    CorrelationMismatch { expected: i32, received: i32 },
    /// The broker returned a Kafka error code.
    #[error("{code}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: ErrorCode,
        message: Option<String>,
    },
    /// The broker returned an error code this client does not know.
    #[error("unknown Kafka error code {code}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    UnknownErrorCode { code: i16, message: Option<String> },
    /// The broker does not advertise the API (or no version both sides support).
    #[error("the broker does not support {api}{}", .broker_versions.map(|(lo, hi)| format!(" at any version we know (broker: v{lo}-v{hi})")).unwrap_or_default())]
    UnsupportedApi {
        api: ApiKey,
        broker_versions: Option<(i16, i16)>,
    },
    /// A well-formed response that does not answer the question (e.g. the topic is missing
    /// from it, or the body is of another API).
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    /// Record batches in a fetch response are malformed.
    #[error("invalid record data from the broker")]
    Records(#[from] RecordError),
}

impl ClientError {
    /// The Kafka error code, if this is a Kafka error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Turns a response error code into `Ok(())` for `NONE`, else the matching error.
    pub fn check(code: i16, message: Option<&str>) -> Result<(), ClientError> {
        if code == 0 {
            return Ok(());
        }
        let message = message.filter(|m| !m.is_empty()).map(str::to_owned);
        Err(match ErrorCode::from_code(code) {
            Some(code) => ClientError::Kafka { code, message },
            None => ClientError::UnknownErrorCode { code, message },
        })
    }
}

/// A human reason for a failed connect, e.g. "connection refused" rather than
/// "Connection refused (os error 111)".
pub(crate) fn connect_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_display() {
        let e = ClientError::check(3, Some("no such topic")).unwrap_err();
        assert_eq!(e.to_string(), "UNKNOWN_TOPIC_OR_PARTITION: no such topic");
        assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition));
        let e = ClientError::check(36, None).unwrap_err();
        assert_eq!(e.to_string(), "TOPIC_ALREADY_EXISTS");
        let e = ClientError::check(36, Some("")).unwrap_err();
        assert_eq!(e.to_string(), "TOPIC_ALREADY_EXISTS");
        assert!(ClientError::check(0, Some("ignored")).is_ok());
        let e = ClientError::check(9999, None).unwrap_err();
        assert_eq!(e.to_string(), "unknown Kafka error code 9999");
    }

    #[test]
    fn connect_error_display() {
        let e = ClientError::Connect {
            addr: "127.0.0.1:9092".into(),
            reason: connect_reason(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to 127.0.0.1:9092: connection refused — is `arus serve` running?"
        );
    }

    #[test]
    fn unsupported_api_display() {
        let e = ClientError::UnsupportedApi {
            api: ApiKey::Fetch,
            broker_versions: None,
        };
        assert_eq!(e.to_string(), "the broker does not support Fetch");
    }
}
