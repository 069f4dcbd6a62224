"""`okr-sync serve` as a user runs it: a subprocess with a schedule, health and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.store.locks import RunLock
from support.paths import DEMO_PLAN

# Processes started and killed: long, so `-m 'not slow'` leaves them out locally.
pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=4) as w:
        yield w


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, status: int, deadline: float) -> requests.Response:
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=2)
            if last.status_code == status:
                return last
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {status} (last: {last and last.status_code})")


def test_serve_given_interval_syncs_reports_ready_and_stops_on_sigterm(world, tmp_path) -> None:
    lines = [line for line in DEMO_PLAN.read_text().splitlines(keepends=True)
             if "teams_bot:" not in line]
    plan = tmp_path / "plan.yaml"
    plan.write_text("".join(lines))
    port = _free_port()
    env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(plan)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "serve",
         "--interval", "2s", "--port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        assert _wait_for(f"{base}/healthz", 200, deadline).json()["status"] == "ok"
        _wait_for(f"{base}/readyz", 200, deadline)
        while not world.slack.top_level(DEMO_CHANNEL) and time.monotonic() < deadline:
            time.sleep(0.2)  # the first scheduled pass posts the standing message
        assert len(world.slack.top_level(DEMO_CHANNEL)) == 1
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert "okr_sync" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(entry.get("msg") == "pass finished" for entry in logs)
    assert env["OKR_SYNC_SLACK_BOT_TOKEN"] not in err
    lock = RunLock(env["OKR_SYNC_DATABASE_URL"], "run")
    assert lock.try_acquire()
    lock.release()


def test_serve_given_bad_schedule_exits_2(world, tmp_path) -> None:
    env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(DEMO_PLAN)}
    result = subprocess.run(
        [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "serve",
         "--interval", "soon"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
