//! The logger levels of one process and Kafka's rules for changing them
//! (`RuntimeLoggerManager.validateLogLevelConfigs`), with no I/O: the result is rendered as a
//! `tracing_subscriber::EnvFilter` directive string.

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;

/// Kafka's name of the root logger.
pub const ROOT_LOGGER: &str = "root";

pub(crate) const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The loggers every Arus process has: one per crate that logs.
const CRATE_LOGGERS: &[&str] = &[
    "arus",
    "arus_broker",
    "arus_cleaner",
    "arus_client",
    "arus_group",
    "arus_log",
    "arus_protocol",
    "arus_records",
    "arus_server",
    "arus_txn",
];

/// Kafka's `LogLevelConfig` levels, plus OFF, which `ARUS_LOG=off` can set but Kafka's
/// IncrementalAlterConfigs cannot (it is not in `VALID_LOG_LEVELS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Off,
}

/// `RuntimeLoggerManager.VALID_LOG_LEVELS_STRING`: Kafka's valid levels, sorted.
const VALID_LOG_LEVELS: &str = "DEBUG, ERROR, FATAL, INFO, TRACE, WARN";

impl KafkaLevel {
    /// A level as Kafka accepts it in IncrementalAlterConfigs: upper case, OFF excluded.
    fn from_kafka(s: &str) -> Option<KafkaLevel> {
        Some(match s {
            "TRACE" => KafkaLevel::Trace,
            "DEBUG" => KafkaLevel::Debug,
            "INFO" => KafkaLevel::Info,
            "WARN" => KafkaLevel::Warn,
            "ERROR" => KafkaLevel::Error,
            "FATAL" => KafkaLevel::Fatal,
            _ => return None,
        })
    }

    /// A level as an `EnvFilter` directive writes it.
    fn from_tracing(s: &str) -> Option<KafkaLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => KafkaLevel::Trace,
            "debug" => KafkaLevel::Debug,
            "info" => KafkaLevel::Info,
            "warn" => KafkaLevel::Warn,
            "error" => KafkaLevel::Error,
            "off" => KafkaLevel::Off,
            _ => return None,
        })
    }

    pub fn kafka_name(self) -> &'static str {
        match self {
            KafkaLevel::Trace => "TRACE",
            KafkaLevel::Debug => "DEBUG",
            KafkaLevel::Info => "INFO",
            KafkaLevel::Warn => "WARN",
            KafkaLevel::Error => "ERROR",
            KafkaLevel::Fatal => "FATAL",
            KafkaLevel::Off => "OFF",
        }
    }

    /// The `tracing` level: FATAL shows nothing, as `tracing` has no level above ERROR.
    pub fn tracing_name(self) -> &'static str {
        match self {
            KafkaLevel::Trace => "trace",
            KafkaLevel::Debug => "debug",
            KafkaLevel::Info => "info",
            KafkaLevel::Warn => "warn",
            KafkaLevel::Error => "error",
            KafkaLevel::Fatal | KafkaLevel::Off => "off",
        }
    }
}

/// Why a logger change was refused, with Kafka's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    #[error("Logger {0} does not exist!")]
    UnknownLogger(String),
    #[error(
        "Cannot set the log level of {logger} to {level} as it is not a supported log level. Valid log levels are {VALID_LOG_LEVELS}"
    )]
    InvalidLevel { logger: String, level: String },
    #[error("Removing the log level of the {ROOT_LOGGER} logger is not allowed")]
    RemoveRoot,
    #[error("{0} operation is not allowed for the BROKER_LOGGER resource")]
    ListOperation(&'static str),
    #[error("Unknown operation type {0} is not allowed for the BROKER_LOGGER resource")]
    UnknownOperation(i8),
}

impl LoggerError {
    /// Kafka's error: `InvalidConfigurationException` for names and levels,
    /// `InvalidRequestException` for operations.
    pub fn code(&self) -> ErrorCode {
        match self {
            LoggerError::UnknownLogger(_) | LoggerError::InvalidLevel { .. } => {
                ErrorCode::InvalidConfig
            }
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// The root level, the levels set on targets, and the `ARUS_LOG` directives that are not a
/// plain `target=level` (span and field filters), kept as they were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerLevels {
    root: KafkaLevel,
    targets: BTreeMap<String, KafkaLevel>,
    other_directives: Vec<String>,
}

impl LoggerLevels {
    /// Levels from an `EnvFilter` string such as `warn,arus_broker=debug`; an empty string
    /// or one without a bare level leaves the root at ERROR, `EnvFilter`'s default.
    pub fn parse(filter: &str) -> LoggerLevels {
        let mut levels = LoggerLevels {
            root: KafkaLevel::Error,
            targets: BTreeMap::new(),
            other_directives: Vec::new(),
        };
        for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match KafkaLevel::from_tracing(directive) {
                    Some(level) => levels.root = level,
                    // A bare target enables everything for it.
                    None if is_target(directive) => {
                        levels
                            .targets
                            .insert(directive.to_string(), KafkaLevel::Trace);
                    }
                    None => levels.other_directives.push(directive.to_string()),
                },
                Some((target, level)) => match KafkaLevel::from_tracing(level) {
                    Some(level) if is_target(target) => {
                        levels.targets.insert(target.to_string(), level);
                    }
                    _ => levels.other_directives.push(directive.to_string()),
                },
            }
        }
        levels
    }

    fn exists(&self, logger: &str) -> bool {
        let in_a_crate = CRATE_LOGGERS
            .iter()
            .any(|c| logger == *c || logger.strip_prefix(c).is_some_and(|r| r.starts_with("::")));
        logger == ROOT_LOGGER
            || self.targets.contains_key(logger)
            || (in_a_crate && is_target(logger))
    }

    /// A logger's level: its own, else its nearest ancestor's, else the root's.
    fn effective(&self, logger: &str) -> KafkaLevel {
        let mut name = logger;
        loop {
            if let Some(level) = self.targets.get(name) {
                return *level;
            }
            match name.rsplit_once("::") {
                Some((parent, _)) => name = parent,
                None => return self.root,
            }
        }
    }

    /// Every logger (the crates', those with a level of their own, and root) with its
    /// effective level's Kafka name, sorted by name.
    pub fn effective_levels(&self) -> Vec<(String, String)> {
        let mut names: Vec<&str> = CRATE_LOGGERS.to_vec();
        names.extend(self.targets.keys().map(String::as_str));
        names.push(ROOT_LOGGER);
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let level = if n == ROOT_LOGGER {
                    self.root
                } else {
                    self.effective(n)
                };
                (n.to_string(), level.kafka_name().to_string())
            })
            .collect()
    }

    /// One IncrementalAlterConfigs operation, checked as Kafka checks it.
    pub fn apply(&mut self, logger: &str, op: i8, value: Option<&str>) -> Result<(), LoggerError> {
        match op {
            OP_SET => {
                if !self.exists(logger) {
                    return Err(LoggerError::UnknownLogger(logger.to_string()));
                }
                let level = value.and_then(KafkaLevel::from_kafka).ok_or_else(|| {
                    LoggerError::InvalidLevel {
                        logger: logger.to_string(),
                        level: value.unwrap_or("null").to_string(),
                    }
                })?;
                if logger == ROOT_LOGGER {
                    self.root = level;
                } else {
                    self.targets.insert(logger.to_string(), level);
                }
                Ok(())
            }
            OP_DELETE => {
                if !self.exists(logger) {
                    return Err(LoggerError::UnknownLogger(logger.to_string()));
                }
                if logger == ROOT_LOGGER {
                    return Err(LoggerError::RemoveRoot);
                }
                self.targets.remove(logger);
                Ok(())
            }
            OP_APPEND => Err(LoggerError::ListOperation("APPEND")),
            OP_SUBTRACT => Err(LoggerError::ListOperation("SUBTRACT")),
            other => Err(LoggerError::UnknownOperation(other)),
        }
    }

    /// The `EnvFilter` directives for these levels.
    pub fn filter_directives(&self) -> String {
        let mut out = vec![self.root.tracing_name().to_string()];
        out.extend(
            self.targets
                .iter()
                .map(|(t, l)| format!("{t}={}", l.tracing_name())),
        );
        out.extend(self.other_directives.iter().cloned());
        out.join(",")
    }
}

/// A module path: `ident(::ident)*`.
fn is_target(s: &str) -> bool {
    !s.is_empty()
        && s.split("::").all(|seg| {
            !seg.is_empty()
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !seg.starts_with(|c: char| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arus_log_and_renders_it_back() {
        let l = LoggerLevels::parse("info,arus_broker=debug,arus_server[conn]=trace");
        assert_eq!(
            l.filter_directives(),
            "info,arus_broker=debug,arus_server[conn]=trace"
        );
        let levels = l.effective_levels();
        assert!(levels.contains(&("root".into(), "INFO".into())));
        assert!(levels.contains(&("arus_broker".into(), "DEBUG".into())));
        assert!(levels.contains(&("arus_log".into(), "INFO".into())));
        assert_eq!(LoggerLevels::parse("").root, KafkaLevel::Error);
        assert_eq!(LoggerLevels::parse("OFF").root, KafkaLevel::Off);
    }

    #[test]
    fn set_and_delete_follow_the_hierarchy() {
        let mut l = LoggerLevels::parse("warn");
        l.apply("arus_broker", OP_SET, Some("DEBUG")).unwrap();
        l.apply("arus_broker::handlers::produce", OP_SET, Some("TRACE"))
            .unwrap();
        assert_eq!(l.effective("arus_broker::handlers"), KafkaLevel::Debug);
        assert_eq!(
            l.filter_directives(),
            "warn,arus_broker=debug,arus_broker::handlers::produce=trace"
        );
        l.apply("arus_broker", OP_DELETE, None).unwrap();
        assert_eq!(l.effective("arus_broker::handlers"), KafkaLevel::Warn);
        l.apply("root", OP_SET, Some("FATAL")).unwrap();
        assert_eq!(
            l.filter_directives(),
            "off,arus_broker::handlers::produce=trace"
        );
        assert!(
            l.effective_levels()
                .contains(&("root".into(), "FATAL".into()))
        );
    }

    #[test]
    fn refusals_are_kafkas() {
        let mut l = LoggerLevels::parse("warn");
        let before = l.clone();
        let cases: [(&str, i8, Option<&str>, ErrorCode, &str); 7] = [
            (
                "kafka.server",
                OP_SET,
                Some("DEBUG"),
                ErrorCode::InvalidConfig,
                "Logger kafka.server does not exist!",
            ),
            (
                "root",
                OP_SET,
                Some("debug"),
                ErrorCode::InvalidConfig,
                "Cannot set the log level of root to debug as it is not a supported log level. Valid log levels are DEBUG, ERROR, FATAL, INFO, TRACE, WARN",
            ),
            (
                "root",
                OP_SET,
                Some("OFF"),
                ErrorCode::InvalidConfig,
                "Cannot set the log level of root to OFF as it is not a supported log level. Valid log levels are DEBUG, ERROR, FATAL, INFO, TRACE, WARN",
            ),
            (
                "root",
                OP_DELETE,
                None,
                ErrorCode::InvalidRequest,
                "Removing the log level of the root logger is not allowed",
            ),
            (
                "root",
                OP_APPEND,
                Some("DEBUG"),
                ErrorCode::InvalidRequest,
                "APPEND operation is not allowed for the BROKER_LOGGER resource",
            ),
            (
                "root",
                OP_SUBTRACT,
                Some("DEBUG"),
                ErrorCode::InvalidRequest,
                "SUBTRACT operation is not allowed for the BROKER_LOGGER resource",
            ),
            (
                "root",
                9,
                Some("DEBUG"),
                ErrorCode::InvalidRequest,
                "Unknown operation type 9 is not allowed for the BROKER_LOGGER resource",
            ),
        ];
        for (logger, op, value, code, message) in cases {
            let e = l.apply(logger, op, value).unwrap_err();
            assert_eq!((e.code(), e.to_string().as_str()), (code, message));
        }
        assert_eq!(l, before);
        assert!(
            l.apply("arus_broker::no_such_module", OP_SET, Some("INFO"))
                .is_ok()
        );
        assert!(l.apply("arus_brokerx", OP_SET, Some("INFO")).is_err());
    }
}
