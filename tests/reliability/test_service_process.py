"""``serve`` as real processes: SIGTERM stops cleanly; two replicas on PostgreSQL fail over.

Each service runs in a subprocess configured from the sandbox world's environment
(the way the CLI's ``serve`` command builds it), logging JSON lines to a file the
test reads to learn the port and follow progress. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.store.locks import Leadership, RunLock
from okr_sync.sync.store.store import Store
from support import killpoints
from support.paths import DEMO_PLAN

# Processes started and killed: long, so `-m 'not slow'` leaves them out locally.
pytestmark = pytest.mark.slow

WAIT_S = 30.0
T = TypeVar("T")

_SERVICE_SCRIPT = textwrap.dedent(
    """
    import runpy, sys
    from pathlib import Path
    from okr_sync.config.plan_loader import load_plan
    from okr_sync.config.settings import Settings
    from okr_sync.sync.logs import configure_logging
    from okr_sync.sync.runtime import build_runtime
    from okr_sync.sync.service.app import Schedule, serve

    interval, holder = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:  # pause at a named point: KILLPOINTS POINT N DIR
        points = runpy.run_path(sys.argv[3])
        points["install"](points["KillSwitch"](sys.argv[4], int(sys.argv[5]),
                                               Path(sys.argv[6])))
    configure_logging("INFO")  # stderr is a file here: JSON lines
    settings = Settings()
    plan = load_plan(settings.plan)
    sys.exit(serve(lambda: build_runtime(settings, plan), Schedule.parse(interval, None),
                   host="127.0.0.1", port=0, holder=holder,
                   webhook_secret=settings.webhook_secret))
    """
)

def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class ServiceProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    holder: str

    def records(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def messages(self) -> list[str]:
        return [str(r["msg"]) for r in self.records()]

    @property
    def url(self) -> str:
        def port() -> int | None:
            for record in self.records():
                if record["msg"] == "listening":
                    return int(record["port"])
            return None

        return f"http://127.0.0.1:{wait_for(f'{self.holder} to listen', port)}"

    def ready(self) -> dict[str, Any]:
        response = requests.get(self.url + "/readyz", timeout=5)
        body: dict[str, Any] = response.json()
        return body


def plan_without_teams_bot(tmp_path: Path) -> Path:
    """The demo plan minus the Teams bot route (whose login the subprocess cannot reach)."""
    text = DEMO_PLAN.read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if "teams_bot" not in line]
    path = tmp_path / "plan.yaml"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


@contextmanager
def service_process(world: SandboxWorld, workdir: Path, *, interval: str, holder: str,
                    database_url: str | None = None,
                    pause_at: tuple[str, int, Path] | None = None) -> Iterator[ServiceProcess]:
    env = dict(os.environ) | world.environment() | {
        "OKR_SYNC_PLAN": str(plan_without_teams_bot(workdir)),
        "OKR_SYNC_WEBHOOK_SECRET": "process-test-webhook-secret",
    }
    if database_url is not None:
        env["OKR_SYNC_DATABASE_URL"] = database_url
    log_path = workdir / f"{holder}.log"
    pause_args = []
    if pause_at is not None:
        point, n, pause_dir = pause_at
        pause_args = [killpoints.__file__, point, str(n), str(pause_dir)]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVICE_SCRIPT, interval, holder, *pause_args],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
        )
    service = ServiceProcess(proc, log_path, holder)
    try:
        yield service
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=150, seed=7) as w:
        yield w


def test_serve_given_sigterm_during_a_pass_finishes_it_and_exits_0_releasing_locks(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.jira.faults.latency(2.0, count=1, paths="/search")
    with service_process(world, tmp_path, interval="1h", holder="solo") as service:
        wait_for("the pass to start", lambda: "pass starting" in service.messages())
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=WAIT_S) == 0
    messages = service.messages()  # every line parsed as JSON: structured logs
    assert messages.index("stopping: the current step finishes first (signal again to abandon)"
                          ) < messages.index("pass finished") < messages.index("stopped")
    finished = next(r for r in service.records() if r["msg"] == "pass finished"
                    and r["logger"] == "okr_sync.service")
    assert finished["outcome"] == "ok"
    assert len(world.slack.messages(DEMO_CHANNEL)) == 1
    lock = RunLock(world.database_url, "run", holder="after")
    assert lock.try_acquire()
    lock.release()
    assert Leadership(world.database_url, holder="after").poll()
    with Store(world.database_url) as store:
        last = store.last_run()
        assert last is not None and (last.kind, last.outcome) == ("serve", "ok")


def test_serve_given_sigterm_while_idle_exits_0_at_once(
    world: SandboxWorld, tmp_path: Path
) -> None:
    with service_process(world, tmp_path, interval="1h", holder="idle") as service:
        wait_for("the first pass", lambda: "pass finished" in service.messages())
        assert requests.get(service.url + "/healthz", timeout=5).json() == {"status": "ok"}
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=WAIT_S) == 0
    assert service.messages()[-1] == "stopped"
    assert Leadership(world.database_url, holder="after").poll()


def test_serve_given_second_sigterm_abandons_the_pass_and_still_exits_0(
    world: SandboxWorld, tmp_path: Path
) -> None:
    world.jira.faults.latency(5.0, count=1, paths="/search")
    with service_process(world, tmp_path, interval="1h", holder="solo") as service:
        wait_for("the pass to start", lambda: "pass starting" in service.messages())
        service.proc.send_signal(signal.SIGTERM)
        wait_for("the stop to be acknowledged", lambda: any(
            m.startswith("stopping") for m in service.messages()))
        # Abandon it inside its (slow) Jira fetch, not while it takes the lock and epoch.
        wait_for("the pass to be under way", lambda: "pass started" in service.messages())
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=WAIT_S) == 0
    assert "pass abandoned on a second stop signal" in service.messages()
    assert world.slack.messages(DEMO_CHANNEL) == []
    lock = RunLock(world.database_url, "run", holder="after")
    assert lock.try_acquire()
    lock.release()
    with Store(world.database_url) as store:
        last = store.last_run()
        assert last is not None and last.outcome == "failed"
        assert last.error_summary == "PassAbandoned"


def _open_on_call(world: SandboxWorld, count: int) -> list[int]:
    chosen = [
        i.id for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
        if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
        and i.status_category != "done" and not i.is_subtask
    ]
    return chosen[:count]


@pytest.mark.postgres
def test_serve_given_two_replicas_on_postgres_one_leads_and_the_other_takes_over_on_kill(
    world: SandboxWorld, tmp_path: Path, postgres_url: str
) -> None:
    Store(postgres_url).close()  # migrate once up front
    interval = timedelta(seconds=2)
    with (
        service_process(world, tmp_path, interval="2s", holder="replica-a",
                        database_url=postgres_url) as a,
        service_process(world, tmp_path, interval="2s", holder="replica-b",
                        database_url=postgres_url) as b,
    ):
        def settled() -> tuple[ServiceProcess, ServiceProcess] | None:
            roles = {s.holder: s.ready() for s in (a, b)}
            leaders = [s for s in (a, b) if roles[s.holder]["role"] == "leader"]
            followers = [s for s in (a, b) if roles[s.holder]["role"] == "follower"]
            if len(leaders) == 1 and len(followers) == 1 and roles[leaders[0].holder]["passes"]:
                return leaders[0], followers[0]
            return None

        leader, follower = wait_for("one leader with a pass and one follower", settled)
        assert follower.ready()["status"] == "ready"
        leader_metrics = requests.get(leader.url + "/metrics", timeout=5).text
        follower_metrics = requests.get(follower.url + "/metrics", timeout=5).text
        assert "okr_sync_leader 1.0" in leader_metrics
        assert "okr_sync_leader 0.0" in follower_metrics
        assert 'okr_sync_passes_total{outcome="ok"} 0.0' in follower_metrics

        # Progress in Jira, then the leader dies without warning.
        world.dataset.advance(timedelta(minutes=30))
        for issue_id in _open_on_call(world, 4):
            world.dataset.transition(issue_id, "done")
        follower_url = follower.url
        killed_at = datetime.now(UTC)
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(timeout=WAIT_S)

        def took_over() -> dict[str, Any] | None:
            body = requests.get(follower_url + "/readyz", timeout=5).json()
            return body if body["role"] == "leader" and body["last_success"] else None

        state = wait_for("the follower to lead and complete a pass", took_over)
        leader_since = datetime.fromisoformat(state["leader_since"])
        assert leader_since - killed_at <= 2 * interval
        wait_for("the change to be delivered", lambda: any(
            m.thread_ts is not None for m in world.slack.messages(DEMO_CHANNEL)))
        time.sleep(2 * interval.total_seconds())  # one more pass of the new leader
        assert follower.proc.poll() is None

    messages = world.slack.messages(DEMO_CHANNEL)
    keys = Counter(
        (m.metadata or {}).get("event_payload", {}).get("idempotency_key") for m in messages)
    assert all(count == 1 for count in keys.values()), keys
    assert len([m for m in messages if m.thread_ts is None]) == 1  # one standing message
    notes = [m for m in messages if m.thread_ts is not None]
    assert len(notes) == 1 and "OPS-1.KR2" in notes[0].text
    with Store(postgres_url) as store:
        sent = [r.idempotency_key for r in store.list_outbox(status="sent")]
        assert len(sent) == len(set(sent))


@pytest.mark.postgres
def test_serve_given_leader_killed_between_a_post_and_its_ref_the_follower_posts_nothing_twice(
    world: SandboxWorld, tmp_path: Path, postgres_url: str
) -> None:
    Store(postgres_url).close()  # migrate once up front
    pause = tmp_path / "pause"
    pause.mkdir()
    with service_process(world, tmp_path, interval="2s", holder="replica-a",
                         database_url=postgres_url,
                         pause_at=("slack.after_post", 1, pause)) as leader:
        # The leader posted the standing message; its ref is not committed yet.
        wait_for("the leader to post", (pause / "reached").exists)
        assert leader.ready()["role"] == "leader"
        with service_process(world, tmp_path, interval="2s", holder="replica-b",
                             database_url=postgres_url) as follower:
            wait_for("the follower to start following", lambda: follower.ready()["role"]
                     == "follower")
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait(timeout=WAIT_S)

            def took_over() -> dict[str, Any] | None:
                body = follower.ready()
                return body if body["role"] == "leader" and body["last_success"] else None

            wait_for("the follower to lead and complete a pass", took_over)
            assert follower.proc.poll() is None

    messages = world.slack.messages(DEMO_CHANNEL)
    assert len(messages) == 1  # the leader's post, found again by its key, not repeated
    with Store(postgres_url) as store:
        rows = store.list_outbox(limit=None)
        ref = store.get_message_ref(f"slack:{DEMO_CHANNEL}", "scorecard")
    assert {r.status for r in rows if r.target == f"slack:{DEMO_CHANNEL}"} == {"sent"}
    assert ref is not None and ref.message_id == messages[0].ts
