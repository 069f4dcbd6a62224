"""``serve:`` in a plan: its own schedule under ``serve --plans``."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text
from okr_sync.sync.service.plans import plan_schedule
from okr_sync.sync.service.schedule import Schedule
from support.paths import DEMO_PLAN


def _with_serve(block: str) -> str:
    return DEMO_PLAN.read_text(encoding="utf-8") + "\nserve: " + block + "\n"


def test_plan_given_serve_interval_has_its_own_schedule() -> None:
    plan = load_plan_text(_with_serve("{interval: 30s}"))
    assert plan_schedule(plan, Schedule()) == Schedule.parse("30s", None)
    assert plan_schedule(load_plan_text(DEMO_PLAN.read_text()), Schedule()) == Schedule()


@pytest.mark.parametrize(("block", "message"), [
    ("{interval: 5m, cron: '0 9 * * MON'}", "either interval or cron"),
    ("{cron: 'every monday'}", "invalid cron expression"),
    ("{interval: soon}", "should match pattern"),
    ("{every: 5m}", "every"),
])
def test_plan_given_a_bad_serve_block_is_refused_at_its_place(block: str, message: str) -> None:
    with pytest.raises(PlanError) as raised:
        load_plan_text(_with_serve(block), name="plan.yaml")
    text = str(raised.value)
    assert message in text
    assert "plan.yaml:" in text and "serve" in text
