"""`okr-sync demo`: the whole flow on the built-in sandbox, without credentials, in a folder
that keeps its plan, `.env`, state and report for the commands it prints."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values
from typer.testing import CliRunner

from okr_sync.cli.demo import (
    DATABASE_FILE,
    NEXT_HEADING,
    PLAN_FILE,
    REPORT_FILE,
)
from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import check_variables

runner = CliRunner()
MAIN = "from okr_sync.cli.main import main; main()"


def _environment() -> dict[str, str]:
    # The demo and the commands it prints must work without any OKR_SYNC_* setting.
    return {k: v for k, v in os.environ.items() if not k.startswith("OKR_SYNC_")}


def _okr_sync(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", MAIN, *args], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def _printed_next_commands(stdout: str) -> tuple[str, list[list[str]]]:
    """The folder of the `cd` line and the okr-sync commands listed after the heading."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(NEXT_HEADING))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        block.append(shlex.split(line))
    assert block[0][0] == "cd", block
    return block[0][1], [words for words in block[1:] if words[0] == "okr-sync"]


def test_demo_given_no_credentials_runs_the_whole_flow(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--issues", "300"], env={})
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "pass 3" in result.stdout and "reply  slack:C0DEMO0001" in result.stdout
    # The demo stays: everything it made is in ./okr-sync-demo/, nothing else in the cwd.
    assert [p.name for p in tmp_path.iterdir()] == ["okr-sync-demo"]
    kept = {p.name for p in (tmp_path / "okr-sync-demo").iterdir()}
    assert {PLAN_FILE, ".env", DATABASE_FILE, REPORT_FILE} <= kept


def test_demo_given_a_run_prints_the_posted_slack_message_and_teams_card_as_text(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--issues", "300"], env={})
    assert result.exit_code == 0, result.stdout + result.stderr
    slack = result.stdout.split("the standing Slack message in C0DEMO0001, as text")[1]
    slack, teams = slack.split("the standing Teams card, as text")
    # Text taken from the payloads the sandboxes received, not JSON.
    for shown in (slack, teams):
        assert "OPS-1.KR2 Clear the on-call backlog" in shown
        assert '"type"' not in shown and "TextRun" not in shown
    assert "\n  CO-1 · Win the enterprise segment\n" in teams  # containers are indented


def test_demo_given_a_folder_prints_next_commands_that_work_there_after_it_exited(
    tmp_path: Path,
) -> None:
    demo = _okr_sync(["demo", "--dir", "demo-here", "--issues", "300"], cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    folder, commands = _printed_next_commands(demo.stdout)
    where = tmp_path / folder
    assert where == tmp_path / "demo-here"
    assert [c[1] for c in commands] == ["status", "explain", "report"]
    objective_ids = [o.id for o in load_plan(where / PLAN_FILE).objectives]

    for words in commands:
        (where / "okr-sync-report.html").unlink(missing_ok=True)
        done = _okr_sync(words[1:], cwd=where)
        assert done.returncode == 0, (words, done.stdout, done.stderr)
        if words[1] == "status":
            assert "CO-1.KR1" in done.stdout and "last ok run: #3" in done.stdout
        elif words[1] == "explain":
            assert words[2] in done.stdout and " items, " in done.stdout
        else:
            report = where / words[words.index("--output") + 1]
            html = report.read_text("utf-8")
            assert all(objective_id in html for objective_id in objective_ids)


def test_demo_given_its_folder_env_names_only_known_settings_and_no_secret(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--issues", "300", "--dir", "d"], env={})
    assert result.exit_code == 0, result.stdout + result.stderr
    values = dotenv_values(tmp_path / "d" / ".env")
    assert values == {"OKR_SYNC_PLAN": PLAN_FILE,
                      "OKR_SYNC_DATABASE_URL": f"sqlite:///{DATABASE_FILE}"}
    check_variables(values)  # raises on an unknown OKR_SYNC_* name


def test_demo_given_the_same_folder_twice_starts_the_state_over(tmp_path: Path) -> None:
    for _ in range(2):
        demo = _okr_sync(["demo", "--dir", "d", "--issues", "300"], cwd=tmp_path)
        assert demo.returncode == 0, demo.stdout + demo.stderr
    status = _okr_sync(["status"], cwd=tmp_path / "d")
    assert status.returncode == 0, status.stderr
    # Three passes of the second demo, not six: the first demo's state was dropped.
    assert "last ok run: #3" in status.stdout


def test_demo_given_a_bad_plan_exits_2_before_making_the_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("version: 1\nobjectives: []\nsurprise: 1\n")
    result = runner.invoke(app, ["demo", "--plan", "bad.yaml", "--dir", "d"], env={})
    assert result.exit_code == 2
    assert not (tmp_path / "d").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_demo_given_serve_serves_report_and_metrics_until_sigterm_then_exits_0(
    tmp_path: Path,
) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", MAIN, "demo", "--serve", "--port", str(port), "--dir", "d",
         "--issues", "300"],
        cwd=tmp_path, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "serve never answered /healthz"
            time.sleep(0.2)
        metrics = requests.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200 and "okr_sync_" in metrics.text
        report = requests.get(f"{base}/report", timeout=5)
        assert report.status_code == 200 and "CO-1" in report.text
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"{base}/report" in out and f"{base}/metrics" in out
