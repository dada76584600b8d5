"""systemd's notification protocol, spoken by the real binary: READY=1 once it listens,
WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 as soon as SIGTERM arrives."""
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

from conftest import BINARY, ROOT, free_port


def receive(sock, timeout):
    """Every datagram that arrives within `timeout` seconds."""
    messages = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return messages


def test_ready_watchdog_and_stopping_reach_the_notify_socket(fake_upstream):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        config = pathlib.Path(tmp) / "sidecar.conf"
        config.write_text((ROOT / "sidecar.conf").read_text().replace(
            'base_url = "http://127.0.0.1:11434/v1"', f'base_url = "{fake_upstream}/v1"'))
        port = free_port()
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        proc = subprocess.Popen([BINARY, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                                 "--log-level", "warning"], env=env, cwd=ROOT)
        try:
            seen = []
            deadline = time.time() + 30
            while "READY=1" not in seen and time.time() < deadline:
                sock.settimeout(max(0.01, deadline - time.time()))
                try:
                    seen.append(sock.recv(4096).decode())
                except socket.timeout:
                    break
            assert "READY=1" in seen
            # Pings at half of the 0.4 s watchdog interval: several in 1.2 s.
            pings = [m for m in receive(sock, 1.2) if m == "WATCHDOG=1"]
            assert len(pings) >= 3
            proc.send_signal(signal.SIGTERM)
            after = receive(sock, 5)
            assert "STOPPING=1" in after
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            sock.close()


def test_without_a_notify_socket_nothing_is_sent_and_it_still_runs(fake_upstream):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    port = free_port()
    proc = subprocess.Popen([BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
                            env=env, cwd=ROOT)
    try:
        time.sleep(1.5)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
