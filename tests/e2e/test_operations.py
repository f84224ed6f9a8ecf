"""Operations surface through the real web servers and as systemd would run it:
/ready, /metrics (counted across every process), JSON logs whose request id is also in
the audit trail, check-config, doctor, and socket activation with systemd-socket-activate."""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import fcgi_client
from conftest import BASE_PORT, REPO, e2e_config, mint_token, responder_config, selected
from mcp_http import Endpoint


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


WHOAMI_200 = 'mcp_requests_total{method="tools/call",tool="whoami",status="200"}'


def test_ready(endpoint: Endpoint):
    reply = endpoint.request("GET", "/ready")
    assert reply.status == 200, reply
    assert reply.json["status"] == "ready", reply
    # How far behind the audit shipping is: journals not yet moved into the store.
    assert set(reply.json) == {"status", "audit_journals_waiting", "audit_records_waiting", "audit_oldest_waiting_seconds"}, reply
    assert reply.json["audit_journals_waiting"] >= 0 and reply.json["audit_records_waiting"] >= 0, reply


def test_metrics_count_every_process(endpoint: Endpoint):
    before = endpoint.request("GET", "/metrics")
    assert before.status == 200, before
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4"), before.headers
    calls = 12  # mod_fcgid spreads these over several processes
    for _ in range(calls):
        assert endpoint.legacy("tools/call", {"name": "whoami", "arguments": {}}).status == 200
    assert endpoint.legacy("ping", headers={"Authorization": "Bearer not-a-token"}).status == 401
    after = endpoint.request("GET", "/metrics").body.decode()
    assert metric(after, WHOAMI_200) - metric(before.body.decode(), WHOAMI_200) == calls, after
    assert metric(after, 'mcp_auth_failures_total{reason="malformedToken"}') >= 1, after
    assert "# TYPE mcp_requests_total counter" in after
    assert endpoint.token not in after
    # The reference parser reads every family: the exposition format is right.
    families = {f.name: f for f in text_string_to_metric_families(after)}
    assert families["mcp_requests"].type == "counter", families.keys()
    assert families["mcp_processes"].type == "gauge"
    assert families["mcp_processes"].samples[0].value >= 1


def test_cgi_metrics_count_one_process_per_request(cgi_endpoint: Endpoint):
    before = cgi_endpoint.request("GET", "/metrics").body.decode()
    for _ in range(3):
        assert cgi_endpoint.legacy("tools/call", {"name": "whoami", "arguments": {}}).status == 200
    after = cgi_endpoint.request("GET", "/metrics").body.decode()
    assert metric(after, WHOAMI_200) - metric(before, WHOAMI_200) == 3, after
    assert cgi_endpoint.request("GET", "/ready").status == 200


@pytest.mark.parametrize("server", selected(["nginx"]))
def test_request_id_in_json_log_and_audit_trail(stacks, server):
    stack = stacks.get(server)
    ep = Endpoint(server=server, base_url=stack.base_url, mcp_path="/mcp", token=stack.token, stack=stack)
    reply = ep.legacy("ping", headers={"Authorization": "Bearer expired.or.bogus"})
    assert reply.status == 401
    request_id = reply.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id), request_id
    log = stack.run_dir / "logs" / "responder.log"
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        lines = [json.loads(l) for l in log.read_text().splitlines() if l.startswith("{")]
        if any(l.get("request_id") == request_id for l in lines):
            break
        time.sleep(0.1)
    mine = [l for l in lines if l.get("request_id") == request_id]
    assert mine and mine[0]["level"] == "info" and mine[0]["reason"] == "malformedToken", lines[-5:]
    assert all({"time", "level", "msg", "pid"} <= set(l) for l in lines)
    assert "expired.or.bogus" not in log.read_text()
    tail = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "tail", "--lines", "50",
                           "--config", str(stack.run_dir / "config.json")], capture_output=True, text=True, timeout=30)
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(l) for l in tail.stdout.splitlines()]
    assert any(r["request_id"] == request_id and r["reason"] == "malformedToken" for r in records), records[-3:]


def test_system_status_tool(endpoint: Endpoint):
    admin = mint_token(endpoint.stack, "--roles", "MCP.Admin")
    reply = endpoint.legacy("tools/call", {"name": "system_status", "arguments": {}},
                            headers={"Authorization": f"Bearer {admin}"})
    assert reply.status == 200, reply
    status = reply.result["structuredContent"]
    assert status["store"]["healthy"] is True
    assert status["worker_threads"] >= 1
    assert status["processes"] >= 1
    assert admin not in reply.body.decode()
    assert endpoint.legacy("tools/call", {"name": "system_status", "arguments": {}}).status == 403


# ------------------------------------------------------------------ commands


def run(binary: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)


def test_check_config_lists_every_problem(binary, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"server": {"public_url": "ftp://x", "wrkers": 2},
                               "metrics": {"allowed_networks": ["10.0.0.0/33"]},
                               "auth": {"mode": "development", "tenant_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}}))
    proc = run(binary, "check-config", "--config", str(bad))
    assert proc.returncode == 78, proc
    lines = proc.stdout.splitlines()
    assert f"{bad}: server.public_url: must be an absolute http(s) URL without query or fragment" in lines
    assert any(l.startswith(f"{bad}: server.wrkers: unknown setting") for l in lines)
    assert any(l.startswith(f"{bad}: metrics.allowed_networks[0]: '10.0.0.0/33' is not an IP network") for l in lines)
    assert any(l.startswith(f"{bad}: auth.audiences:") for l in lines)
    assert lines[-1] == "4 problem(s) found"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(e2e_config(BASE_PORT)))
    ok = run(binary, "check-config", "--config", str(good))
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == f"{good}: OK", ok


def test_doctor(binary, tmp_path):
    cfg = e2e_config(BASE_PORT)
    cfg["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(cfg))
    if os.geteuid() == 0:
        # Run as root, doctor does not create the state directory (it would lock the service out).
        missing = run(binary, "doctor", "--config", str(path))
        assert missing.returncode == 1 and "create it owned by the service user" in missing.stdout, missing
    (tmp_path / "state").mkdir(mode=0o700)
    ok = run(binary, "doctor", "--config", str(path))
    assert ok.returncode == 0, ok
    assert re.search(r"^state directory\s+PASS", ok.stdout, re.M), ok.stdout
    assert re.search(r"^shared store\s+PASS", ok.stdout, re.M), ok.stdout
    assert ok.stdout.endswith("all checks passed\n")
    # An Entra config whose login host does not answer: discovery fails, with the fix named.
    cfg["auth"] = {"tenant_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "client_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
                   "authority": f"http://127.0.0.1:{BASE_PORT + 98}", "allow_insecure_http_for_testing": True}
    path.write_text(json.dumps(cfg))
    bad = run(binary, "doctor", "--config", str(path))
    assert bad.returncode == 1, bad
    assert re.search(r"^OpenID discovery\s+FAIL .*check outbound HTTPS", bad.stdout, re.M), bad.stdout
    assert "1 check(s) failed" in bad.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the switch to the state directory's owner happens only as root")
def test_root_run_command_becomes_the_state_owner_and_follows_no_link(binary, tmp_path):
    """`sudo mcp-fcgi blocks` reads the (root-only) config, then becomes the state directory's owner:
    a link that user planted in place of the store is refused, and its root-owned target is untouched."""
    service = pwd.getpwnam("www-data")
    # Outside the root-only pytest directory, so the service user can reach it once the command is that user.
    base = Path(tempfile.mkdtemp(prefix="mcp-fcgi-owner-", dir="/tmp"))
    try:
        os.chmod(base, 0o711)
        state = base / "state"
        state.mkdir(mode=0o700)
        os.chown(state, service.pw_uid, service.pw_gid)
        cfg = e2e_config(BASE_PORT)
        cfg["state_dir"] = str(state)
        path = tmp_path / "root-only.json"
        path.write_text(json.dumps(cfg))
        os.chmod(path, 0o600)
        victim = base / "victim"
        victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
        os.chmod(victim, 0o644)
        (state / "mcp-fcgi.db").symlink_to(victim)

        refused = run(binary, "blocks", "--config", str(path))
        assert refused.returncode != 0, refused
        assert f"{state}/mcp-fcgi.db is a symbolic link: refusing to follow it" in refused.stderr, refused
        st = os.stat(victim)
        assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o644)
        assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"

        # Without the link the command works, and everything it made belongs to the service user.
        (state / "mcp-fcgi.db").unlink()
        blocked = run(binary, "block", "--config", str(path), "--user", "11111111-1111-4111-8111-111111111111")
        assert blocked.returncode == 0, blocked
        listed = run(binary, "blocks", "--config", str(path))
        assert "11111111-1111-4111-8111-111111111111" in listed.stdout, listed
        owners = {f.name: (f.lstat().st_uid, f.lstat().st_gid) for f in state.iterdir()}
        assert "mcp-fcgi.db" in owners and "mcp-fcgi.db.blocks" in owners, owners
        assert set(owners.values()) == {(service.pw_uid, service.pw_gid)}, owners
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ systemd


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate missing")
def test_socket_activation(binary, tmp_path):
    """The way mcp-fcgi.socket starts the service: the listening socket on fd 3, LISTEN_FDS=1."""
    config = responder_config(tmp_path, e2e_config(BASE_PORT, workers=2))
    sock = str(tmp_path / "mcp-fcgi.sock")
    stderr = open(tmp_path / "stderr.log", "w+")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", sock, "-E", f"MCP_FCGI_CONFIG={config}",
                             str(binary), "serve"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None and time.time() < deadline, "socket never appeared"
            time.sleep(0.05)
        # The first connection starts mcp-fcgi; later ones reach its worker threads.
        status, _, body = fcgi_client.request(sock, "GET", "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, _, body = fcgi_client.request(sock, "GET", "/ready")
        assert status == 200, body
        status, headers, body = fcgi_client.request(sock, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain"), body
        assert metric(body.decode(), "mcp_processes") == 1, body
        assert metric(body.decode(), 'mcp_http_requests_total{path="/health",status="200"}') == 1, body
        # Deny by default: only loopback may read metrics unless configured otherwise.
        status, _, body = fcgi_client.request(sock, "GET", "/metrics", remote_addr="192.0.2.10")
        assert status == 403, body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        stderr.seek(0)
        lines = [json.loads(l) for l in stderr.read().splitlines() if l.startswith("{")]
        serving = [l for l in lines if l["msg"] == "serving FastCGI"]
        assert serving and serving[0]["listen"] == "fd 3", lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_units_parse(binary, tmp_path):
    """systemd-analyze reads both units; any unknown or malformed setting is reported."""
    units = sorted(p.name for p in (REPO / "deploy" / "systemd").iterdir())
    assert units == ["mcp-fcgi.service", "mcp-fcgi.socket"], units
    for unit in (REPO / "deploy" / "systemd").iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/bin/mcp-fcgi", str(binary)))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "mcp-fcgi.socket"),
                           str(tmp_path / "mcp-fcgi.service")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:/lib/systemd/system"})
    # Without a running systemd the socket unit is not resolvable as a dependency; everything
    # else (every key of both files) is parsed and checked.
    problems = [l for l in proc.stderr.splitlines() if "mcp-fcgi.socket not found" not in l]
    assert problems == [], proc.stderr
    socket = (REPO / "deploy" / "systemd" / "mcp-fcgi.socket").read_text()
    # The web server's user alone may connect: group www-data is shared by other sites' PHP.
    for setting in ("ListenStream=/run/mcp-fcgi/mcp-fcgi.sock", "Accept=no", "SocketUser=www-data\n", "SocketMode=0600\n"):
        assert setting in socket, setting
    assert "SocketMode=0660" not in socket
    spawn = (REPO / "deploy" / "spawn-fcgi.sh").read_text()
    assert "-M 0600 -U www-data -G www-data" in spawn, spawn
    service = (REPO / "deploy" / "systemd" / "mcp-fcgi.service").read_text()
    for hardening in ("User=mcp-fcgi", "ProtectSystem=strict", "ReadWritePaths=/var/lib/mcp-fcgi", "NoNewPrivileges=yes",
                      "PrivateTmp=yes", "StateDirectory=mcp-fcgi", "CapabilityBoundingSet=\n"):
        assert hardening in service, hardening


def test_the_worker_count_comes_from_the_environment_when_a_web_server_starts_the_process(binary, tmp_path):
    """mod_fcgid passes no arguments: MCP_FCGI_WORKERS (FcgidInitialEnv) sets the worker threads,
    and a value out of range stops the start with 78 and a message naming it."""
    config = e2e_config(BASE_PORT)
    config["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "MCP_FCGI_CONFIG": str(path)}
    for bad in ("0", "257", "four", ""):
        proc = run(binary, "serve", "--listen", f"unix:{tmp_path}/w.sock", env={**env, "MCP_FCGI_WORKERS": bad})
        assert proc.returncode == 78, (bad, proc)
        assert "MCP_FCGI_WORKERS must be a whole number from 1 to 256" in proc.stderr, proc.stderr
    server = subprocess.Popen([str(binary), "serve", "--listen", f"unix:{tmp_path}/w.sock"], env={**env, "MCP_FCGI_WORKERS": "3"},
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        serving = None
        while serving is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            if '"serving FastCGI"' in line:
                serving = json.loads(line)
        assert serving is not None and serving["workers"] == 3, serving
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_binary_loads_only_the_shared_libraries_it_must(binary):
    """Every shared library costs a CGI process its symbol binding and relocations on each start,
    so the release binary needs only libcrypto (shared, so that OpenSSL's security updates apply
    at once), libfcgi and the C runtime. SQLite and libstdc++ are linked in; libcurl and libpq are
    opened with dlopen when first used, so they are not needed either."""
    proc = subprocess.run(["readelf", "--dynamic", "--wide", str(binary)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", proc.stdout))
    assert needed, proc.stdout
    assert {"libcrypto.so.3", "libfcgi.so.0", "libc.so.6"} <= needed, needed
    allowed = {"libcrypto.so.3", "libfcgi.so.0", "libm.so.6", "libgcc_s.so.1", "libc.so.6", "ld-linux-x86-64.so.2",
               "ld-linux-aarch64.so.1"}
    assert needed <= allowed, needed - allowed
