"""Starting and stopping a broker for the bench scripts, with compat/'s CLI contract
(`serve --log-dirs --listeners --ready-file [--override k=v]...`), so the same script
measures Arus (`target/release/arus`) and Apache Kafka (`compat/reference/kafka-broker.sh`)."""
import os
import signal
import subprocess
import time


def start_broker(binary, tmp, overrides=()):
    """Starts `binary` with its data in `tmp`; returns (process, "host:port")."""
    ready = os.path.join(tmp, "ready")
    log = open(os.path.join(tmp, "broker.log"), "w")
    cmd = [binary, "serve", "--log-dirs", os.path.join(tmp, "data"),
           "--listeners", "PLAINTEXT://127.0.0.1:0", "--ready-file", ready]
    for o in overrides:
        cmd += ["--override", o]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(ready):
            text = open(ready).read()
            if text.endswith("\n"):
                return proc, text.strip()
        if proc.poll() is not None:
            raise RuntimeError("broker exited early; see " + log.name)
        time.sleep(0.05)
    raise RuntimeError("broker not ready in 120 s")


def stop_broker(proc):
    """SIGTERM to the broker's process group; SIGKILL if it does not stop in 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except Exception:  # noqa: BLE001
        os.killpg(proc.pid, signal.SIGKILL)
