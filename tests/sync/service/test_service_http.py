"""/healthz, /readyz and serve() over real HTTP on 127.0.0.1, with a fake clock."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from werkzeug.test import Client

from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import Settings
from okr_sync.scoring.scorecard import CycleInfo, Scorecard
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import JiraConnections, Runtime
from okr_sync.sync.service.app import Schedule, ServiceHandle, serve
from okr_sync.sync.service.http import (
    DatabaseProbe,
    HttpServer,
    ServiceApp,
    UnsignedWebhookRefusal,
    assess_readiness,
)
from okr_sync.sync.service.loop import Scheduler, StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.webhooks import JiraWebhookEndpoint
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.reader import ReadOnlyStore
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

_START = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
TIMEOUT = 10


class ScriptedRuntime(Runtime):
    """Passes that succeed unless ``failing`` is set (no store: no run lock)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(Settings(_env_file=None, database_url=database_url),
                         load_plan(DEMO_PLAN), ReadOnlyStore(), JiraConnections({}), None)
        self.failing = False
        self.passes = 0

    def run_pass(self, options: PassOptions) -> PassResult:
        self.passes += 1
        if self.failing:
            raise ConnectionError("jira down")
        return PassResult(Scorecard(CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                                              _START, 0.4), ()))


@dataclass
class Service:
    url: str
    clock: FakeClock
    scheduler: Scheduler
    runtime: ScriptedRuntime
    db_path: Path

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=TIMEOUT)


@pytest.fixture
def db_path(tmp_path: Path, _sqlite_template: Path) -> Path:
    path = tmp_path / "db" / "okr-sync.db"
    path.parent.mkdir()
    shutil.copyfile(_sqlite_template, path)
    return path


@pytest.fixture
def service(db_path: Path) -> Iterator[Service]:
    url = f"sqlite:///{db_path}"
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(url)
    schedule = Schedule.parse("5m")
    scheduler = Scheduler(runtime, schedule, leadership=Leadership(url, holder="a"),
                          metrics=ServiceMetrics(), clock=clock)
    probe = DatabaseProbe(url)
    app = ServiceApp(
        status=scheduler.state.view, period=schedule.period, metrics=scheduler.metrics,
        webhook=JiraWebhookEndpoint(None, scheduler.on_webhook, clock=clock),
        database_probe=probe, clock=clock,
    )
    server = HttpServer(app, host="127.0.0.1", port=0).start()
    try:
        yield Service(f"http://127.0.0.1:{server.port}", clock, scheduler, runtime, db_path)
    finally:
        server.stop()
        scheduler.close()
        probe.close()


def test_healthz_given_running_service_answers_ok(service: Service) -> None:
    response = service.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert service.get("/nope").status_code == 404


def test_readyz_given_passes_is_ready_until_the_last_success_is_three_intervals_old(
    service: Service,
) -> None:
    assert service.get("/readyz").status_code == 200  # just started, database reachable
    service.scheduler.tick()
    ready = service.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["role"] == "leader" and ready.json()["passes"] == 1
    assert ready.json()["last_success"] == _START.isoformat()
    service.clock.advance(minutes=15)
    assert service.get("/readyz").status_code == 200
    service.clock.advance(seconds=1)
    stale = service.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["status"] == "not ready"
    assert "last completed pass 901s ago" in stale.json()["reason"]
    service.scheduler.tick()
    assert service.get("/readyz").status_code == 200


def test_readyz_given_no_pass_ever_completes_turns_unready_after_three_intervals(
    service: Service,
) -> None:
    service.runtime.failing = True
    for _ in range(3):
        service.scheduler.tick()
        assert service.get("/readyz").status_code == 200
        service.clock.advance(minutes=5)
    service.clock.advance(seconds=1)
    service.scheduler.tick()
    response = service.get("/readyz")
    assert response.status_code == 503
    assert response.json()["last_outcome"] == "failed"
    assert "no pass completed" in response.json()["reason"]
    assert service.runtime.passes == 4


def test_readyz_given_database_unreachable_is_unready_until_it_is_back(
    service: Service,
) -> None:
    service.scheduler.tick()
    away = service.db_path.parent.with_name("moved")
    service.db_path.parent.rename(away)
    try:
        response = service.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reason"] == "database unreachable (OperationalError)"
        assert service.get("/healthz").status_code == 200  # alive all the same
    finally:
        away.rename(service.db_path.parent)
    assert service.get("/readyz").status_code == 200


def test_assess_readiness_given_follower_is_ready_while_the_database_answers() -> None:
    follower = StatusView(started_at=_START - timedelta(days=2), role="follower")
    period = timedelta(minutes=5)
    assert assess_readiness(follower, _START, period, None).ready
    assert not assess_readiness(follower, _START, period, "database unreachable (X)").ready
    stopped = StatusView(started_at=_START, role="stopped")
    assert assess_readiness(stopped, _START, period, None).reason == "stopping"


def test_assess_readiness_given_success_from_an_earlier_leadership_uses_the_new_term() -> None:
    view = StatusView(started_at=_START, role="leader", leader_since=_START + timedelta(hours=1),
                      last_success_at=_START + timedelta(minutes=10))
    period = timedelta(minutes=5)
    assert assess_readiness(view, _START + timedelta(hours=1, minutes=14), period, None).ready
    late = assess_readiness(view, _START + timedelta(hours=1, minutes=16), period, None)
    assert not late.ready and "no pass completed" in (late.reason or "")


def test_serve_given_stop_event_serves_http_then_stops_releasing_leadership(
    db_path: Path,
) -> None:
    url = f"sqlite:///{db_path}"
    runtime = ScriptedRuntime(url)
    stop = threading.Event()
    started = threading.Event()
    handles: list[ServiceHandle] = []
    result: list[int] = []

    def on_started(handle: ServiceHandle) -> None:
        handles.append(handle)
        started.set()

    thread = threading.Thread(target=lambda: result.append(serve(
        lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0, stop_event=stop,
        on_started=on_started, holder="threaded")))
    thread.start()
    try:
        assert started.wait(TIMEOUT)
        handle = handles[0]
        for _ in range(200):  # bounded: the first pass runs right after start
            if handle.status().passes:
                break
            time.sleep(0.05)
        assert handle.url.startswith("http://127.0.0.1:")
        assert requests.get(handle.url + "/healthz", timeout=TIMEOUT).json() == {"status": "ok"}
        metrics = requests.get(handle.url + "/metrics", timeout=TIMEOUT)
        assert metrics.status_code == 200
        assert metrics.headers["Content-Type"].startswith("text/plain")
        assert "okr_sync_passes_total" in metrics.text
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive() and result == [0]
    assert runtime.passes == 1
    assert handle.status().role == "stopped"
    assert Leadership(url, holder="next").poll()
    with pytest.raises(requests.ConnectionError):
        requests.get(handle.url + "/healthz", timeout=TIMEOUT)


@pytest.mark.parametrize(("allow", "expected"), [(False, 403), (True, 202)])
def test_serve_given_no_webhook_secret_refuses_webhooks_unless_unsigned_allowed(
    db_path: Path, allow: bool, expected: int,
) -> None:
    runtime = ScriptedRuntime(f"sqlite:///{db_path}")
    stop, started = threading.Event(), threading.Event()
    handles: list[ServiceHandle] = []

    def on_started(handle: ServiceHandle) -> None:
        handles.append(handle)
        started.set()

    thread = threading.Thread(target=lambda: serve(
        lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0,
        stop_event=stop, on_started=on_started, allow_unsigned_webhooks=allow,
        debounce=timedelta(0)))
    thread.start()
    try:
        assert started.wait(TIMEOUT)
        handle = handles[0]
        for _ in range(200):  # bounded: the first pass runs right after start
            if runtime.passes:
                break
            time.sleep(0.05)
        assert runtime.passes == 1
        body = (b'{"webhookEvent": "jira:issue_updated", "timestamp": 1, '
                b'"issue": {"id": "1", "key": "ENT-1", "fields": {"project": {"key": "ENT"}}}}')
        response = requests.post(handle.url + "/webhooks/jira", data=body, timeout=TIMEOUT,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == expected, response.text
        for _ in range(40):  # bounded: an accepted delivery triggers a pass within a second
            if runtime.passes > 1:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert runtime.passes == (2 if allow else 1)


def _report_app(report: Callable[[], str] | None) -> Client:
    app = ServiceApp(
        status=lambda: StatusView(_START, "leader"), period=lambda at: timedelta(minutes=5),
        metrics=ServiceMetrics(), webhook=UnsignedWebhookRefusal(), database_probe=lambda: None,
        clock=lambda: _START, report=report,
    )
    return Client(app)


def test_service_app_given_a_report_serves_it_as_html_on_root_and_report() -> None:
    client = _report_app(lambda: "<html>CO-1</html>")
    for path in ("/", "/report"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html" and response.get_data(as_text=True) == \
            "<html>CO-1</html>"


def test_service_app_given_no_report_has_no_report_pages() -> None:
    client = _report_app(None)
    assert client.get("/").status_code == 404 and client.get("/report").status_code == 404
