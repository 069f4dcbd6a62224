"""Runs at once and a state store that disappears mid-pass, as real ``okr-sync run`` processes.

A pass is held at a named point (``support.killpoints`` in pause mode) instead of being
timed, so the overlap is certain however loaded the machine is: the other runs meet
the lock while the holder waits there, and the store is pulled away while the pass is
known to be in the middle.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from support import killpoints
from support.paths import slack_only_demo_plan

# Processes started and held: long, so `-m 'not slow'` leaves them out locally.
pytestmark = pytest.mark.slow

WAIT_S = 120.0
RUNS = 10
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=120, seed=13) as w:
        yield w


@pytest.fixture
def env(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    plan = slack_only_demo_plan(tmp_path)
    return {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(plan)}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A plain ``okr-sync run`` (hit 0 of a point never comes; Slack unpaced like the rest)."""
    return subprocess.run(killpoints.command("jira.page", 0, "run", *args), env=env,
                          capture_output=True, text=True, timeout=WAIT_S, check=False)


def _held(env: dict[str, str], pause: Path, point: str = "jira.page"
          ) -> subprocess.Popen[str]:
    """An ``okr-sync run`` that pauses at the first ``point`` until ``pause/release``."""
    return subprocess.Popen(
        killpoints.command(point, 1, "run", pause_dir=pause), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _progress(world: SandboxWorld) -> None:
    world.dataset.advance(timedelta(minutes=15))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in random.Random(5).sample(open_items, 8):
        world.dataset.transition(issue.id, "done")


def _slack_keys(world: SandboxWorld) -> Counter[str]:
    return Counter(
        str((m.metadata or {}).get("event_payload", {}).get("idempotency_key"))
        for m in world.slack.messages(DEMO_CHANNEL))


def _backend_env(env: dict[str, str], backend: str, request: pytest.FixtureRequest
                 ) -> dict[str, str]:
    if backend == "postgresql":
        return {**env, "OKR_SYNC_DATABASE_URL": request.getfixturevalue("postgres_url")}
    return env


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_given_ten_overlapping_runs_one_writes_and_the_rest_exit_75(
    world: SandboxWorld, env: dict[str, str], tmp_path: Path, backend: str,
    request: pytest.FixtureRequest,
) -> None:
    env = _backend_env(env, backend, request)
    assert _run(env).returncode == 0, "first pass"  # the store and the standing message
    _progress(world)
    pause = tmp_path / "pause"
    pause.mkdir()

    runs = [_held(env, pause) for _ in range(RUNS)]
    wait_for("the lock holder to reach the pull", (pause / "reached").exists)
    wait_for("the other runs to give up", lambda: sum(
        p.poll() is not None for p in runs) >= RUNS - 1)
    (pause / "release").touch()
    outcomes = [(p.wait(timeout=WAIT_S), p.communicate()[1]) for p in runs]

    codes = Counter(code for code, _ in outcomes)
    assert codes == {75: RUNS - 1, 0: 1}, outcomes
    for code, stderr in outcomes:
        if code == 75:
            assert "another run holds the lock" in stderr
    assert [k for k, n in _slack_keys(world).items() if n > 1] == []
    with Store(env["OKR_SYNC_DATABASE_URL"]) as store:
        runs_stored = store.last_runs_by_outcome()
        assert {r.status for r in store.list_outbox(limit=None)} <= {"sent", "superseded"}
    assert set(runs_stored) == {"ok"}  # the busy runs stored no run at all
    assert len(world.slack.replies(DEMO_CHANNEL, world.slack.top_level(DEMO_CHANNEL)[0].ts)) == 1


def _drop_postgres_database(url: str) -> None:
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), poolclass=NullPool,
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{target.database}" WITH (FORCE)')
    finally:
        admin.dispose()


def _delete_sqlite_file(url: str) -> None:
    path = Path(make_url(url).database or "")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_files(url: str) -> list[Path]:
    path = Path(make_url(url).database or "")
    return [p for p in (Path(f"{path}{s}") for s in ("", "-wal", "-shm")) if p.exists()]


def _immutable(path: Path, on: bool) -> bool:
    # Root ignores file modes, so read-only is the immutable attribute (ext4 and the like).
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True,
                          check=False)
    return done.returncode == 0


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    frozen: list[Path] = []

    def freeze(url: str) -> None:
        for path in _sqlite_files(url):
            if not _immutable(path, True):
                pytest.skip("chattr +i is not available here (needs root and ext4 or alike)")
            frozen.append(path)

    yield freeze
    for path in frozen:
        _immutable(path, False)


def _read_only_sqlite_file(url: str) -> None:
    raise AssertionError("replaced by the read_only fixture")


DISAPPEARANCES = [
    pytest.param("sqlite", _delete_sqlite_file, id="sqlite file deleted"),
    pytest.param("sqlite", _read_only_sqlite_file, id="sqlite file read-only"),
    pytest.param("postgresql", _drop_postgres_database, id="postgres database dropped",
                 marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("backend", "remove"), DISAPPEARANCES)
@pytest.mark.parametrize("point", ["jira.page", "outbox.claimed"])
def test_run_given_store_disappears_mid_pass_fails_clearly_without_posting(
    world: SandboxWorld, env: dict[str, str], tmp_path: Path, backend: str,
    remove: Callable[[str], None], point: str, request: pytest.FixtureRequest,
) -> None:
    env = _backend_env(env, backend, request)
    if remove is _read_only_sqlite_file:
        remove = request.getfixturevalue("read_only")
    assert _run(env).returncode == 0, "first pass"
    _progress(world)
    before = list(world.slack.messages(DEMO_CHANNEL))
    pause = tmp_path / "pause"
    pause.mkdir()

    run = _held(env, pause, point)
    wait_for(f"the pass to reach {point}", (pause / "reached").exists)
    remove(env["OKR_SYNC_DATABASE_URL"])
    (pause / "release").touch()
    stdout, stderr = run.communicate(timeout=WAIT_S)

    assert run.returncode == 1, (stdout, stderr)
    assert "state store" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    # Nothing was told that the store cannot remember.
    assert world.slack.messages(DEMO_CHANNEL) == before
