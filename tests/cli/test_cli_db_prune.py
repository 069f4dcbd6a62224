"""``okr-sync db prune`` after many passes, and every command still working after it."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import SandboxWorld
from okr_sync.sync.service.digests import ScheduledMessages
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.prune import DailyPrune
from okr_sync.sync.store.locks import RunLock
from okr_sync.sync.store.store import Store

runner = CliRunner()
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAYS = 12
#: "now" for the prune: noon after the last day of passes.
NOW = START + timedelta(days=DAYS, hours=3)


@pytest.fixture
def store_world(world: SandboxWorld, database_url: str) -> SandboxWorld:
    """The CLI tests' sandboxes with the state store on each backend."""
    return dataclasses.replace(world, database_url=database_url)


@pytest.fixture
def prune_env(env: dict[str, str], store_world: SandboxWorld) -> dict[str, str]:
    return {**env, "OKR_SYNC_DATABASE_URL": store_world.database_url}


def _progress(world: SandboxWorld, rng: random.Random) -> None:
    world.dataset.advance(timedelta(hours=6))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in rng.sample(open_items, min(8, len(open_items))):
        world.dataset.transition(issue.id, "done")


@pytest.fixture
def many_passes(store_world: SandboxWorld, prune_env: dict[str, str]) -> Iterator[SandboxWorld]:
    """Two passes a day for twelve days, most of them with news."""
    runtime = store_world.runtime(load_plan(Path(prune_env["OKR_SYNC_PLAN"])))
    rng = random.Random(3)
    try:
        for day in range(DAYS):
            for hour in (9, 15):
                with time_machine.travel(START + timedelta(days=day, hours=hour - 9), tick=False):
                    _progress(store_world, rng)
                    assert runtime.run_locked(PassOptions()).exit_code == 0
    finally:
        runtime.close()
    yield store_world


def _invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=False):
        return runner.invoke(app, list(args), env=env)


def test_db_prune_given_many_passes_keeps_what_commands_need_and_drops_the_rest(
    many_passes: SandboxWorld, prune_env: dict[str, str], tmp_path: Path
) -> None:
    with Store(many_passes.database_url) as store:
        before = store.row_counts()
        published = store.last_published_snapshot()
        week_ago = store.published_snapshot_at(NOW - timedelta(days=7))
        explain_before = _invoke(prune_env, "explain", "OPS-1.KR2").stdout

    dry = _invoke(prune_env, "db", "prune", "--older-than", "8d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("would delete ")
    with Store(many_passes.database_url) as store:
        assert store.row_counts() == before  # a dry run deletes nothing

    result = _invoke(prune_env, "db", "prune", "--older-than", "8d")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("deleted ")
    assert result.stdout.replace("deleted", "would delete", 1) == dry.stdout

    cutoff = NOW - timedelta(days=8)
    with Store(many_passes.database_url) as store:
        after = store.row_counts()
        assert after["snapshots"] < before["snapshots"]
        assert after["runs"] < before["runs"]
        assert after["outbox"] < before["outbox"]
        assert after["kr_history"] == before["kr_history"]  # score history stays
        assert published is not None and week_ago is not None
        assert store.last_published_snapshot() == published
        assert store.published_snapshot_at(NOW - timedelta(days=7)) == week_ago
        old_days = [store.published_snapshot_at(START + timedelta(days=d, hours=12))
                    for d in range(4)]
        assert all(s is not None and s.created_at < cutoff for s in old_days)  # one a day

    # Every command still works on the pruned store.
    assert _invoke(prune_env, "status").exit_code == 0
    explained = _invoke(prune_env, "explain", "OPS-1.KR2")
    assert explained.exit_code == 0 and explained.stdout == explain_before
    report = tmp_path / "report.html"
    assert _invoke(prune_env, "report", "--output", str(report)).exit_code == 0
    assert "OPS-1.KR2" in report.read_text()
    runtime = many_passes.runtime(load_plan(Path(prune_env["OKR_SYNC_PLAN"])))
    try:
        with time_machine.travel(NOW, tick=False):
            sent = ScheduledMessages(runtime, metrics=ServiceMetrics()).send("digest", NOW)
            again = runtime.run_locked(PassOptions())
    finally:
        runtime.close()
    assert sent is not None and {d.status for d in sent.deliveries} == {"sent"}
    assert again.exit_code == 0


def test_db_prune_given_too_short_or_malformed_window_exits_2(
    prune_env: dict[str, str]
) -> None:
    for bad in ("3d", "30", "1y", "-9d"):
        result = _invoke(prune_env, "db", "prune", "--older-than", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert "--older-than" in result.output


def test_db_prune_given_a_pass_holding_the_lock_exits_75_and_deletes_nothing(
    many_passes: SandboxWorld, prune_env: dict[str, str]
) -> None:
    with Store(many_passes.database_url) as store:
        before = store.row_counts()
    with RunLock(many_passes.database_url, "run"):
        result = _invoke(prune_env, "db", "prune", "--older-than", "8d")

    assert result.exit_code == 75, result.output
    with Store(many_passes.database_url) as store:
        assert store.row_counts() == before


def test_daily_prune_given_serve_prunes_once_a_day_and_can_be_turned_off(
    many_passes: SandboxWorld, prune_env: dict[str, str]
) -> None:
    plan = load_plan(Path(prune_env["OKR_SYNC_PLAN"]))
    runtime = many_passes.runtime(plan)
    settings = runtime.settings.model_copy(update={"retention_days": 8})
    off = dataclasses.replace(runtime, settings=settings.model_copy(update={"serve_prune": False}))
    on = dataclasses.replace(runtime, settings=settings)
    try:
        assert DailyPrune(off, holder="test").run_due(NOW) is None
        daily = DailyPrune(on, holder="test")
        first = daily.run_due(NOW)
        assert first is not None and first.total > 0
        assert daily.run_due(NOW + timedelta(hours=23)) is None  # not yet a day later
        assert daily.run_due(NOW + timedelta(days=1)) is not None
    finally:
        runtime.close()
