"""serve's HTML scorecard: GET / and GET /report over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from werkzeug.wrappers import Response

from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import Settings
from okr_sync.sync.delivery.render.report import load_report_data, render_html_report
from okr_sync.sync.runtime import JiraConnections, Runtime
from okr_sync.sync.service.app import report_page
from okr_sync.sync.service.http import HttpServer, ServiceApp
from okr_sync.sync.service.loop import StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.state import PassSnapshot, save_snapshot
from okr_sync.sync.store.reader import ReadOnlyStore
from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store
from support.html import parse_strict
from support.paths import DEMO_PLAN
from support.scorecards import AS_OF, realistic_scorecard

TIMEOUT = 10


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'okr-sync.db'}") as opened:
        yield opened


def _serve(store: Store) -> HttpServer:
    runtime = Runtime(Settings(_env_file=None, database_url="sqlite://"), load_plan(DEMO_PLAN),
                      store, JiraConnections({}), None)
    app = ServiceApp(
        status=lambda: StatusView(role="leader", started_at=AS_OF),
        period=lambda at: timedelta(minutes=5), metrics=ServiceMetrics(),
        webhook=lambda request: Response(status=404),
        database_probe=lambda: None, clock=lambda: AS_OF, report=report_page(runtime),
    )
    return HttpServer(app, host="127.0.0.1", port=0).start()


def test_report_routes_given_a_stored_pass_answer_the_same_html_document(store: Store) -> None:
    card = realistic_scorecard()
    snapshot_id = save_snapshot(store, PassSnapshot(card), measured_at=AS_OF)
    for day in range(3):
        store.add_history(snapshot_id, cycle=card.cycle.name, as_of=AS_OF - timedelta(days=day),
                          entries=[HistoryEntry(kr.id, kr.value, kr.score, kr.band,
                                                kr.confidence) for kr in card.key_results()])
    server = _serve(store)
    try:
        base = f"http://127.0.0.1:{server.port}"
        root, report = (requests.get(base + path, timeout=TIMEOUT) for path in ("/", "/report"))
        assert (root.status_code, report.status_code) == (200, 200)
        assert root.headers["Content-Type"].startswith("text/html")
        assert report.headers["Content-Type"].startswith("text/html")
        assert root.text == report.text
        assert root.text == render_html_report(load_report_data(store, load_plan(DEMO_PLAN)))
        points = {e.get("data-points") for e in parse_strict(root.text).iter()
                  if e.get("data-points")}
        assert points == {"3"}
    finally:
        server.stop()


def test_report_routes_given_no_pass_yet_answer_404(store: Store) -> None:
    server = _serve(store)
    try:
        response = requests.get(f"http://127.0.0.1:{server.port}/report", timeout=TIMEOUT)
        assert response.status_code == 404
        assert "no scorecard yet" in response.json()["error"]
    finally:
        server.stop()


def test_report_page_given_a_read_only_runtime_serves_no_report() -> None:
    runtime = Runtime(Settings(_env_file=None), load_plan(DEMO_PLAN), ReadOnlyStore(),
                      JiraConnections({}), None)
    assert report_page(runtime) is None


def test_report_routes_given_post_answer_405(store: Store) -> None:
    server = _serve(store)
    try:
        response = requests.post(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT)
        assert response.status_code == 405
    finally:
        server.stop()


