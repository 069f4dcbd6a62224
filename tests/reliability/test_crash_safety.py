"""Crash safety: passes killed with SIGKILL at named and random points; runs at once.

The pass runs as a real ``okr-sync run`` subprocess against the sandboxes of this
test process. Slack is the target here because it can be asked whether a message
went out (history + idempotency key); Teams cannot, which is a documented limit.
Named kill points (``support.killpoints``) aim at each seam where a crash leaves
something half-done, chosen by a seeded generator, on SQLite and PostgreSQL; the
random-time kills find the seams nobody named.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from support import killpoints
from support.paths import slack_only_demo_plan

# Processes started and killed: long, so `-m 'not slow'` leaves them out locally.
pytestmark = pytest.mark.slow

KILLS = 30


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=300, seed=5) as w:
        yield w


@pytest.fixture
def env(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    plan = slack_only_demo_plan(tmp_path)
    return {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(plan)}


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "run", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "run", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def _progress(world: SandboxWorld, rng: random.Random) -> None:
    """Finish a few open issues so that most passes have news to post."""
    world.dataset.advance(timedelta(minutes=7))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in rng.sample(open_items, min(6, len(open_items))):
        world.dataset.transition(issue.id, "done")


def _slack_keys(world: SandboxWorld) -> Counter[str]:
    keys: Counter[str] = Counter()
    for message in world.slack.messages(DEMO_CHANNEL):
        payload = (message.metadata or {}).get("event_payload") or {}
        if payload.get("idempotency_key"):
            keys[payload["idempotency_key"]] += 1
    return keys


def test_pass_given_sigkill_at_random_points_recovers_without_loss_or_duplicates(
    world: SandboxWorld, env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    killed = 0
    for _ in range(KILLS):
        _progress(world, rng)
        process = _start(env)
        time.sleep(rng.uniform(0.0, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.communicate(timeout=60)
    assert killed >= KILLS // 3  # most kills landed inside a pass

    _assert_recovered(world, env, tmp_path)


def _assert_recovered(world: SandboxWorld, env: dict[str, str], scratch: Path) -> None:
    """Rerun to the end: nothing lost, nothing doubled, the scorecard of a clean pass."""
    for _ in range(3):
        finished = _run(env, "--output", "json")
        assert finished.returncode == 0, finished.stderr
    final = json.loads(finished.stdout)

    # Every update delivered once: each outbox row is sent exactly once to Slack.
    with Store(env["OKR_SYNC_DATABASE_URL"]) as store:
        rows = store.list_outbox(limit=None)
    assert {r.status for r in rows} <= {"sent", "superseded"}
    sent_keys = {r.idempotency_key for r in rows if r.status == "sent"}
    keys = _slack_keys(world)
    duplicates = {k: n for k, n in keys.items() if n > 1}
    assert duplicates == {}
    posted = {r.idempotency_key for r in rows if r.status == "sent" and r.kind != "scorecard"}
    assert posted <= set(keys)
    assert set(keys) <= sent_keys
    assert len(world.slack.top_level(DEMO_CHANNEL)) == 1  # one standing message, edited
    # The standing message shows the last scorecard sent (its last edit was not lost).
    last_scorecard = max((r for r in rows if r.kind == "scorecard" and r.status == "sent"),
                         key=lambda r: r.id)
    assert world.slack.top_level(DEMO_CHANNEL)[0].text == last_scorecard.payload["text"]

    # The same final scorecard as a clean computation from scratch.
    # A dry run on a store that does not exist reads nothing and creates nothing.
    fresh = {**env, "OKR_SYNC_DATABASE_URL": f"sqlite:///{scratch / 'never-created.db'}"}
    clean = _run(fresh, "--dry-run", "--output", "json")
    assert clean.returncode == 0, clean.stderr
    values = {kr["id"]: (kr["value"], kr["score"])
              for o in final["objectives"] for kr in o["key_results"]}
    expected = {kr["id"]: (kr["value"], kr["score"])
                for o in json.loads(clean.stdout)["objectives"] for kr in o["key_results"]}
    assert values == expected


#: Each seam with the hit counts worth aiming at (a pass reads a few Jira pages,
#: commits a few times and posts about one note per route).
SEAMS = {
    "jira.page": (1, 2),
    "store.before_commit": (1, 2),
    "store.after_commit": (1, 2),
    "outbox.claimed": (1,),
    "slack.before_post": (1,),
    "slack.after_post": (1,),
    "slack.after_update": (1,),
}
NAMED_KILLS = 30


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pass_given_sigkill_at_seeded_named_points_recovers_without_loss_or_duplicates(
    world: SandboxWorld, env: dict[str, str], tmp_path: Path, backend: str,
    request: pytest.FixtureRequest,
) -> None:
    if backend == "postgresql":
        env = {**env, "OKR_SYNC_DATABASE_URL": request.getfixturevalue("postgres_url")}
    rng = random.Random(f"named-kills-{backend}")
    # Every seam at least once (each kill aims at one), then seeded picks.
    schedule = [(point, rng.choice(counts)) for point, counts in SEAMS.items()]
    while len(schedule) < NAMED_KILLS * 3:
        point = rng.choice(sorted(SEAMS))
        schedule.append((point, rng.choice(SEAMS[point])))
    killed: Counter[str] = Counter()
    for point, n in schedule:
        if sum(killed.values()) >= NAMED_KILLS and set(killed) == set(SEAMS):
            break
        _progress(world, rng)
        process = subprocess.run(
            killpoints.command(point, n, "run"), env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )
        if process.returncode == -signal.SIGKILL:
            killed[point] += 1
        else:  # the pass ended before its n-th hit: a plain pass
            assert process.returncode == 0, process.stderr
        # At no moment is anything in Slack twice.
        assert [k for k, count in _slack_keys(world).items() if count > 1] == []
    assert sum(killed.values()) >= NAMED_KILLS, killed
    assert set(killed) == set(SEAMS), killed  # every seam was hit by a kill

    _assert_recovered(world, env, tmp_path)


def test_run_given_two_processes_at_once_one_exits_75_and_nothing_is_doubled(
    world: SandboxWorld, env: dict[str, str]
) -> None:
    assert _run(env).returncode == 0  # migrate and post the standing message
    _progress(world, random.Random(1))
    world.jira.faults.latency(0.3)  # keep the first pass inside its lock for a while
    # Both start together; on a loaded machine either may reach the lock first, so the
    # test asks only that exactly one ran and the other stood down.
    runs = [_start(env), _start(env)]
    outputs = [run.communicate(timeout=120) for run in runs]
    world.jira.faults.clear()
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 75], outputs
    loser = next(err for run, (_, err) in zip(runs, outputs, strict=True) if run.returncode == 75)
    assert "another run holds the lock" in loser
    assert all(n == 1 for n in _slack_keys(world).values())
