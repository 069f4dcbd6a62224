"""The lease coordinator of ``serve --plans`` round by round (SQLite, no HTTP): a replica
over its fair share gives a plan back only once that plan's running pass has ended."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from okr_sync.config.plan import Plan
from okr_sync.config.settings import Settings
from okr_sync.sync.service.multi import PlanCoordinator
from okr_sync.sync.service.plans import FolderPlan
from okr_sync.sync.service.schedule import Schedule
from support.paths import DEMO_PLAN

T = TypeVar("T")
WAIT_S = 30.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class HeldRuntime:
    """Just enough of a Runtime for the scheduler: a pass that waits to be let go."""

    plan: Plan
    started: threading.Event
    release: threading.Event
    store: Any = None
    notifier: Any = None
    settings: Any = None

    def run_locked(self, options: Any) -> Any:
        self.started.set()
        self.release.wait(WAIT_S)
        raise RuntimeError("the held pass ends here")  # counted as a failed pass

    def close(self) -> None:
        pass


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[tuple[PlanCoordinator, dict[str, HeldRuntime]]]:
    folder = tmp_path / "plans"
    folder.mkdir()
    for name in ("alpha", "beta"):
        shutil.copyfile(DEMO_PLAN, folder / f"{name}.yaml")
    runtimes: dict[str, HeldRuntime] = {}

    def factory(settings: Settings, plan: FolderPlan) -> Any:
        runtime = HeldRuntime(plan.plan, threading.Event(), threading.Event())
        runtimes[plan.id] = runtime
        return runtime

    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'okr-sync.db'}")
    coordinator = PlanCoordinator(folder, settings, Schedule.parse("1m", None),
                                  runtime_factory=factory, clock=lambda: datetime.now(UTC),
                                  replica="a", poll=timedelta(milliseconds=100))
    try:
        yield coordinator, runtimes
    finally:
        for runtime in runtimes.values():
            runtime.release.set()
        coordinator.stop_all()
        coordinator.close()


def test_coordinator_given_a_new_replica_gives_a_plan_back_only_after_its_pass(
    coordinator: tuple[PlanCoordinator, dict[str, HeldRuntime]],
) -> None:
    coord, runtimes = coordinator
    coord.round()  # announces the replica
    coord.round()  # alone: the share is both plans
    assert sorted(coord.local_plans()) == ["alpha", "beta"]
    wait_for("both passes to be running", lambda: len(runtimes) == 2 and all(
        r.started.is_set() for r in runtimes.values()))

    coord.store.heartbeat_replica("b", timedelta(minutes=5))  # a second replica joins
    coord.round()
    (giving,) = coord.releasing
    coord.round()
    lease = coord.store.plan_leases()[giving]
    assert lease.replica == "a" and lease.live(datetime.now(UTC)), "released mid-pass"
    assert not coord.workers[giving].done

    runtimes[giving].release.set()
    wait_for("the pass to end and the worker to stop", lambda: coord.workers[giving].done)
    coord.round()
    assert giving not in coord.workers
    assert not coord.store.plan_leases()[giving].live(datetime.now(UTC))
    kept = ({"alpha", "beta"} - {giving}).pop()
    assert sorted(coord.local_plans()) == [kept]
