"""Unmeasured is not zero (DESIGN A5): a failing Jira never becomes a false scorecard.

Over the Jira, Slack and Teams sandboxes on loopback, as ``test_pipeline_e2e``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.session import JiraSource
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime, build_runtime
from okr_sync.sync.sandbox_world import (
    DEMO_CHANNEL,
    DEMO_CONVERSATION,
    SandboxWorld,
    sandbox_world,
)
from okr_sync.sync.service.http import DatabaseProbe, HttpServer, ServiceApp
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.service.webhooks import JiraWebhookEndpoint
from okr_sync.sync.store.locks import Leadership
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

_START = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=300, seed=7) as w:
        yield w


def _runtime(world: SandboxWorld, plan: Plan, *, token: str | None = None) -> Runtime:
    """The sandbox runtime; Jira retries do not sleep, so "Jira down" fails fast."""
    settings = world.settings()
    if token is not None:
        settings = settings.model_copy(update={"jira_api_token": SecretStr(token)})

    def jira(source: JiraSource) -> JiraClient:
        return JiraClient(source, sleep=lambda _: None)

    return build_runtime(settings, plan, senders=world.senders(), jira_make=jira)


def _jira_krs(plan: Plan) -> list[str]:
    return [kr.id for _, kr in plan.key_results() if kr.measure.kind != "manual"]


def _posted(world: SandboxWorld) -> int:
    return (len(world.slack.messages(DEMO_CHANNEL)) + len(world.teams.activities(DEMO_CONVERSATION))
            + len(world.teams.workflow_posts(world.workflow_id)))


def _kr_docs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {kr["id"]: kr for o in doc["objectives"] for kr in o["key_results"]}


def test_pass_given_wrong_jira_token_on_first_run_posts_nothing_and_names_the_source_once(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)

    result = _runtime(world, plan, token="wrong-token").run_locked(PassOptions())

    assert result.exit_code == 1
    assert _posted(world) == 0 and result.scorecard.deliveries == ()
    assert len(result.failures) == 1 and result.failures[0].startswith("source main: ")
    assert not result.measured
    doc = result.scorecard.to_json()
    for kr_id in _jira_krs(plan):
        kr = _kr_docs(doc)[kr_id]
        assert (kr["value"], kr["score"], kr["band"], kr["measured_at"]) == (
            None, None, None, None), kr_id
    # Nothing was published: the first pass that measures is the one people see first.
    runtime = _runtime(world, plan)
    assert runtime.store is not None and runtime.store.last_published_snapshot() is None
    good = runtime.run_locked(PassOptions())
    assert good.exit_code == 0 and good.scorecard.changes == ()
    assert _posted(world) == 3


def test_pass_given_jira_down_after_a_good_pass_keeps_last_values_stale_and_posts_nothing(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = _runtime(world, plan)
    first = runtime.run_locked(PassOptions())
    assert first.exit_code == 0
    posted = _posted(world)
    slack_before = sum(world.slack.counters.values())
    teams_before = sum(world.teams.counters.values())
    # Days pass: confidence would move with elapsed time alone, were stale KRs news.
    world.dataset.advance(timedelta(days=5))
    world.jira.faults.server_errors(count=None)

    second = runtime.run_locked(PassOptions(as_of=datetime.now(UTC) + timedelta(days=20)))

    assert second.exit_code == 1
    assert second.failures == [second.source_failures[0]]
    assert second.scorecard.changes == () and second.scorecard.deliveries == ()
    assert sum(world.slack.counters.values()) == slack_before
    assert sum(world.teams.counters.values()) == teams_before
    assert _posted(world) == posted
    before, after = _kr_docs(first.scorecard.to_json()), _kr_docs(second.scorecard.to_json())
    for kr_id in _jira_krs(plan):
        assert after[kr_id]["stale"] is True, kr_id
        assert after[kr_id]["value"] == before[kr_id]["value"], kr_id
        assert after[kr_id]["measured_at"] == before[kr_id]["measured_at"] is not None, kr_id
    assert after["CO-1.KR3"]["stale"] is False  # manual: measured by the plan, not Jira


def test_scorecard_json_given_a_kr_never_measured_has_nulls_and_its_objective_mean_leaves_it_out(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = _runtime(world, plan)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    # Once the source fails, a KR new to the plan has nothing to keep.
    changed = plan.model_copy(deep=True)
    objective = next(o for o in changed.objectives if o.id == "OPS-1")
    new_kr = objective.key_results[0].model_copy(update={"id": "OPS-1.KR9", "weight": 5.0})
    objective.key_results.append(new_kr)
    world.jira.faults.server_errors(count=None)

    result = _runtime(world, changed).run_locked(PassOptions())

    doc = result.scorecard.to_json()
    kr = _kr_docs(doc)["OPS-1.KR9"]
    assert (kr["value"], kr["score"], kr["band"], kr["confidence"], kr["measured_at"]) == (
        None, None, None, None, None)
    ops = next(o for o in doc["objectives"] if o["id"] == "OPS-1")
    kept = [k for k in ops["key_results"] if k["id"] != "OPS-1.KR9"]
    total = sum(k["weight"] for k in kept)
    assert ops["score"] == pytest.approx(sum(k["score"] * k["weight"] for k in kept) / total,
                                         abs=1e-4)
    assert any(w.get("kr") == "OPS-1" and "OPS-1.KR9" in w["message"] for w in doc["warnings"])


def test_readyz_given_jira_failing_is_503_with_the_reason_then_200_after_a_good_pass(
    world: SandboxWorld,
) -> None:
    runtime = _runtime(world, load_plan(DEMO_PLAN))
    clock = FakeClock(_START)
    schedule = Schedule.parse("5m")
    scheduler = Scheduler(runtime, schedule,
                          leadership=Leadership(world.database_url, holder="a"),
                          metrics=ServiceMetrics(), clock=clock)
    probe = DatabaseProbe(world.database_url)
    app = ServiceApp(status=scheduler.state.view, period=schedule.period,
                     metrics=scheduler.metrics,
                     webhook=JiraWebhookEndpoint(None, scheduler.on_webhook, clock=clock),
                     database_probe=probe, clock=clock)
    server = HttpServer(app, host="127.0.0.1", port=0).start()
    url = f"http://127.0.0.1:{server.port}/readyz"
    try:
        world.jira.faults.server_errors(count=None)
        scheduler.tick()
        failing = requests.get(url, timeout=10)
        assert failing.status_code == 503
        assert "source main" in failing.json()["reason"]
        assert failing.json()["last_success"] is None
        assert scheduler.metrics.registry.get_sample_value(
            "okr_sync_last_success_timestamp_seconds") in (None, 0.0)

        world.jira.faults.clear()
        clock.advance(minutes=5)
        scheduler.tick()
        ready = requests.get(url, timeout=10)
        assert ready.status_code == 200
        assert ready.json()["last_success"] == clock.now.isoformat()
    finally:
        server.stop()
        scheduler.close()
        probe.close()
