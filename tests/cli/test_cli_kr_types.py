"""Range, phased and over-achieving KRs end to end: `run` against the sandboxes scores
them, its JSON and Slack message show them, `explain` writes their formulas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld
from support.paths import DEMO_PLAN

runner = CliRunner()
#: Day 45.5 of the 92-day cycle.
AS_OF = "2026-11-15T12:00"


def _kr(plan: dict[str, Any], kr_id: str) -> dict[str, Any]:
    return next(kr for o in plan["objectives"] for kr in o["key_results"] if kr["id"] == kr_id)


@pytest.fixture
def typed_env(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    """The demo plan (Slack and Workflows routes) with a range KR, a phased KR with a
    score cap, and an over-achieving manual KR."""
    plan = yaml.safe_load(DEMO_PLAN.read_text())
    plan["routes"] = {name: [t for t in targets if "teams_bot" not in t]
                      for name, targets in plan["routes"].items()}
    bugs = _kr(plan, "SUP-1.KR1")  # open bugs: a count
    del bugs["baseline"]
    bugs.update(direction="range", target={"min": 1, "max": 2}, tolerance=1000)
    points = _kr(plan, "SUP-1.KR2")
    points.update(milestones=[{"date": "2026-10-31", "target": 40},
                              {"date": "2026-11-30", "target": 100}])
    signed = _kr(plan, "CO-1.KR3")
    signed.update(current=12, score_cap=1.5)
    path = tmp_path / "typed.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return {**world.environment(), "OKR_SYNC_PLAN": str(path)}


def test_run_given_kr_types_scores_and_shows_them(typed_env: dict[str, str],
                                                  world: SandboxWorld) -> None:
    result = runner.invoke(app, ["run", "--as-of", AS_OF, "--output", "json"], env=typed_env)
    assert result.exit_code == 0, result.stderr
    card = json.loads(result.stdout)
    krs = {kr["id"]: kr for o in card["objectives"] for kr in o["key_results"]}

    bugs = krs["SUP-1.KR1"]
    assert (bugs["target"], bugs["direction"], bugs["baseline"]) == (
        {"min": 1, "max": 2}, "range", None)
    distance = max(0, bugs["value"] - 2)
    assert distance > 0  # the sandbox has more open bugs than that
    assert bugs["score"] == pytest.approx(max(0.0, 1 - distance / 1000), abs=1e-4)

    points = krs["SUP-1.KR2"]
    # Between 40 (due 2026-11-01 00:00) and 100 (due 2026-12-01 00:00): 14.5 of 30 days.
    assert points["expected"] == pytest.approx(40 + 60 * 14.5 / 30)
    assert [m["target"] for m in points["milestones"]] == [40, 100]

    signed = krs["CO-1.KR3"]
    assert (signed["score"], signed["score_cap"]) == (1.2, 1.5)
    co = next(o for o in card["objectives"] if o["id"] == "CO-1")
    parts = co["key_results"] + [o for o in card["objectives"] if o["parent"] == "CO-1"]
    assert co["score"] == pytest.approx(
        sum(min(p["score"], 1) * p["weight"] for p in parts)
        / sum(p["weight"] for p in parts), abs=1e-3)
    assert co["score"] < 1

    posted = json.dumps([m.as_json() for m in world.slack.messages(DEMO_CHANNEL)],
                        ensure_ascii=False)
    assert "stay within 1 to 2" in posted

    explained = runner.invoke(app, ["explain", "SUP-1.KR1", "--output", "json"], env=typed_env)
    assert explained.exit_code == 0, explained.stderr
    formula = json.loads(explained.stdout)["score"]["formula"]
    assert formula.startswith(f"range: {bugs['value']} is {distance} outside [1, 2]; ")
    phased = json.loads(runner.invoke(app, ["explain", "SUP-1.KR2", "--output", "json"],
                                      env=typed_env).stdout)
    # Expected 69 of 150: e = 0.46 (the straight line of A3 would divide by f = 0.4946).
    score = phased["score"]["value"]
    assert phased["confidence"]["formula"].startswith(
        f"milestones expect 69 by now (score e = 0.46); projected = min(1, {score}/0.46) = ")


def test_status_given_range_kr_shows_its_range_as_target(typed_env: dict[str, str]) -> None:
    assert runner.invoke(app, ["run", "--as-of", AS_OF], env=typed_env).exit_code == 0
    status = runner.invoke(app, ["status"], env={**typed_env, "COLUMNS": "200"})
    assert status.exit_code == 0, status.stderr
    line = next(line for line in status.stdout.splitlines() if "SUP-1.KR1" in line)
    assert "1..2" in line
