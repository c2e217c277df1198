//! `arus dev cluster --nodes N`: a local N-node cluster for trying things out, on
//! consecutive ports, with its data under one directory: node I serves clients on
//! `base + I - 1` and the controller quorum on `base + 100 + I - 1`, with the
//! server.properties an operator would write for a combined-mode KRaft cluster (printed
//! paths). The directory is formatted on first use (one random cluster id for all nodes)
//! and reused afterwards; the command prints the bootstrap string once every node serves,
//! and stops the nodes (SIGTERM, controlled shutdown) on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// Run a local cluster of N nodes (each broker and controller).
    Cluster(DevClusterArgs),
}

#[derive(Args, Debug)]
pub struct DevClusterArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// The first node's client port; the quorum uses ports from base + 100.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// Where the nodes keep their data and configuration.
    #[arg(long, default_value = "arus-dev-cluster")]
    dir: PathBuf,
}

fn properties(args: &DevClusterArgs, id: u16, dir: &Path) -> String {
    let host = "127.0.0.1";
    let client = args.base_port + id - 1;
    let controller = args.base_port + 100 + id - 1;
    let voters: Vec<String> = (1..=args.nodes)
        .map(|v| format!("{v}@{host}:{}", args.base_port + 100 + v - 1))
        .collect();
    format!(
        "# Written by `arus dev cluster`: node {id} of a combined-mode KRaft cluster.\n\
         node.id={id}\n\
         process.roles=broker,controller\n\
         listeners=PLAINTEXT://{host}:{client},CONTROLLER://{host}:{controller}\n\
         advertised.listeners=PLAINTEXT://{host}:{client}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         controller.quorum.voters={}\n\
         log.dirs={}\n",
        voters.join(","),
        dir.join(format!("node-{id}")).join("data").display()
    )
}

fn run_arus(args: &[&str]) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the arus binary")?;
    let out = Command::new(exe).args(args).output()?;
    if !out.status.success() {
        bail!(
            "arus {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SIGTERM: each node asks for controlled shutdown and closes its logs.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

pub async fn run(cmd: DevCommand) -> anyhow::Result<()> {
    let DevCommand::Cluster(args) = cmd;
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let dir = std::path::absolute(&args.dir)?;
    std::fs::create_dir_all(&dir)?;
    let mut configs = Vec::new();
    for id in 1..=args.nodes {
        let node_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&node_dir)?;
        let config = node_dir.join("server.properties");
        std::fs::write(&config, properties(&args, id, &dir))?;
        configs.push(config);
    }
    let formatted = dir
        .join("node-1")
        .join("data")
        .join("meta.properties")
        .exists();
    if !formatted {
        let cluster_id = run_arus(&["storage", "random-uuid"])?;
        for c in &configs {
            run_arus(&[
                "storage",
                "format",
                "-t",
                &cluster_id,
                "-c",
                c.to_str().context("a non-UTF-8 path")?,
            ])?;
        }
        eprintln!(
            "arus dev: formatted {} nodes, cluster id {cluster_id}",
            args.nodes
        );
    }
    let exe = std::env::current_exe()?;
    let mut children = Nodes(Vec::new());
    for (i, c) in configs.iter().enumerate() {
        let node_dir = c.parent().unwrap_or(&dir);
        let log = std::fs::File::create(node_dir.join("arus.log"))?;
        let ready = node_dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(c)
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node {}", i + 1))?;
        children.0.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, c) in configs.iter().enumerate() {
        let ready = c.parent().unwrap_or(&dir).join("ready");
        while !std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n')) {
            if let Ok(Some(status)) = children.0[i].try_wait() {
                bail!(
                    "node {} exited ({status}); see {}",
                    i + 1,
                    c.parent().unwrap_or(&dir).join("arus.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("node {} did not start within 60 s", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let bootstrap: Vec<String> = (0..args.nodes)
        .map(|i| format!("127.0.0.1:{}", args.base_port + i))
        .collect();
    eprintln!(
        "arus dev: {} nodes serving; data, configs and logs in {}",
        args.nodes,
        dir.display()
    );
    eprintln!("arus dev: press Ctrl-C to stop the cluster");
    println!("{}", bootstrap.join(","));
    tokio::signal::ctrl_c().await?;
    eprintln!("arus dev: stopping");
    drop(children);
    Ok(())
}
