"""Plan validation of the KR types (issue 13 item 4): every problem is reported at its
own FILE:LINE:COLUMN, and the JSON Schema documents the formulas."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text, plan_json_schema
from support.plan_builders import PlanBuilder, manual_kr, objective

HEAD = """\
version: 1
cycle: {name: Q, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: O
    title: O
    key_results:
"""


def _errors(key_results: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan_text(HEAD + key_results, name="plan.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_load_plan_given_range_kr_reads_min_max_and_tolerance() -> None:
    plan = load_plan_text(HEAD + "      - {id: K, title: k, measure: {kind: manual}, "
                          "direction: range, target: {min: 2, max: 4.5}, tolerance: 1}\n")
    kr = plan.key_result("K")
    assert kr.range_target is not None
    assert (kr.range_target.min, kr.range_target.max, kr.tolerance) == (2, 4.5, 1)
    assert kr.effective_target is None


@pytest.mark.parametrize(("line", "error"), [
    ("direction: range, target: {min: 5, max: 3}",
     "plan.yaml:7:70: objectives[0].key_results[0].target: range min 5 is above max 3"),
    ("direction: range, target: {min: 1, max: 3, mid: 2}",
     "plan.yaml:7:95: objectives[0].key_results[0].target.mid: unknown key"),
    ("direction: range, target: 4",
     "plan.yaml:7:9: objectives[0].key_results[0]: direction: range takes `target: {min, max}`,"
     " and a {min, max} target needs direction: range"),
    ("target: {min: 1, max: 3}",
     "plan.yaml:7:9: objectives[0].key_results[0]: direction: range takes `target: {min, max}`,"
     " and a {min, max} target needs direction: range"),
    ("target: 10, tolerance: 2",
     "plan.yaml:7:9: objectives[0].key_results[0]: `tolerance` is only for direction: range"),
    ("direction: range, target: {min: 1, max: 3}, tolerance: 0",
     "plan.yaml:7:96: objectives[0].key_results[0].tolerance: Input should be greater than 0"),
    ("target: 10, score_cap: 0.5",
     "plan.yaml:7:64: objectives[0].key_results[0].score_cap: Input should be greater than or"
     " equal to 1"),
    ("direction: at_least, target: 10, score_cap: 1.5",
     "plan.yaml:7:9: objectives[0].key_results[0]: direction at_least scores by a threshold:"
     " `milestones` and `score_cap` are for linear KRs"),
    ("direction: range, target: {min: 1, max: 3}, milestones: [{date: 2026-11-01, target: 2}]",
     "plan.yaml:7:9: objectives[0].key_results[0]: direction range scores by a threshold:"
     " `milestones` and `score_cap` are for linear KRs"),
    ("target: 10, milestones: []",
     "plan.yaml:7:64: objectives[0].key_results[0].milestones: List should have at least 1 item"
     " after validation, not 0"),
])
def test_load_plan_given_bad_kr_type_reports_file_line_column(line: str, error: str) -> None:
    assert _errors(f"      - {{id: K, title: k, measure: {{kind: manual}}, {line}}}\n") == [error]


def test_load_plan_given_bad_milestones_reports_each_at_its_line() -> None:
    errors = _errors("""\
      - id: K
        title: k
        measure: {kind: manual}
        target: 100
        milestones:
          - {date: 2026-09-01, target: 10}
          - {date: 2026-11-01, target: 120}
          - {date: 2026-10-20, target: 50}
          - {date: 2026-11-20, target: 40}
          - {date: 2026-12-31, target: 90}
          - {date: 2026-12-01T10:00:00, target: 90}
""")
    path = "objectives[0].key_results[0].milestones"
    assert errors == [
        f"plan.yaml:17:14: {path}[5].date: give a date (YYYY-MM-DD): a milestone is due at the"
        " end of its day",
    ]
    errors = _errors("""\
      - id: K
        title: k
        measure: {kind: manual}
        target: 100
        milestones:
          - {date: 2026-09-01, target: 10}
          - {date: 2026-11-01, target: 120}
          - {date: 2026-10-20, target: 50}
          - {date: 2026-11-20, target: 40}
          - {date: 2026-12-31, target: 90}
""")
    assert errors == [
        f"plan.yaml:12:14: {path}[0].date: 2026-09-01 is outside the cycle (2026-10-01 to"
        " 2026-12-31)",
        f"plan.yaml:13:32: {path}[1].target: 120 is not between the baseline 0 and the target"
        " 100 (the KR's target is the final one)",
        f"plan.yaml:14:14: {path}[2].date: 2026-10-20 is not after the previous milestone"
        " (2026-11-01): milestones must be ascending",
        f"plan.yaml:15:32: {path}[3].target: 40 moves back from the previous milestone: each"
        " milestone must be at least as far as the one before",
        f"plan.yaml:16:32: {path}[4].target: a milestone on the cycle's last day must equal"
        " the target 100",
    ]


def test_load_plan_given_decreasing_kr_milestones_must_decrease() -> None:
    plan = PlanBuilder().with_objective(objective("O", manual_kr(
        "K", target=5, baseline=40, milestones=[{"date": "2026-10-31", "target": 30},
                                                {"date": "2026-12-31", "target": 5}])))
    assert plan.build().key_result("K").milestones is not None
    plan.doc["objectives"][0]["key_results"][0]["milestones"][0]["target"] = 45
    with pytest.raises(PlanError, match=r"milestones\[0\]\.target: 45 is not between"):
        plan.build()


def test_load_plan_given_cap_objectives_false_reads_it() -> None:
    plan = PlanBuilder().with_objective(objective("O", manual_kr("K", target=1))).set(
        "scoring", {"cap_objectives": False}).build()
    assert plan.scoring.cap_objectives is False
    assert PlanBuilder().with_objective(objective("O", manual_kr("K", target=1))
                                        ).build().scoring.cap_objectives is True


def test_plan_json_schema_given_kr_types_documents_their_formulas() -> None:
    schema = plan_json_schema()
    kr = schema["$defs"]["KeyResult"]["properties"]
    assert "max(0, 1 - d / T)" in kr["tolerance"]["description"]
    assert "range" in kr["direction"]["anyOf"][0]["enum"]
    assert {"$ref": "#/$defs/RangeTarget"} in kr["target"]["anyOf"]
    assert "interpolated linearly" in kr["milestones"]["description"]
    assert "clamp(progress, 0, score_cap)" in kr["score_cap"]["description"]
    assert schema["$defs"]["Milestone"]["required"] == ["date", "target"]
    assert "cap_objectives" in schema["$defs"]["Scoring"]["properties"]
