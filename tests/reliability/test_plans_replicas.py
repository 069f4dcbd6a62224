"""Three ``okr-sync serve --plans`` replicas share eight plans on PostgreSQL; one is
killed (SIGKILL) and the others take its plans over.

Checked from what the processes recorded, not from timing: every plan's runs (each
plan's own schema) never overlap between two writers, no Slack message is posted
twice (the sandbox's record, per plan channel), and every plan of the dead replica
was taken by a live one within two intervals of the dead replica's last heartbeat
(the lease table). Every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.database import plan_store_url
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import replicas, runs
from support import killpoints
from support.plan_folders import plan_channel, write_plans_folder

# Processes started and killed: long, so `-m 'not slow'` leaves them out locally.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WAIT_S = 90.0
INTERVAL_S = 4  # a lease of 4 s, heartbeats every second: 3 s to spare under load
PLANS = [f"team{n}" for n in range(1, 9)]
REPLICAS = 3
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    log: Path

    def replica_id(self) -> str | None:
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "listening":
                return str(record["replica"])
        return None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=60, seed=21) as w:
        yield w


def _start(env: dict[str, str], folder: Path, log: Path) -> Replica:
    # killpoints' runner: hit 0 of a point never comes, and Slack is unpaced.
    argv = killpoints.command("jira.page", 0, "serve", "--host", "127.0.0.1", "--port", "0",
                              "--plans", str(folder), "--interval", f"{INTERVAL_S}s")
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, cwd=folder.parent)
    return Replica(proc, log)


def _leases(base_url: str) -> dict[str, tuple[str, datetime, datetime]]:
    with Store(base_url, ensure=False) as store:
        return {p: (lease.replica, lease.acquired_at, lease.expires_at)
                for p, lease in store.plan_leases().items()}


def _ok_runs_since(url: str, since: datetime) -> list[str]:
    with Store(url, ensure=False) as store, store.engine.connect() as conn:
        try:
            rows = conn.execute(sa.select(runs.c.holder).where(
                runs.c.outcome == "ok", runs.c.started_at >= since)).all()
        except sa.exc.ProgrammingError:
            return []  # the plan's schema is still being created by its first replica
    return [str(r.holder) for r in rows]


def _assert_one_writer_at_a_time(url: str, plan: str) -> int:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(runs.c.holder, runs.c.started_at, runs.c.ended_at)
                                .order_by(runs.c.started_at)).all()
    finally:
        engine.dispose()
    for before, after in itertools.pairwise(rows):
        assert before.ended_at is not None and before.ended_at <= after.started_at, (
            f"{plan}: run of {before.holder} ({before.started_at}..{before.ended_at}) "
            f"overlaps run of {after.holder} from {after.started_at}")
    return len({r.holder for r in rows})


def _progress(world: SandboxWorld) -> None:
    world.dataset.advance(timedelta(minutes=15))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in open_items[:6]:
        world.dataset.transition(issue.id, "done")


def test_serve_plans_given_three_replicas_and_a_killed_one_keeps_one_writer_per_plan(
    world: SandboxWorld, tmp_path: Path, postgres_url: str,
) -> None:
    folder = write_plans_folder(tmp_path / "plans", world, PLANS)
    env = {**os.environ, **world.environment(), "OKR_SYNC_DATABASE_URL": postgres_url,
           "OKR_SYNC_WEBHOOK_SECRET": "replicas-test-secret"}
    with ExitStack() as stack:
        started = [_start(env, folder, tmp_path / f"replica{n}.log") for n in range(REPLICAS)]
        for replica in started:
            stack.callback(lambda r=replica: (r.proc.poll() is None and r.proc.kill(),
                                              r.proc.wait(timeout=30)))
        ids = {wait_for("each replica to listen", r.replica_id): r for r in started}

        def shared_out() -> dict[str, list[str]] | None:
            leases = _leases(postgres_url)
            now = datetime.now(UTC)
            held = {rid: sorted(p for p, (holder, _, exp) in leases.items()
                                if holder == rid and exp > now) for rid in ids}
            spread = sorted(map(len, held.values())) == [2, 3, 3]
            return held if spread and sum(map(len, held.values())) == len(PLANS) else None

        held = wait_for("the eight plans shared out 3/3/2", shared_out)
        wait_for("a pass of every plan", lambda: all(
            _ok_runs_since(plan_store_url(postgres_url, p), datetime.min.replace(tzinfo=UTC))
            for p in PLANS))
        _progress(world)

        victim_id = max(held, key=lambda rid: len(held[rid]))
        victim = ids[victim_id]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)
        killed_at = datetime.now(UTC)

        def taken_over() -> dict[str, tuple[str, datetime, datetime]] | None:
            leases = _leases(postgres_url)
            moved = {p: leases[p] for p in held[victim_id]}
            if any(holder == victim_id for holder, _, _ in moved.values()):
                return None
            # ... and each of them has run a pass on its new replica since.
            done = all(_ok_runs_since(plan_store_url(postgres_url, p), killed_at)
                       for p in held[victim_id])
            return moved if done else None

        moved = wait_for("the dead replica's plans to run elsewhere", taken_over)
        _progress(world)
        survivors = [r for rid, r in ids.items() if rid != victim_id]
        time.sleep(INTERVAL_S)  # one more round of passes on the survivors (not asserted)
        for replica in survivors:
            replica.proc.send_signal(signal.SIGTERM)
        codes = [r.proc.wait(timeout=60) for r in survivors]

    assert codes == [0, 0], [r.log.read_text()[-3000:] for r in survivors]
    with Store(postgres_url, ensure=False) as store, store.engine.connect() as conn:
        last_beat = conn.execute(sa.select(replicas.c.heartbeat_at).where(
            replicas.c.replica == victim_id)).scalar_one()
    for plan, (holder, acquired_at, _) in moved.items():
        assert holder in ids and holder != victim_id
        taken_after = acquired_at - last_beat
        assert taken_after <= timedelta(seconds=2 * INTERVAL_S), (plan, taken_after)
    writers = {p: _assert_one_writer_at_a_time(plan_store_url(postgres_url, p), p)
               for p in PLANS}
    assert all(writers[p] >= 2 for p in held[victim_id])  # the victim's, then another's
    for plan in PLANS:
        keys = Counter(str((m.metadata or {}).get("event_payload", {}).get("idempotency_key"))
                       for m in world.slack.messages(plan_channel(plan)))
        assert keys and [k for k, n in keys.items() if n > 1] == [], (plan, keys)
