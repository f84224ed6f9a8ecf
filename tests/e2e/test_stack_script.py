"""scripts/stack itself: `up` is repeatable, `status` and `down` report truthfully."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BASE_PORT, e2e_config, selected, stack_cmd

PORT = BASE_PORT + 11


@pytest.mark.skipif("nginx" not in selected(["nginx"]), reason="E2E_SERVERS excludes nginx")
def test_stack_up_twice_status_down(binary, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(e2e_config(PORT)))
    run_dir = Path(f"/tmp/mcp-fcgi-e2e-{PORT}")  # www-data must reach it
    args = ["--port", str(PORT), "--run-dir", str(run_dir)]
    up = ["up", "--binary", str(binary), "--config", str(cfg), *args]
    try:
        first = stack_cmd(*up)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1] == f"http://127.0.0.1:{PORT}/mcp"
        old_pid = (run_dir / "responder.pid").read_text().strip()

        second = stack_cmd(*up)  # restarts cleanly on the same run dir
        assert second.returncode == 0, second.stderr
        assert "exited with status 0" in second.stderr, second.stderr
        assert (run_dir / "responder.pid").read_text().strip() != old_pid

        status = stack_cmd("status", *args)
        assert status.returncode == 0, status.stdout + status.stderr
        assert '"status"' in status.stdout and "running" in status.stdout
        # The run dir holds the generated config including the shipped snippet.
        assert f"include {run_dir}/conf/mcp-fcgi.conf;" in (run_dir / "nginx.conf").read_text()
        assert str(run_dir / "sock" / "mcp-fcgi.sock") in (run_dir / "conf" / "mcp-fcgi.conf").read_text()
    finally:
        down = stack_cmd("down", *args)
    assert down.returncode == 0, down.stderr
    assert "exited with status 0" in down.stderr, down.stderr
    assert stack_cmd("status", *args).returncode == 3
