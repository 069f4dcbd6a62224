"""`okr-sync run --dry-run --output json` on a plan of manual KRs, checked against hand math."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from support.paths import EXAMPLES
from support.plan_builders import PlanBuilder, manual_kr, objective

runner = CliRunner()


def _cascade_plan(tmp_path: Path) -> Path:
    builder = (
        PlanBuilder()
        .with_objective(objective("TOP", manual_kr("T.1", target=10, current=4),
                                  perspective="customer"))
        .with_objective(objective(
            "MID",
            manual_kr("M.1", baseline=40, target=5, current=26),  # decrease: 14/35 = 0.4
            manual_kr("M.2", direction="at_most", target=2, current=3),  # 0
            manual_kr("M.3", target=100, current=30, weight=2),  # 0.3
            parent="TOP", weight=2, perspective="internal"))
        .with_objective(objective(
            "LEAF", manual_kr("L.1", direction="at_least", target=99.9, current=99.95),
            parent="MID", perspective="internal"))
        .with_objective(objective("SIDE", manual_kr("S.1", target=10, current=1),
                                  parent="TOP", weight=0, perspective="learning"))
        .with_kpi({"id": "NRR", "title": "NRR", "perspective": "financial", "value": 104,
                   "thresholds": {"green": 110, "yellow": 100}})
        .with_kpi({"id": "MTTR", "title": "MTTR", "direction": "decrease", "value": 1.5,
                   "thresholds": {"green": 2, "yellow": 4}})
    )
    return builder.write(tmp_path / "plan.yaml")


def _run_json(*args: str) -> dict:
    result = runner.invoke(app, ["run", "--dry-run", "--output", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_dry_run_given_cascade_plan_prints_hand_computed_scorecard(tmp_path: Path) -> None:
    doc = _run_json("--plan", str(_cascade_plan(tmp_path)), "--as-of", "2026-11-16")
    assert doc["cycle"] == {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                            "as_of": "2026-11-16T00:00:00+00:00", "elapsed": 0.5}
    objectives = {o["id"]: o for o in doc["objectives"]}
    krs = {kr["id"]: kr for o in doc["objectives"] for kr in o["key_results"]}
    assert {k: (v["score"], v["band"], v["confidence"]) for k, v in krs.items()} == {
        "T.1": (0.4, "progress", "on_track"),  # projected 0.8
        "M.1": (0.4, "progress", "on_track"),
        "M.2": (0, "missed", "off_track"),
        "M.3": (0.3, "missed", "at_risk"),  # projected 0.6
        "L.1": (1, "strong", "on_track"),
        "S.1": (0.1, "missed", "off_track"),  # projected 0.2
    }
    assert krs["M.1"]["baseline"] == 40 and krs["M.1"]["target"] == 5 and krs["M.1"]["value"] == 26
    assert krs["M.2"]["baseline"] is None and krs["M.2"]["direction"] == "at_most"
    # LEAF = 1.0; MID = (0.4 + 0 + 0.3*2 + 1.0) / 5 = 0.4; TOP = (0.4 + 0.4*2) / 3, SIDE left out
    assert {k: (v["score"], v["band"], v["confidence"], v["parent"])
            for k, v in objectives.items()} == {
        "TOP": (0.4, "progress", "off_track", None),
        "MID": (0.4, "progress", "off_track", "TOP"),
        "LEAF": (1, "strong", "on_track", "MID"),
        "SIDE": (0.1, "missed", "off_track", "TOP"),
    }
    assert doc["perspectives"] == [
        {"id": "financial", "title": "Financial", "score": None, "band": None},
        {"id": "customer", "title": "Customer", "score": 0.4, "band": "progress"},
        {"id": "internal", "title": "Internal Processes", "score": 0.6, "band": "progress"},
        {"id": "learning", "title": "Learning & Growth", "score": None, "band": None},
    ]
    assert [(k["id"], k["value"], k["status"]) for k in doc["kpis"]] == [
        ("NRR", 104, "yellow"), ("MTTR", 1.5, "green")]
    assert doc["changes"] == [] and doc["deliveries"] == []


def test_run_dry_run_given_early_as_of_everything_on_track(tmp_path: Path) -> None:
    doc = _run_json("--plan", str(_cascade_plan(tmp_path)), "--as-of", "2026-10-05T12:00")
    assert doc["cycle"]["elapsed"] == pytest.approx(4.5 / 92, abs=1e-4)
    assert {kr["confidence"] for o in doc["objectives"] for kr in o["key_results"]} == {"on_track"}


def test_run_dry_run_given_cycle_timezone_reads_as_of_there(tmp_path: Path) -> None:
    plan = PlanBuilder().with_cycle(timezone="America/New_York").with_objective(
        objective("O", manual_kr("O.1", target=4, current=1))).write(tmp_path / "p.yaml")
    doc = _run_json("--plan", str(plan), "--as-of", "2026-11-16")
    assert doc["cycle"]["as_of"] == "2026-11-16T00:00:00-05:00"


def test_run_dry_run_given_text_output_prints_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--dry-run", "--plan", str(_cascade_plan(tmp_path)),
                                 "--as-of", "2026-11-16"])
    assert result.exit_code == 0
    assert "TOP" in result.stdout and "off_track" in result.stdout and "40%" in result.stdout


def test_run_given_bad_as_of_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--dry-run", "--plan", str(_cascade_plan(tmp_path)),
                                 "--as-of", "mid-november"])
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def test_validate_given_examples_exits_0() -> None:
    examples = EXAMPLES
    for name in ("okr.yaml", "bsc.yaml", "hybrid.yaml"):
        result = runner.invoke(app, ["validate", "--plan", str(examples / name)])
        assert result.exit_code == 0, result.output


def test_validate_given_broken_plan_exits_2_with_one_line_per_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\ncycle: {name: Q, start: 2026-10-01, end: 2026-12-31}\nobjectives:\n"
        "  - {id: A, title: A, parent: B, key_results: [{id: K, title: k, measure: {kind: manual},"
        " target: 1}]}\n"
        "  - {id: B, title: B, parent: A, wat: 1, key_results: [{id: K, title: k,"
        " measure: {kind: manual}, target: 1}]}\n"
    )
    result = runner.invoke(app, ["validate", "--plan", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}:") for line in lines)
    assert any("parent cycle" in line for line in lines)
    assert any("duplicate id 'K'" in line for line in lines)
    assert any(line.endswith("wat: unknown key") for line in lines)


def test_validate_given_yaml_syntax_error_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nobjectives: [\n")
    result = runner.invoke(app, ["validate", "--plan", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:")


def test_schema_given_no_args_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "okr-sync plan"
