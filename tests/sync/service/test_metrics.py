"""/metrics after real passes against the sandboxes: a dedicated registry, every series."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.scorecard import Delivery
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.service.http import HttpServer, ServiceApp
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import JiraWebhookEndpoint
from okr_sync.sync.store.locks import Leadership
from support.paths import DEMO_PLAN

_NOW = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)  # a Tuesday: no scheduled message due


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=7) as w:
        yield w


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_given_a_pass_expose_duration_outcomes_requests_deliveries_scores(
    world: SandboxWorld,
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    clock = [_NOW]
    scheduler = Scheduler(runtime, Schedule.parse("5m"),
                          leadership=Leadership(world.database_url, holder="metrics"),
                          metrics=ServiceMetrics(), clock=lambda: clock[0])
    app = ServiceApp(status=scheduler.state.view, period=lambda at: timedelta(minutes=5),
                     metrics=scheduler.metrics,
                     webhook=JiraWebhookEndpoint(None, scheduler.on_webhook, clock=lambda: _NOW),
                     database_probe=lambda: None, clock=lambda: clock[0])
    server = HttpServer(app, host="127.0.0.1", port=0).start()
    try:
        before = samples(requests.get(f"http://127.0.0.1:{server.port}/metrics",
                                      timeout=10).text)
        assert before[("okr_sync_passes_total", (("outcome", "ok"),))] == 0
        assert before[("okr_sync_leader", ())] == 0
        scheduler.tick()
        clock[0] += timedelta(minutes=5)
        scheduler.tick()  # second pass: nothing changed, nothing delivered
        response = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
    finally:
        server.stop()
        scheduler.close()
        runtime.close()
    assert response.status_code == 200
    found = samples(response.text)
    assert found[("okr_sync_passes_total", (("outcome", "ok"),))] == 2
    assert found[("okr_sync_passes_total", (("outcome", "failed"),))] == 0
    assert found[("okr_sync_pass_duration_seconds_count", ())] == 2
    assert found[("okr_sync_pass_measure_cpu_seconds_count", ())] == 2
    assert found[("okr_sync_pass_measure_cpu_seconds_sum", ())] > 0
    assert found[("okr_sync_jira_requests_total", ())] >= 2
    assert found[("okr_sync_deliveries_total", (("outcome", "sent"),))] == 3
    assert found[("okr_sync_leader", ())] == 1
    assert found[("okr_sync_last_success_timestamp_seconds", ())] == clock[0].timestamp()
    kr_scores = {labels[0][1]: value for (name, labels), value in found.items()
                 if name == "okr_sync_kr_score"}
    assert set(kr_scores) == {kr.id for _, kr in runtime.plan.key_results()}
    assert all(0.0 <= score <= 1.0 for score in kr_scores.values())
    assert kr_scores["CO-1.KR3"] == pytest.approx(0.4)  # manual: 4 of 10
    assert ("okr_sync_objective_score", (("objective", "CO-1"),)) in found


def test_metrics_given_two_services_keep_separate_registries_outside_the_global_one() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.record_pass("ok", 1.5, jira_requests=3, completed_at=_NOW)
    first.record_deliveries([Delivery("r", "slack:C1", "post", "sent"),
                             Delivery("r", "slack:C2", "post", "failed", "channel_not_found")])
    assert first.registry.get_sample_value("okr_sync_passes_total", {"outcome": "ok"}) == 1
    assert second.registry.get_sample_value("okr_sync_passes_total", {"outcome": "ok"}) == 0
    assert first.registry.get_sample_value("okr_sync_deliveries_total",
                                           {"outcome": "failed"}) == 1
    assert REGISTRY.get_sample_value("okr_sync_passes_total", {"outcome": "ok"}) is None
    body, content_type = first.exposition()
    assert content_type.startswith("text/plain")
    assert b"okr_sync_jira_requests_total 3.0" in body


def test_metrics_given_a_skipped_pass_count_it_without_a_duration() -> None:
    metrics = ServiceMetrics()
    metrics.record_pass("skipped", None)
    assert metrics.registry.get_sample_value("okr_sync_passes_total", {"outcome": "skipped"}) == 1
    assert metrics.registry.get_sample_value("okr_sync_pass_duration_seconds_count") == 0


def _score_samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                   float]:
    from prometheus_client import generate_latest

    return {key: value for key, value in samples(generate_latest(metrics.registry).decode()
                                                 ).items()
            if key[0] in ("okr_sync_kr_score", "okr_sync_objective_score")}


def test_record_scores_given_one_kr_moved_sets_only_its_series_and_exposes_what_a_new_one_would(
) -> None:
    from dataclasses import replace

    from support.scorecards import large_scorecard

    card = large_scorecard(key_results=60, objectives=12)
    metrics = ServiceMetrics()
    metrics.record_scores(card)
    first = metrics.score_series_set
    assert first == 72 - sum(1 for kr in card.key_results() if kr.score is None) - sum(
        1 for o in card.objectives if o.score is None)

    metrics.record_scores(card)
    # Before: every series cleared and set again each pass (72 here, 500 at 400 KRs).
    assert metrics.score_series_set == first

    moved_objective = replace(card.objectives[0], key_results=(
        replace(card.objectives[0].key_results[0], score=0.123),
        *card.objectives[0].key_results[1:]))
    gone = card.objectives[1].key_results[0]
    fewer = replace(card.objectives[1], key_results=card.objectives[1].key_results[1:],
                    score=None)
    changed = replace(card, objectives=(moved_objective, fewer, *card.objectives[2:]))
    metrics.record_scores(changed)
    assert metrics.score_series_set == first + 1
    fresh = ServiceMetrics()
    fresh.record_scores(changed)
    assert _score_samples(metrics) == _score_samples(fresh)
    assert ("okr_sync_kr_score", (("kr", gone.id),)) not in _score_samples(metrics)
