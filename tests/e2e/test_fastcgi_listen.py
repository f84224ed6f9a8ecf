"""Who may reach a TCP FastCGI listener. Whoever connects chooses REMOTE_ADDR (proxy trust,
/metrics), so `--listen` must name its host and libfcgi's FCGI_WEB_SERVER_ADDRS allow-list
is always set: loopback unless the operator lists the web server. All on 127.0.0.0/8."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

import fcgi_client
from conftest import BASE_PORT, e2e_config, responder_config

PORT = BASE_PORT + 61


def serve(binary, tmp_path, listen: str, environment: dict[str, str]) -> subprocess.Popen:
    config = responder_config(tmp_path, e2e_config(PORT, workers=2))
    env = {k: v for k, v in os.environ.items() if k != "FCGI_WEB_SERVER_ADDRS"}
    return subprocess.Popen([str(binary), "serve", "--config", str(config), "--listen", listen],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr.log", "w"),
                            env={**env, **environment})


def health(source: str) -> int:
    status, _, _ = fcgi_client.request(("127.0.0.1", PORT), "GET", "/health", source=source, timeout=5)
    return status


def wait_listening(proc: subprocess.Popen):
    deadline = time.time() + 15
    while True:
        assert proc.poll() is None, "the responder exited"
        try:
            return health("127.0.0.1")
        except ConnectionRefusedError:
            assert time.time() < deadline, "never listened"
            time.sleep(0.05)
        except ConnectionError:
            return None


@pytest.fixture
def stop():
    started = []
    yield started.append
    for proc in started:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("allowed, admitted, refused", [
    ({}, "127.0.0.1", "127.0.0.2"),                                   # default: loopback only
    ({"FCGI_WEB_SERVER_ADDRS": "127.0.0.2"}, "127.0.0.2", "127.0.0.1"),  # the operator's list replaces it
])
def test_a_tcp_listener_admits_only_the_web_servers_addresses(binary, tmp_path, stop, allowed, admitted, refused):
    proc = serve(binary, tmp_path, f"127.0.0.1:{PORT}", allowed)
    stop(proc)
    wait_listening(proc)
    with pytest.raises(ConnectionError):
        health(refused)
    assert health(admitted) == 200
    # libfcgi closed the refused connection and went on serving.
    with pytest.raises(ConnectionError):
        health(refused)
    assert health(admitted) == 200
    lines = [json.loads(l) for l in (tmp_path / "stderr.log").read_text().splitlines() if l.startswith("{")]
    serving = [l for l in lines if l["msg"] == "serving FastCGI"]
    assert serving and serving[0]["web_server_addrs"] == allowed.get("FCGI_WEB_SERVER_ADDRS", "127.0.0.1"), lines


@pytest.mark.parametrize("listen, environment, message", [
    (f":{PORT}", {}, "name the address the web server connects to"),
    (f"0.0.0.0:{PORT}", {}, "0.0.0.0 is every interface"),
    (f"[::1]:{PORT}", {}, "libfcgi listens on IPv4 only"),
    (f"127.0.0.1:{PORT}", {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1, 127.0.0.2"}, "must list the web server's IPv4 addresses"),
])
def test_listen_addresses_that_would_admit_anyone_are_refused(binary, tmp_path, stop, listen, environment, message):
    proc = serve(binary, tmp_path, listen, environment)
    stop(proc)
    assert proc.wait(timeout=20) in (64, 71)
    assert message in (tmp_path / "stderr.log").read_text()
