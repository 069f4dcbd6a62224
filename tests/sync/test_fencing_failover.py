"""Fencing on PostgreSQL: the run lock's session ends while its pass is posting.

Found by an adversarial run (issue 11): the lock holder's backend is terminated
(``pg_terminate_backend``, as in a failover) while its Slack post is in flight; a
second run takes the lock, took the in-flight row for a dead process's and posted
it again, and both runs then crashed with InvalidStateError. Here the post is held
inside the Slack sandbox until the second run has finished, which is exactly that
window. With fencing: one post, the second run leaves the row alone, the first
records its post and stops with LockLostError (``okr-sync run``: exit 75).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.store.locks import LockLostError, default_holder
from okr_sync.sync.store.store import Store
from support.held_posts import HOLD_LIMIT_S, hold_next_post
from support.paths import slack_only_demo_plan

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(tmp_path: Path, postgres_url: str) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=120, seed=11) as w:
        yield dataclasses.replace(w, database_url=postgres_url)


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    return slack_only_demo_plan(tmp_path)


@pytest.fixture
def plan(plan_path: Path) -> Plan:
    return load_plan(plan_path)


def _terminate_lock_session(database_url: str, holder: str) -> int:
    """End the run lock's session of ``holder`` as an operator or a failover would."""
    admin = sa.create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = :name"),
                {"name": f"okr-sync {holder}"[:63]},
            ).all())
    finally:
        admin.dispose()


def _posted_keys(world: SandboxWorld) -> Counter[str]:
    keys: Counter[str] = Counter()
    for message in world.slack.messages(DEMO_CHANNEL):
        payload = (message.metadata or {}).get("event_payload") or {}
        if payload.get("idempotency_key"):
            keys[payload["idempotency_key"]] += 1
    return keys


def _assert_each_row_posted_once(world: SandboxWorld) -> None:
    with Store(world.database_url) as store:
        rows = store.list_outbox(limit=None)
    assert rows and {r.status for r in rows} == {"sent"}
    keys = _posted_keys(world)
    assert keys == Counter({r.idempotency_key: 1 for r in rows})
    assert len(world.slack.top_level(DEMO_CHANNEL)) == 1


def test_pass_given_lock_session_killed_mid_post_posts_once_and_the_old_holder_stops(
    world: SandboxWorld, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = hold_next_post(monkeypatch, world.slack)
    first, second = world.runtime(plan), world.runtime(plan)
    outcome: dict[str, PassResult | BaseException] = {}

    def run_first() -> None:
        try:
            outcome["result"] = first.run_locked(PassOptions())
        except BaseException as error:  # the test inspects what ended the pass
            outcome["error"] = error

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert held.arrived.wait(HOLD_LIMIT_S), "the first pass never posted"
        assert _terminate_lock_session(world.database_url, default_holder()) == 1
        # The terminated backend ends asynchronously: poll for its lock.
        result = second.run_locked(PassOptions(), wait=60)  # takes the lock: epoch 2
    finally:
        held.release()
        thread.join(HOLD_LIMIT_S)
    try:
        assert result.exit_code == 0
        assert result.scorecard.deliveries == ()  # the in-flight row was left alone
        assert isinstance(outcome.get("error"), LockLostError), outcome
        _assert_each_row_posted_once(world)

        third = second.run_locked(PassOptions())  # nothing left to send, nothing sent twice
        assert third.exit_code == 0
        _assert_each_row_posted_once(world)
        assert isinstance(second.store, Store) and second.store.current_epoch() == 3
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_cli_run_given_lock_session_killed_mid_post_exits_75_with_one_line_and_posts_once(
    world: SandboxWorld, plan: Plan, plan_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = hold_next_post(monkeypatch, world.slack)
    env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(plan_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "run"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    second = world.runtime(plan)
    try:
        assert held.arrived.wait(HOLD_LIMIT_S), "the run never posted"
        holder = f"{default_holder().rsplit(':', 1)[0]}:{process.pid}"
        assert _terminate_lock_session(world.database_url, holder) == 1
        result = second.run_locked(PassOptions(), wait=60)
    finally:
        held.release()
        _out, err = process.communicate(timeout=HOLD_LIMIT_S)
        second.close()

    assert result.exit_code == 0 and result.scorecard.deliveries == ()
    assert process.returncode == 75, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("another run took over: lost the 'run' lock")
    assert "Traceback" not in err
    _assert_each_row_posted_once(world)
