//! The BROKER_LOGGER config resource against the real binary: DescribeConfigs lists the
//! loggers with their levels, IncrementalAlterConfigs changes what the running broker
//! writes to stderr, refusals are Kafka's, and a restart starts again from `ARUS_LOG`.

#![allow(clippy::needless_update)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
use arus_protocol::messages::incremental_alter_configs_request as inc;
use arus_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use arus_protocol::{ErrorCode, Request, Response};

const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;

struct Broker {
    child: Child,
    addr: String,
    stderr: std::path::PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with stderr in `<dir>.stderr` and no `ARUS_LOG` (so: `warn`).
fn start(dir: &Path, run: u32) -> Broker {
    let ready = dir.with_extension(format!("ready{run}"));
    let stderr = dir.with_extension(format!("stderr{run}"));
    let child = Command::new(common::binary())
        .arg("serve")
        .arg("--log-dirs")
        .arg(dir)
        .arg("--listeners")
        .arg("PLAINTEXT://127.0.0.1:0")
        .arg("--ready-file")
        .arg(&ready)
        .env_remove("ARUS_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && text.ends_with('\n')
        {
            break text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "broker did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    };
    Broker {
        child,
        addr,
        stderr,
    }
}

fn stderr_of(b: &Broker) -> String {
    std::fs::read_to_string(&b.stderr).unwrap()
}

async fn loggers(c: &mut arus_client::Client, name: &str) -> (i16, Vec<(String, String)>) {
    let req = Request::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: BROKER_LOGGER,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        ..Default::default()
    });
    let Response::DescribeConfigs(mut r) = c.send(req).await.unwrap() else {
        panic!()
    };
    let r = r.results.remove(0);
    for e in &r.configs {
        assert_eq!(e.config_source, DYNAMIC_BROKER_LOGGER_CONFIG);
        assert!(!e.read_only && !e.is_sensitive && e.synonyms.is_empty());
    }
    (
        r.error_code,
        r.configs
            .into_iter()
            .map(|e| (e.name, e.value.unwrap_or_default()))
            .collect(),
    )
}

fn level<'a>(list: &'a [(String, String)], logger: &str) -> &'a str {
    list.iter()
        .find(|(n, _)| n == logger)
        .map(|(_, l)| l.as_str())
        .unwrap_or_else(|| panic!("{logger} not listed in {list:?}"))
}

/// (logger, operation, value)
type Op<'a> = (&'a str, i8, Option<&'a str>);

async fn alter(c: &mut arus_client::Client, name: &str, ops: &[Op<'_>]) -> (i16, Option<String>) {
    let req = Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
        resources: vec![inc::AlterConfigsResource {
            resource_type: BROKER_LOGGER,
            resource_name: name.into(),
            configs: ops
                .iter()
                .map(|(k, op, v)| inc::AlterableConfig {
                    name: k.to_string(),
                    config_operation: *op,
                    value: v.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::IncrementalAlterConfigs(mut r) = c.send(req).await.unwrap() else {
        panic!()
    };
    let r = r.responses.remove(0);
    (r.error_code, r.error_message)
}

async fn create(c: &mut arus_client::Client, topic: &str) {
    c.create_topic(topic, 1, 1, &[]).await.unwrap();
}

/// "created topic" is an INFO event of `arus_broker::topics`, written before the answer.
fn logged_creation(b: &Broker, topic: &str) -> bool {
    stderr_of(b)
        .lines()
        // The file-backed broker logs its own creation; the one-node cluster's broker logs
        // the topic it takes from the metadata log. Both in `arus_broker::topics`.
        .any(|l| {
            (l.contains("created topic") || l.contains("topic added from the metadata"))
                && l.contains(&format!("topic={topic}"))
        })
}

#[tokio::test(flavor = "current_thread")]
async fn log_levels_change_at_run_time_and_reset_on_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let b = start(&dir, 1);
    let mut c = arus_client::Client::connect(&b.addr).await.unwrap();

    let (code, list) = loggers(&mut c, "1").await;
    assert_eq!(code, 0);
    assert_eq!(level(&list, "root"), "WARN");
    assert_eq!(level(&list, "arus_broker"), "WARN");
    assert_eq!(level(&list, "arus_server"), "WARN");

    create(&mut c, "quiet").await;
    assert!(!logged_creation(&b, "quiet"));

    let (code, msg) = alter(&mut c, "1", &[("arus_broker", SET, Some("INFO"))]).await;
    assert_eq!(code, 0, "{msg:?}");
    let (_, list) = loggers(&mut c, "1").await;
    assert_eq!(level(&list, "arus_broker"), "INFO");
    assert_eq!(level(&list, "root"), "WARN");
    create(&mut c, "heard").await;
    assert!(logged_creation(&b, "heard"), "{}", stderr_of(&b));

    // A deeper logger overrides its crate's level, as in log4j's hierarchy.
    let (code, _) = alter(&mut c, "1", &[("arus_broker::topics", SET, Some("ERROR"))]).await;
    assert_eq!(code, 0);
    create(&mut c, "silenced").await;
    assert!(!logged_creation(&b, "silenced"));
    let (_, list) = loggers(&mut c, "1").await;
    assert_eq!(level(&list, "arus_broker::topics"), "ERROR");

    // DELETE removes a logger's own level: its parent's applies again.
    let (code, _) = alter(
        &mut c,
        "1",
        &[
            ("arus_broker::topics", DELETE, None),
            ("arus_broker", DELETE, None),
        ],
    )
    .await;
    assert_eq!(code, 0);
    let (_, list) = loggers(&mut c, "1").await;
    assert_eq!(level(&list, "arus_broker"), "WARN");
    create(&mut c, "quiet-again").await;
    assert!(!logged_creation(&b, "quiet-again"));

    // Kafka's refusals; none changes a level.
    let cases: [(&str, &[Op], ErrorCode, &str); 6] = [
        (
            "1",
            &[("root", SET, Some("OFF"))],
            ErrorCode::InvalidConfig,
            "Cannot set the log level of root to OFF as it is not a supported log level. \
             Valid log levels are DEBUG, ERROR, FATAL, INFO, TRACE, WARN",
        ),
        (
            "1",
            &[("kafka.server", SET, Some("DEBUG"))],
            ErrorCode::InvalidConfig,
            "Logger kafka.server does not exist!",
        ),
        (
            "1",
            &[("root", DELETE, None)],
            ErrorCode::InvalidRequest,
            "Removing the log level of the root logger is not allowed",
        ),
        (
            "1",
            &[("arus_broker", APPEND, Some("DEBUG"))],
            ErrorCode::InvalidRequest,
            "APPEND operation is not allowed for the BROKER_LOGGER resource",
        ),
        (
            "2",
            &[("root", SET, Some("DEBUG"))],
            ErrorCode::InvalidRequest,
            "Unexpected node id. Expected 1, but received 2",
        ),
        (
            "1",
            &[
                ("arus_broker", SET, Some("DEBUG")),
                ("root", SET, Some("loud")),
            ],
            ErrorCode::InvalidConfig,
            "Cannot set the log level of root to loud as it is not a supported log level. \
             Valid log levels are DEBUG, ERROR, FATAL, INFO, TRACE, WARN",
        ),
    ];
    for (name, ops, code, message) in cases {
        let (got, msg) = alter(&mut c, name, ops).await;
        assert_eq!((got, msg.as_deref()), (code.code(), Some(message)));
    }
    let (_, list) = loggers(&mut c, "1").await;
    assert_eq!(level(&list, "arus_broker"), "WARN");
    let (code, _) = loggers(&mut c, "").await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());

    // Set, then restart: levels are not persisted (Kafka's are not either).
    let (code, _) = alter(&mut c, "1", &[("root", SET, Some("INFO"))]).await;
    assert_eq!(code, 0);
    drop(c);
    drop(b);
    let b = start(&dir, 2);
    let mut c = arus_client::Client::connect(&b.addr).await.unwrap();
    let (_, list) = loggers(&mut c, "1").await;
    assert_eq!(level(&list, "root"), "WARN");
    create(&mut c, "after-restart").await;
    assert!(!logged_creation(&b, "after-restart"));
}
