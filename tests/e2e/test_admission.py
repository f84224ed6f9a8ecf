"""Operator blocks through the real web servers: `mcp-fcgi block` run beside a live
site cuts a user off at once in every responder process (mod_fcgid runs several),
and `unblock` restores access."""
from __future__ import annotations

import subprocess

from conftest import mint_token
from mcp_http import Endpoint

BLOCKED_OID = "33333333-3333-4333-8333-333333333333"


def operator(endpoint: Endpoint, *args: str) -> subprocess.CompletedProcess:
    """Runs the stack's own binary against the stack's own config, as an operator would."""
    run_dir = endpoint.stack.run_dir
    return subprocess.run([str(run_dir / "bin" / "mcp-fcgi"), *args, "--config", str(run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_block_and_unblock_take_effect_at_once(endpoint: Endpoint):
    token = mint_token(endpoint.stack, "--oid", BLOCKED_OID)
    auth = {"Authorization": f"Bearer {token}"}
    # Several requests first, so that every responder process has loaded (and cached) the blocks.
    for _ in range(6):
        assert endpoint.legacy("ping", headers=auth).status == 200
    try:
        done = operator(endpoint, "block", "--user", BLOCKED_OID, "--until", "1h", "--reason", "e2e")
        assert done.returncode == 0, done.stderr
        listed = operator(endpoint, "blocks")
        assert BLOCKED_OID in listed.stdout, listed
        for _ in range(6):
            reply = endpoint.legacy("ping", headers=auth)
            assert reply.status == 403, (reply, endpoint.stack.logs())
            assert reply.error["code"] == -32003
        # Others are not affected.
        assert endpoint.legacy("ping").status == 200
    finally:
        undone = operator(endpoint, "unblock", "--user", BLOCKED_OID)
    assert undone.returncode == 0, undone.stderr
    for _ in range(6):
        assert endpoint.legacy("ping", headers=auth).status == 200
