//! Starts the real `arus` binary on port 0 in a temporary directory.
#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The broker binary under test: this build's, or `ARUS_TEST_BINARY` (to show that a test
/// fails on an earlier release).
pub fn binary() -> String {
    std::env::var("ARUS_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_arus").to_string())
}

pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
}

impl BrokerProcess {
    /// Starts a broker whose data lives in `data_dir`, with extra `--override`s.
    pub fn start_in(data_dir: &Path, overrides: &[&str]) -> BrokerProcess {
        Self::start_limited(data_dir, overrides, None)
    }

    /// Like [`BrokerProcess::start_in`], with `RLIMIT_NOFILE` (soft and hard) set to
    /// `max_descriptors` in the child, as `ulimit -n` would.
    pub fn start_limited(
        data_dir: &Path,
        overrides: &[&str],
        max_descriptors: Option<u64>,
    ) -> BrokerProcess {
        let ready = data_dir.with_extension("ready");
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--log-dirs")
            .arg(data_dir)
            .arg("--listeners")
            .arg("PLAINTEXT://127.0.0.1:0")
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        if let Some(n) = max_descriptors {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only this child's limits.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawning arus");
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
        BrokerProcess {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no clean shutdown, no flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        send_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("broker did not stop on SIGTERM");
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Descriptors the broker has open, from /proc.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// ApiVersions v0 request frame with the given correlation id.
pub fn api_versions_frame(correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(b"test");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Sends an ApiVersions v0 request on a fresh connection and checks the answer.
pub fn assert_serving(addr: &str) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&api_versions_frame(7)).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("ApiVersions response size");
    let len = i32::from_be_bytes(size) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[0..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&body[4..6], &0i16.to_be_bytes(), "error code");
}

/// Reads until the peer closes or `timeout` passes; returns whether it closed.
pub fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Creates a topic with one partition through the project's client.
pub fn create_topic(addr: &str, name: &str, configs: &[(&str, &str)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = arus_client::Client::connect(addr).await.unwrap();
        let configs: Vec<(String, String)> = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.create_topic(name, 1, 1, &configs).await.unwrap();
    });
}
