//! A node's identity on real processes: `arus storage random-uuid|format|info`, Kafka's
//! `meta.properties` in every directory, `arus serve` with a KRaft server.properties (named
//! listeners, a controller listener that is bound but never advertised), the refusals
//! Kafka makes, and `arus cluster describe` over the wire.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use arus_client::Client;
use common::BrokerProcess;

fn arus(args: &[&str]) -> Output {
    Command::new(common::binary())
        .args(args)
        .env("ARUS_LOG", "error")
        .output()
        .expect("running arus")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn random_uuid() -> String {
    let out = arus(&["storage", "random-uuid"]);
    assert!(out.status.success());
    text(&out.stdout).trim().to_string()
}

/// A combined KRaft node of a one-voter static quorum with two log directories.
fn write_config(dir: &Path, node_id: i32, extra: &str) -> PathBuf {
    let path = dir.join("server.properties");
    std::fs::write(
        &path,
        format!(
            "process.roles=broker,controller\n\
             node.id={node_id}\n\
             controller.quorum.voters={node_id}@localhost:19093\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             log.dirs={},{}\n{extra}",
            dir.join("a").display(),
            dir.join("b").display()
        ),
    )
    .unwrap();
    path
}

fn meta_properties(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("meta.properties")).unwrap()
}

fn property(file: &str, key: &str) -> Option<String> {
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// Starts `arus serve -c CONFIG` and waits for its ready file.
fn serve(config: &Path, data: &Path) -> BrokerProcess {
    let ready = config.with_extension("ready");
    let _ = std::fs::remove_file(&ready);
    let child = Command::new(common::binary())
        .args(["serve", "-c"])
        .arg(config)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(t) = std::fs::read_to_string(&ready)
            && t.ends_with('\n')
        {
            break t.trim().to_string();
        }
        assert!(Instant::now() < deadline, "broker did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    };
    BrokerProcess {
        child,
        addr,
        data_dir: data.to_path_buf(),
    }
}

/// Runs `arus serve -c CONFIG`, which must refuse to start: its stderr.
fn serve_refused(config: &Path) -> String {
    let out = Command::new(common::binary())
        .args(["serve", "-c"])
        .arg(config)
        .env("ARUS_LOG", "error")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "serve started: {}",
        text(&out.stderr)
    );
    text(&out.stderr)
}

async fn cluster_id(addr: &str) -> String {
    let mut c = Client::connect(addr).await.unwrap();
    c.metadata(Some(&[])).await.unwrap().cluster_id.unwrap()
}

#[test]
fn random_uuid_is_kafkas_22_character_form_and_random() {
    let a = random_uuid();
    let b = random_uuid();
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert_eq!(id.len(), 22, "{id}");
        assert!(!id.starts_with('-'));
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_then_serve_a_kraft_node_with_named_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 3, "");
    let id = random_uuid();
    let out = arus(&[
        "storage",
        "format",
        "-t",
        &id,
        "-c",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!(
            "Formatting metadata directory {}",
            dir.path().join("a").display()
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "Formatting data directory {}",
            dir.path().join("b").display()
        )),
        "{printed}"
    );
    let (ma, mb) = (
        meta_properties(&dir.path().join("a")),
        meta_properties(&dir.path().join("b")),
    );
    for m in [&ma, &mb] {
        assert_eq!(property(m, "version").as_deref(), Some("1"));
        assert_eq!(property(m, "cluster.id"), Some(id.clone()));
        assert_eq!(property(m, "node.id").as_deref(), Some("3"));
    }
    assert_ne!(property(&ma, "directory.id"), property(&mb, "directory.id"));

    let info = arus(&["storage", "info", "-c", config.to_str().unwrap()]);
    assert!(info.status.success(), "{}", text(&info.stdout));
    assert!(
        text(&info.stdout).contains(&format!(
            "Found metadata: {{cluster.id={id}, directory.id={}, node.id=3, version=1}}",
            property(&ma, "directory.id").unwrap()
        )),
        "{}",
        text(&info.stdout)
    );

    let broker = serve(&config, dir.path());
    assert_eq!(cluster_id(&broker.addr).await, id);
    // Only the broker listener is advertised; the controller listener is bound beside it.
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let metadata = client.metadata(Some(&[])).await.unwrap();
    let brokers: Vec<(i32, String)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
        .collect();
    assert_eq!(brokers, vec![(3, broker.addr.clone())]);

    let out = arus(&["cluster", "describe", "--bootstrap-server", &broker.addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let described = text(&out.stdout);
    assert!(
        described.contains(&format!("Cluster id:        {id}")),
        "{described}"
    );
    assert!(described.contains("Active controller: 3"), "{described}");
    assert!(
        described.contains(&format!("{}  -     broker,controller  false", broker.addr)),
        "{described}"
    );
    // The quorum's voter carries the metadata directory's id.
    assert!(
        described.contains(&property(&ma, "directory.id").unwrap()),
        "{described}"
    );
    assert!(described.contains("metadata.version"), "{described}");
    broker.stop();
}

#[test]
fn an_unformatted_kraft_node_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 1, "");
    let stderr = serve_refused(&config);
    assert!(
        stderr.contains("No readable meta.properties files found."),
        "{stderr}"
    );
    assert!(!dir.path().join("a").join("meta.properties").exists());
}

#[test]
fn format_refuses_a_formatted_directory_and_serve_another_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 1, "");
    let config_arg = config.to_str().unwrap();
    let id = random_uuid();
    assert!(
        arus(&["storage", "format", "-t", &id, "-c", config_arg])
            .status
            .success()
    );
    let before = meta_properties(&dir.path().join("a"));

    let again = arus(&["storage", "format", "-t", &id, "-c", config_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr).trim(),
        format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
            dir.path().join("a").display()
        )
    );
    let ignored = arus(&[
        "storage",
        "format",
        "-t",
        &id,
        "-c",
        config_arg,
        "--ignore-formatted",
    ]);
    assert!(ignored.status.success(), "{}", text(&ignored.stderr));
    assert_eq!(
        text(&ignored.stdout),
        "All of the log directories are already formatted.\n"
    );
    assert_eq!(meta_properties(&dir.path().join("a")), before);

    // Another cluster id, even with --ignore-formatted: Kafka's refusal.
    let other_id = random_uuid();
    let bad = arus(&[
        "storage",
        "format",
        "-t",
        &other_id,
        "-c",
        config_arg,
        "--ignore-formatted",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        text(&bad.stderr).trim(),
        format!(
            "Invalid cluster.id in: {}. Expected {other_id}, but read {id}",
            dir.path().join("a").join("meta.properties").display()
        )
    );

    // The same directories under another node id: Kafka's refusal.
    let other = write_config(dir.path(), 2, "");
    let stderr = serve_refused(&other);
    assert!(
        stderr.contains("Stored node id 1 doesn't match previous node id 2"),
        "{stderr}"
    );
}

#[test]
fn security_protocols_other_than_plaintext_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::binary())
        .args(["serve", "--listeners", "SSL://127.0.0.1:0", "--log-dirs"])
        .arg(dir.path().join("data"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("listener SSL uses security protocol SSL: Arus supports only PLAINTEXT"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_configuration_formats_itself_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let id = cluster_id(&broker.addr).await;
    broker.stop();
    let meta = meta_properties(&data);
    assert_eq!(property(&meta, "cluster.id"), Some(id.clone()));
    assert_eq!(property(&meta, "node.id").as_deref(), Some("1"));
    let broker = BrokerProcess::start_in(&data, &[]);
    assert_eq!(cluster_id(&broker.addr).await, id);
    broker.stop();
    assert_eq!(meta_properties(&data), meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_release_directory_keeps_its_cluster_id_in_meta_properties() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/previous-release/single-node.tar.gz"
        ))
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let data = dir.path().join("data");
    assert!(!data.join("meta.properties").exists());
    let old = std::fs::read_to_string(data.join("arus-metadata.json")).unwrap();
    let old_id = old
        .split("\"cluster_id\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap()
        .to_string();
    let broker = BrokerProcess::start_in(&data, &[]);
    assert_eq!(cluster_id(&broker.addr).await, old_id);
    broker.stop();
    let meta = meta_properties(&data);
    assert_eq!(property(&meta, "cluster.id"), Some(old_id));
    assert!(property(&meta, "directory.id").is_some());
}

/// Runs `arus ARGS`, which must exit with an error within 20 s (a node that starts serves
/// until killed): its stderr.
async fn serve_exits(args: &[&str]) -> String {
    let mut child = Command::new(common::binary())
        .args(args)
        .env("ARUS_LOG", "error")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "serve started: {stderr}"
    );
    stderr
}

/// A taken port is reported as such on both single-node paths (the one-node cluster used to
/// call it "cannot read the bootstrap metadata").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_as_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let listener = format!("PLAINTEXT://{addr}");
    for switch in ["true", "false"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let quorum = format!("arus.single.node.quorum={switch}");
        let stderr = serve_exits(&[
            "serve",
            "--listeners",
            &listener,
            "--log-dirs",
            data.to_str().unwrap(),
            "--override",
            &quorum,
        ])
        .await;
        let expected = format!("cannot listen on {addr}: Address already in use");
        assert!(stderr.contains(&expected), "{switch}: {stderr}");
        assert!(!stderr.contains("bootstrap"), "{switch}: {stderr}");
    }
}

/// `arus.single.node.quorum=false` (the file-backed node) on a directory the one-node
/// cluster wrote refuses to start, and leaves its partitions where they are: it would
/// otherwise find no topic in its own files and set every partition directory aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_backed_node_refuses_a_directory_with_a_metadata_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &["arus.single.node.quorum=true"]);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    c.create_topic("kept", 1, 1, &[]).await.unwrap();
    drop(c);
    broker.stop();
    let stderr = serve_exits(&[
        "serve",
        "--listeners",
        "PLAINTEXT://127.0.0.1:0",
        "--log-dirs",
        data.to_str().unwrap(),
        "--override",
        "arus.single.node.quorum=false",
    ])
    .await;
    assert!(
        stderr.contains("holds a KRaft metadata log"),
        "stderr: {stderr}"
    );
    assert!(data.join("kept-0").is_dir());
    assert!(!data.join("arus-metadata.json").exists());
    let broker = BrokerProcess::start_in(&data, &["arus.single.node.quorum=true"]);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    let md = c.metadata(Some(&["kept"])).await.unwrap();
    assert_eq!(md.topics[0].error_code, 0, "{md:?}");
    broker.stop();
}
