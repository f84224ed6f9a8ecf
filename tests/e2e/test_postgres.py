"""Two hosts, one truth: an nginx site and an Apache (mod_proxy_fcgi) site, each with its own
responders and state directory, on one PostgreSQL started here (Debian's binaries, initdb in a
temporary directory, unix socket only). One per-user limit across both, a block on one refusing
on the other, a session from one used on the other, one audit trail with every answered request
of both, an API key made on one host and revoked there refused on the other, and a PostgreSQL
stopped and restarted under load: only 503s while it is down, /ready counting the records that wait
in the journals meanwhile, nothing lost from the trail."""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BASE_PORT, DEV_TENANT, e2e_config, mint_token, selected, stack_cmd, stack_down, stack_up
from mcp_http import Endpoint

PORTS = {"nginx": BASE_PORT + 60, "apache-proxy": BASE_PORT + 61}


class Postgres:
    """A throwaway server: as root it runs as nobody (initdb refuses root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                        "install postgresql (scripts/deps does)", pytrace=False)
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-pg-e2e-"))
        os.chmod(self.dir, 0o755)  # the responders (www-data) reach the socket in it
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
        self.run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.psql("CREATE DATABASE mcp")

    def run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "nobody", "--", *argv]
        out = self.dir / "command.log"
        with open(out, "w") as f:  # not a pipe: the server pg_ctl starts would keep it open
            os.chmod(out, 0o666)
            done = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, cwd="/")
        assert done.returncode == 0, out.read_text()

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-o",
                 f"-k {self.dir} -c listen_addresses='' -c max_connections=200", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-h", str(self.dir), "-U", "postgres",
                               "-d", database, "-c", sql], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    @property
    def url(self) -> str:
        return f"host={self.dir} user=postgres dbname=mcp sslmode=disable"

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hosts(postgres, binary, tmp_path_factory):
    servers = selected(list(PORTS))
    if len(servers) < 2:
        pytest.fail("test_postgres needs both nginx and apache-proxy (E2E_SERVERS)", pytrace=False)
    stacks, configs = [], []
    try:
        for server in servers:
            config = e2e_config(PORTS[server])
            config["store"] = {"engine": "postgres", "url": postgres.url, "statement_timeout_ms": 1000,
                               "pool_wait_ms": 1000, "connect_timeout_seconds": 2}
            config["sessions"] = {"enabled": True, "idle_minutes": 5}
            config["rate_limits"] = {"user_per_minute": 1, "user_burst": 4, "tenant_per_minute": 0}
            config["auth"]["providers"] = [{"type": "entra"}, {"type": "api_key"}]
            stacks.append(stack_up(server, PORTS[server], binary, tmp_path_factory.mktemp(f"pg-{server}"), config))
            configs.append(config)
        share_api_key_secret(stacks, configs, binary, tmp_path_factory)
        yield [Endpoint(server=s.server, base_url=s.base_url, mcp_path="/mcp", token=s.token, stack=s) for s in stacks]
    finally:
        for s in stacks:
            stack_down(s)


def share_api_key_secret(stacks, configs, binary, tmp_path_factory) -> None:
    """What the README asks of a site of several hosts: one API key secret on all of them. The
    first host's is copied into the others' state directories, which are then started again
    (`scripts/stack up` keeps a run dir's state)."""
    secret = stacks[0].run_dir / "state" / "api-keys.key"
    for stack, config in zip(stacks[1:], configs[1:]):
        target = stack.run_dir / "state" / "api-keys.key"
        owner = os.stat(target)
        shutil.copyfile(secret, target)
        os.chown(target, owner.st_uid, owner.st_gid)
        os.chmod(target, 0o600)
        path = tmp_path_factory.mktemp(f"pg-{stack.server}-again") / "config.json"
        path.write_text(json.dumps(config))
        done = stack_cmd("up", "--server", stack.server, "--port", str(stack.port), "--run-dir", str(stack.run_dir),
                         "--binary", str(binary), "--config", str(path))
        assert done.returncode == 0, done.stdout + done.stderr


def cli(endpoint: Endpoint, *args: str) -> subprocess.CompletedProcess:
    run_dir = endpoint.stack.run_dir
    return subprocess.run([str(run_dir / "bin" / "mcp-fcgi"), *args, "--config", str(run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30)


def as_user(endpoint: Endpoint, oid: str) -> Endpoint:
    """The same site, with a token for user `oid` minted by that site's own development key."""
    return Endpoint(server=endpoint.server, base_url=endpoint.base_url, mcp_path="/mcp",
                    token=mint_token(endpoint.stack, "--oid", oid), stack=endpoint.stack)


def new_user() -> str:
    return str(uuid.uuid4())


def trail(postgres: Postgres, oid: str) -> list[tuple[str, int]]:
    rows = postgres.psql(f"SELECT request_id, http_status FROM audit WHERE user_id = '{oid}' ORDER BY time", "mcp")
    return [(r.split("|")[0], int(r.split("|")[1])) for r in rows.splitlines() if r]


def wait_for_trail(postgres: Postgres, oid: str, count: int, seconds: float = 30) -> list[tuple[str, int]]:
    """The journals move records in the background: wait until `count` of them have arrived."""
    deadline = time.time() + seconds
    rows = trail(postgres, oid)
    while len(rows) < count and time.time() < deadline:
        time.sleep(0.2)
        rows = trail(postgres, oid)
    return rows


def test_one_limit_across_both_hosts(hosts, postgres):
    oid = new_user()
    a, b = (as_user(h, oid) for h in hosts)
    statuses = [a.legacy("ping").status, b.legacy("ping").status, a.legacy("ping").status, b.legacy("ping").status]
    assert statuses == [200, 200, 200, 200]
    refused = [a.legacy("ping"), b.legacy("ping")]
    assert [r.status for r in refused] == [429, 429], refused
    assert all(r.headers.get("retry-after") for r in refused)
    rows = wait_for_trail(postgres, oid, 6)
    assert [s for _, s in rows] == [200, 200, 200, 200, 429, 429]


def test_a_block_on_one_host_refuses_on_the_other(hosts):
    oid = new_user()
    a, b = (as_user(h, oid) for h in hosts)
    assert b.legacy("ping").status == 200
    run_dir = a.stack.run_dir
    done = subprocess.run([str(run_dir / "bin" / "mcp-fcgi"), "block", "--user", oid, "--until", "1h",
                           "--config", str(run_dir / "config.json")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b.legacy("ping").status == 403
    assert a.legacy("ping").status == 403


def test_a_session_from_one_host_is_used_on_the_other(hosts):
    oid = new_user()
    a, b = (as_user(h, oid) for h in hosts)
    init = a.legacy("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                   "clientInfo": {"name": "e2e", "version": "0"}}, version=None)
    sid = init.headers.get("mcp-session-id")
    assert init.status == 200 and sid, init
    assert b.legacy("ping", headers={"Mcp-Session-Id": sid}).status == 200
    assert b.request("DELETE", "/mcp", headers={"Mcp-Session-Id": sid}).status == 204
    assert a.legacy("ping", headers={"Mcp-Session-Id": sid}).status == 404


def test_an_api_key_revoked_on_one_host_is_refused_on_the_other(hosts, postgres):
    a, b = hosts
    made = cli(a, "apikey", "create", "--name", "nightly export", "--tenant", DEV_TENANT, "--roles", "MCP.User", "--expires", "1d")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key[5:21]
    assert postgres.psql(f"SELECT tenant, roles, revoked IS NULL FROM api_keys WHERE id = '{key_id}'", "mcp") == f"{DEV_TENANT}|MCP.User|t"
    assert key[22:] not in postgres.psql("SELECT string_agg(hmac || name, ',') FROM api_keys", "mcp"), "only a keyed hash is kept"
    with_key = [Endpoint(server=h.server, base_url=h.base_url, mcp_path="/mcp", token=key, stack=h.stack) for h in hosts]
    assert [h.legacy("ping").status for h in with_key] == [200, 200]
    assert key_id in cli(b, "apikey", "list").stdout, "the other host lists the key from the one store"
    revoked = cli(a, "apikey", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    refused = with_key[1].legacy("ping")
    assert refused.status == 401 and "The API key has been revoked." in refused.headers.get("www-authenticate", ""), refused
    assert with_key[0].legacy("ping").status == 401
    assert [s for _, s in wait_for_trail(postgres, f"apikey:{key_id}", 2)][:2] == [200, 200], "both uses audited with the key's id"


def ready_backlog(hosts) -> list[dict]:
    return [h.request("GET", "/ready").json for h in hosts]


def test_postgres_restarted_under_load_only_503s_and_nothing_lost(hosts, postgres):
    # Users enough that none runs out of its burst of 4 (two requests on each host): the limit is not
    # what this test is about.
    oids = [new_user() for _ in range(20)]
    per_host = [[as_user(h, oid) for oid in oids] for h in hosts]
    answered: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(users: list[Endpoint]) -> None:
        i = 0
        while not stop.is_set() and i < 2 * len(users):
            status = users[i % len(users)].legacy("ping").status
            with lock:
                answered.append(status)
            i += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=load, args=(users,)) for users in per_host]
    for t in threads:
        t.start()
    time.sleep(1)
    postgres.stop()
    time.sleep(1)
    # While the store is down: not ready, and the records answered meanwhile wait in the journals.
    down = ready_backlog(hosts)
    time.sleep(0.5)
    postgres.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert [r["status"] for r in down] == ["not_ready", "not_ready"], down
    assert sum(r["audit_records_waiting"] for r in down) > 0, down
    assert all(r["audit_oldest_waiting_seconds"] is not None for r in down if r["audit_records_waiting"]), down
    assert set(answered) <= {200, 503}, sorted(set(answered))
    assert 503 in answered and 200 in answered, answered
    # After the restart both hosts serve again without a restart of their own.
    fresh = new_user()
    oids.append(fresh)
    assert [as_user(h, fresh).legacy("ping").status for h in hosts] == [200, 200]
    expected = sorted(answered + [200, 200])
    deadline = time.time() + 60
    rows: list[tuple[str, int]] = []
    while time.time() < deadline:
        rows = [row for oid in oids for row in trail(postgres, oid)]
        if len(rows) >= len(expected):
            break
        time.sleep(0.3)
    assert sorted(s for _, s in rows) == expected, (len(rows), len(expected))
    assert len({r for r, _ in rows}) == len(rows), "one row per request"
    # Everything shipped: nothing waits any more.
    deadline = time.time() + 30
    after = ready_backlog(hosts)
    while any(r["audit_records_waiting"] for r in after) and time.time() < deadline:
        time.sleep(0.3)
        after = ready_backlog(hosts)
    assert [(r["status"], r["audit_records_waiting"], r["audit_oldest_waiting_seconds"]) for r in after] == \
        [("ready", 0, None)] * 2, after


# ------------------------------------------------------------------ libpq is loaded on first use

LIBPQ_MISSING = ('store.engine: "postgres" needs libpq, which this host cannot load: cannot load libpq.so.5 '
                 '(Debian package libpq5): {}/libpq.so.5: file too short')


def without_libpq(tmp_path: Path) -> tuple[dict, Path]:
    """An environment in which libpq cannot be loaded: the dynamic loader finds an empty
    libpq.so.5 on LD_LIBRARY_PATH first (as a host without libpq5 finds none)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libpq.so.5").write_bytes(b"")
    return {**os.environ, "LD_LIBRARY_PATH": str(lib)}, lib


def test_without_libpq_a_postgres_deployment_is_refused_with_the_reason(binary, tmp_path):
    env, lib = without_libpq(tmp_path)
    config = e2e_config(BASE_PORT + 62)
    config["store"] = {"engine": "postgres", "url": "host=/nonexistent dbname=mcp"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config | {"state_dir": str(tmp_path / "state")}))
    expected = LIBPQ_MISSING.format(lib)
    for argv in (["check-config"], ["doctor"], ["serve", "--listen", f"unix:{tmp_path}/r.sock"]):
        done = subprocess.run([str(binary), *argv, "--config", str(path)], env=env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        assert done.returncode == 78, (argv, done.returncode, done.stderr)
        assert expected in done.stdout + done.stderr, (argv, done.stdout, done.stderr)
    # Run as CGI, as a web server runs it: the same config error, exit 78 (the web server answers 500).
    cgi = subprocess.run([str(binary)], env=env | {"MCP_FCGI_CONFIG": str(path), "REQUEST_METHOD": "GET",
                                                   "REQUEST_URI": "/mcp", "SCRIPT_NAME": "/mcp"},
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert (cgi.returncode, cgi.stdout) == (78, ""), cgi
    assert expected in cgi.stderr


def test_without_libpq_store_migrate_names_the_missing_library(binary, tmp_path):
    env, lib = without_libpq(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(e2e_config(BASE_PORT + 62) | {"state_dir": str(tmp_path / "state")}))
    done = subprocess.run([str(binary), "store", "migrate", "--to", "host=/nonexistent dbname=mcp", "--config", str(path)],
                          env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done
    assert LIBPQ_MISSING.format(lib).removeprefix("store.engine: ") in done.stderr, done.stderr


def test_a_sqlite_deployment_never_loads_libpq(binary, tmp_path):
    """With libpq unloadable, a SQLite deployment answers as ever: nothing of it needs libpq."""
    env, _ = without_libpq(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(e2e_config(BASE_PORT + 62) | {"state_dir": str(tmp_path / "state")}))
    token = subprocess.run([str(binary), "dev-token", "--config", str(path)], env=env, capture_output=True, text=True,
                           timeout=30, check=True).stdout.strip().splitlines()[-1]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
    cgi = subprocess.run([str(binary)], input=body, capture_output=True, text=True, timeout=30,
                         env=env | {"MCP_FCGI_CONFIG": str(path), "REQUEST_METHOD": "POST", "REQUEST_URI": "/mcp",
                                    "SCRIPT_NAME": "/mcp", "CONTENT_TYPE": "application/json",
                                    "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
                                    "HTTP_ACCEPT": "application/json, text/event-stream",
                                    "HTTP_MCP_PROTOCOL_VERSION": "2025-06-18", "HTTP_AUTHORIZATION": f"Bearer {token}"})
    assert cgi.returncode == 0, cgi.stderr
    assert cgi.stdout.startswith("Status: 200"), cgi.stdout
    assert '"isError":false' in cgi.stdout.replace(" ", ""), cgi.stdout
