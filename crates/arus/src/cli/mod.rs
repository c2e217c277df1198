//! Client-side commands (`topic`, `produce`, `consume`, `group`): thin layers over `arus-client`
//! that parse arguments, talk to one broker and print results.

pub mod cluster;
pub mod consume;
pub mod dev;
pub mod group;
pub mod produce;
pub mod storage;
pub mod topic;

use anyhow::{Context, anyhow};
use arus_client::arus_protocol::ErrorCode;
use arus_client::{Client, ClientError};
use clap::Args;

/// The default broker address of every client command.
pub const DEFAULT_BOOTSTRAP_SERVER: &str = "127.0.0.1:9092";

/// `--bootstrap-server`, shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Broker address (host:port).
    #[arg(
        long = "bootstrap-server",
        env = "ARUS_BOOTSTRAP_SERVER",
        default_value = DEFAULT_BOOTSTRAP_SERVER,
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
}

impl ConnectArgs {
    /// Connects; the client's own error already says which address failed and suggests
    /// `arus serve`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&self.bootstrap_server).await?)
    }
}

/// Turns "topic does not exist" errors into a sentence naming the topic; other errors get
/// `what` as context.
pub fn topic_error(topic: &str, what: &str, e: ClientError) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::UnknownTopicOrPartition) | Some(ErrorCode::UnknownTopicId) => {
            anyhow!("topic '{topic}' does not exist")
        }
        _ => anyhow::Error::new(e).context(format!("{what} '{topic}'")),
    }
}

/// Parses `key=value` (the value may contain '=', and may be empty).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Context helper for the common "talking to the broker" case.
pub trait BrokerContext<T> {
    fn broker_context(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T> BrokerContext<T> for Result<T, ClientError> {
    fn broker_context(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(anyhow::Error::new).with_context(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_parsing() {
        assert_eq!(
            parse_key_value("retention.ms=1000").unwrap(),
            ("retention.ms".into(), "1000".into())
        );
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_key_value("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn unknown_topic_message() {
        let e = ClientError::check(3, None).unwrap_err();
        assert_eq!(
            topic_error("x", "describing topic", e).to_string(),
            "topic 'x' does not exist"
        );
        let e = ClientError::check(36, Some("exists")).unwrap_err();
        assert_eq!(
            format!("{:#}", topic_error("x", "creating topic", e)),
            "creating topic 'x': TOPIC_ALREADY_EXISTS: exists"
        );
    }
}

#[cfg(test)]
mod e2e;
