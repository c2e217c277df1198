//! One broker per data directory: a second `arus serve` on a directory in use exits at once,
//! naming the directory and the holder's pid, and the first broker keeps serving.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BrokerProcess, assert_serving};

#[test]
fn a_second_broker_on_the_same_directory_exits_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = BrokerProcess::start_in(&data, &[]);
    let mut second = Command::new(env!("CARGO_BIN_EXE_arus"))
        .arg("serve")
        .arg("--log-dirs")
        .arg(&data)
        .arg("--listeners")
        .arg("PLAINTEXT://127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second broker is still running on a directory in use");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    assert_serving(&first.addr);
    // Once the holder is gone (even by SIGKILL) the directory is free again.
    first.kill9();
    let again = BrokerProcess::start_in(&data, &[]);
    assert_serving(&again.addr);
}
