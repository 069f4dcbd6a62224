"""``serve --plans`` in this process on SQLite: every plan of a folder runs in a store of
its own, a broken file is reported by place and skipped, and the HTTP side answers per
plan. Against the Jira and Slack sandboxes on loopback; every wait is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from pydantic import SecretStr

from okr_sync.config.settings import JiraSourceSettings, Settings
from okr_sync.sync.runtime import build_runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.service.multi import PlanCoordinator
from okr_sync.sync.service.plans import FolderPlan, settings_check
from okr_sync.sync.service.plans_app import serve_plans
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import sign
from okr_sync.sync.store.database import plan_store_url
from okr_sync.sync.store.store import Store
from support.plan_folders import plan_channel, write_plans_folder

WAIT_S = 60.0
WEBHOOK_SECRET = "plans-webhook-secret"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@dataclass
class Running:
    url: str
    coordinator: PlanCoordinator
    settings: Settings


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=60, seed=3) as w:
        yield w


@pytest.fixture
def folder(world: SandboxWorld, tmp_path: Path) -> Path:
    folder = write_plans_folder(tmp_path / "plans", world, ["sales", "support", "ops"])
    # A plan that cannot load: reported with its place, and the others run.
    (folder / "broken.yml").write_text("version: 1\ncycle: {name: x\n", encoding="utf-8")
    (folder / "notes.txt").write_text("not a plan", encoding="utf-8")
    return folder


@pytest.fixture
def running(world: SandboxWorld, folder: Path) -> Iterator[Running]:
    with _serving(world, folder, world.settings()) as served:
        yield served


@contextmanager
def _serving(world: SandboxWorld, folder: Path, settings: Settings) -> Iterator[Running]:
    started: list[tuple[PlanCoordinator, int]] = []
    stop = threading.Event()

    def factory(plan_settings: Settings, plan: FolderPlan) -> Any:
        return build_runtime(plan_settings, plan.plan, senders=world.senders())

    thread = threading.Thread(target=serve_plans, kwargs={
        "folder": folder, "settings": settings, "schedule": Schedule.parse("1m", None),
        "runtime_factory": factory, "check": settings_check(settings), "port": 0,
        "host": "127.0.0.1", "clock": lambda: datetime.now(UTC), "stop_event": stop,
        "install_signal_handlers": False, "poll": timedelta(milliseconds=200),
        "webhook_secret": SecretStr(WEBHOOK_SECRET), "debounce": timedelta(milliseconds=50),
        "on_started": lambda c, port: started.append((c, port)),
    }, daemon=True)
    thread.start()
    coordinator, port = wait_for("serve --plans to listen", lambda: started and started[0])
    try:
        yield Running(f"http://127.0.0.1:{port}", coordinator, settings)
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive()


def _ok_runs(url: str) -> int:
    with Store(url) as store:
        return int("ok" in store.last_runs_by_outcome())


def test_serve_plans_given_a_folder_on_sqlite_runs_each_plan_in_its_own_store(
    running: Running, world: SandboxWorld, tmp_path: Path,
) -> None:
    base = running.settings.database_url
    for plan in ("sales", "support", "ops"):
        url = plan_store_url(base, plan)
        assert url.endswith(f"okr-sync.{plan}.db")
        wait_for(f"a pass of {plan}", lambda url=url: Path(url.removeprefix("sqlite:///"))
                 .exists() and _ok_runs(url))
        wait_for(f"{plan}'s standing message",
                 lambda plan=plan: world.slack.top_level(plan_channel(plan)))
    # The configured database holds the leases: one replica took all three plans.
    with Store(base) as store:
        leases = store.plan_leases()
    assert sorted(leases) == ["ops", "sales", "support"]
    assert {lease.replica for lease in leases.values()} == {running.coordinator.replica}


def test_serve_plans_given_a_broken_plan_file_reports_it_by_place_and_runs_the_others(
    running: Running, folder: Path,
) -> None:
    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = requests.get(running.url + "/readyz", timeout=5).json()
        return body if len(body["plans"]) == 3 else None

    body = wait_for("three plans running", ready)
    assert body["status"] == "ready"
    assert body["skipped_files"] == [str(folder / "broken.yml")]
    broken = requests.get(running.url + "/readyz/broken", timeout=5)
    assert broken.status_code == 503
    assert f"{folder / 'broken.yml'}:3:1:" in broken.json()["reason"]
    assert requests.get(running.url + "/readyz/nothing", timeout=5).status_code == 404


def test_serve_plans_given_passes_answers_readiness_and_metrics_per_plan(
    running: Running,
) -> None:
    def plan_ready() -> dict[str, Any] | None:
        response = requests.get(running.url + "/readyz/sales", timeout=5)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body.get("passes") else None

    body = wait_for("the sales plan to be ready after a pass", plan_ready)
    assert body["plan"] == "sales"
    assert body["role"] == "leader"
    assert body["replica"] == running.coordinator.replica

    def metrics() -> str | None:
        text = requests.get(running.url + "/metrics", timeout=5).text
        done = all(f'okr_sync_passes_total{{outcome="ok",plan="{p}"}} 1.0' in text
                   for p in ("sales", "support", "ops"))
        return text if done else None

    text = wait_for("each plan's pass counted under its label", metrics)
    assert 'okr_sync_kr_score{kr="CO-1.KR1",plan="sales"}' in text
    assert "okr_sync_plans 3.0" in text
    assert "okr_sync_plan_files_skipped 1.0" in text
    assert "okr_sync_plans_leased 3.0" in text
    assert text.count("# TYPE okr_sync_webhooks_total counter") == 1


def test_serve_plans_given_a_plan_file_removed_gives_its_lease_back(
    running: Running, folder: Path,
) -> None:
    wait_for("ops to run", lambda: "ops" in running.coordinator.local_plans())
    (folder / "ops.yaml").unlink()
    wait_for("ops to stop here", lambda: "ops" not in running.coordinator.local_plans()
             and "ops" not in running.coordinator.workers)
    with Store(running.settings.database_url) as store:
        lease = store.plan_leases()["ops"]
    assert lease.expires_at <= datetime.now(UTC)


def test_serve_plans_given_a_signed_webhook_runs_a_pass_of_every_plan(running: Running) -> None:
    def passes(outcome: str = "ok") -> dict[str, float]:
        text = requests.get(running.url + "/metrics", timeout=5).text
        found = {}
        for plan in ("sales", "support", "ops"):
            marker = f'okr_sync_passes_total{{outcome="{outcome}",plan="{plan}"}} '
            if marker in text:
                found[plan] = float(text.split(marker, 1)[1].split("\n", 1)[0])
        return found

    wait_for("a first pass of each plan", lambda: len(passes()) == 3
             and all(n >= 1 for n in passes().values()))
    before = passes()
    body = b'{"webhookEvent": "jira:issue_updated", "issue": {"key": "ENT-1"}}'
    response = requests.post(running.url + "/webhooks/jira", data=body, timeout=5, headers={
        "X-Hub-Signature": sign(WEBHOOK_SECRET, body), "Content-Type": "application/json",
        "X-Atlassian-Webhook-Identifier": "delivery-1"})
    assert response.status_code == 202
    # The schedule is a minute: only the webhook can bring each plan's second pass.
    wait_for("a webhook pass of every plan", lambda: all(
        passes().get(p, 0) > before[p] for p in before))
    metrics = requests.get(running.url + "/metrics", timeout=5).text
    assert 'okr_sync_webhooks_total{result="accepted"} 1.0' in metrics
    unknown = requests.post(running.url + "/webhooks/jira/nosuch", data=body, timeout=5,
                            headers={"X-Hub-Signature": sign(WEBHOOK_SECRET, body)})
    assert unknown.status_code == 404


def test_serve_plans_given_a_plan_file_added_runs_it_without_a_restart(
    running: Running, folder: Path, world: SandboxWorld,
) -> None:
    wait_for("the first three plans", lambda: len(running.coordinator.local_plans()) == 3)
    write_plans_folder(folder, world, ["finance"])
    wait_for("the added plan's standing message",
             lambda: world.slack.top_level(plan_channel("finance")))
    assert "finance" in running.coordinator.local_plans()


def test_serve_plans_given_a_plan_with_its_own_schedule_runs_on_it(
    running: Running, folder: Path, world: SandboxWorld,
) -> None:
    write_plans_folder(folder, world, ["fast"])
    path = folder / "fast.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nserve: {interval: 1s}\n",
                    encoding="utf-8")

    def fast_passes() -> int:
        text = requests.get(running.url + "/metrics", timeout=5).text
        marker = 'okr_sync_passes_total{outcome="ok",plan="fast"} '
        return int(float(text.split(marker, 1)[1].split("\n", 1)[0])) if marker in text else 0

    # The folder's schedule is a minute: three passes can only come from its own.
    wait_for("three passes of the plan with a 1 s schedule", lambda: fast_passes() >= 3)
    body = requests.get(running.url + "/readyz/fast", timeout=5).json()
    assert body["status"] == "ready"


def test_serve_plans_given_a_source_webhook_path_in_any_case_checks_it_with_its_secret(
    world: SandboxWorld, folder: Path,
) -> None:
    legacy_secret = "legacy-plans-secret"
    settings = world.settings().model_copy(update={"jira": {"legacy": JiraSourceSettings(
        url=world.jira.url, webhook_secret=SecretStr(legacy_secret))}})
    body = b'{"webhookEvent": "jira:issue_updated", "issue": {"key": "ENT-1"}}'
    with _serving(world, folder, settings) as served:
        codes = [requests.post(served.url + path, data=body, timeout=5, headers={
            "X-Hub-Signature": sign(legacy_secret, body), "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": f"case-{n}"}).status_code
            for n, path in enumerate(["/webhooks/jira/legacy", "/webhooks/jira/Legacy"])]
    # Before, a plan's "Legacy" path was refused here (404) and accepted without --plans.
    assert codes == [202, 202]
