"""KPIs as guardrails end to end: a red Jira-measured guardrail KPI caps its objective's
confidence in `run` against the sandboxes, with the reason; the plan's JSON Schema
documents `guardrails` and `scoring.guardrail_confidence`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan_loader import plan_json_schema
from okr_sync.sync.sandbox_world import SandboxWorld
from support.paths import DEMO_PLAN

runner = CliRunner()


def test_run_given_red_guardrail_kpi_caps_objective_confidence_with_reason(
    world: SandboxWorld, tmp_path: Path
) -> None:
    plan = yaml.safe_load(DEMO_PLAN.read_text())
    plan["routes"] = {name: [t for t in targets if "teams_bot" not in t]
                      for name, targets in plan["routes"].items()}
    esc = next(k for k in plan["kpis"] if k["id"] == "ESC")
    esc["thresholds"] = {"green": 0, "yellow": 0}  # any open escalation is red
    guarded = next(o for o in plan["objectives"] if o["id"] == "SUP-1")
    guarded["guardrails"] = ["ESC"]
    calm = next(o for o in plan["objectives"] if o["id"] == "CO-1")
    calm["guardrails"] = ["NRR"]  # 104: yellow, caps nothing
    plan.setdefault("scoring", {})["guardrail_confidence"] = "off_track"
    path = tmp_path / "guarded.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    env = {**world.environment(), "OKR_SYNC_PLAN": str(path)}

    result = runner.invoke(app, ["run", "--output", "json"], env=env)

    assert result.exit_code == 0, result.stderr
    card = json.loads(result.stdout)
    kpis = {k["id"]: k for k in card["kpis"]}
    assert kpis["ESC"]["value"] > 0 and kpis["ESC"]["status"] == "red"
    objectives = {o["id"]: o for o in card["objectives"]}
    assert objectives["SUP-1"]["red_guardrails"] == ["ESC"]
    assert objectives["SUP-1"]["confidence"] in ("off_track", "blocked")
    assert not objectives["CO-1"].get("red_guardrails")
    assert {"kr": "SUP-1",
            "message": "confidence capped at off_track: guardrail KPI ESC is red"} in [
        w for w in card["warnings"] if w.get("kr") == "SUP-1"]


def test_plan_json_schema_given_guardrails_documents_them() -> None:
    schema = plan_json_schema()
    objective = schema["$defs"]["Objective"]["properties"]
    assert "guardrails" in objective and objective["guardrails"].get("description")
    scoring = schema["$defs"]["Scoring"]["properties"]["guardrail_confidence"]
    assert scoring["default"] == "at_risk"
    assert set(scoring["enum"]) == {"at_risk", "off_track"}
