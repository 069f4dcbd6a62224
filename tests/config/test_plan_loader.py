from __future__ import annotations

import re
from pathlib import Path

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan, load_plan_text, plan_json_schema
from support.paths import EXAMPLES
from support.plan_builders import PlanBuilder, manual_kr, objective

ISSUE_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")


def _errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, name="plan.yaml")
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize("name", ["okr.yaml", "bsc.yaml", "hybrid.yaml"])
def test_load_plan_given_shipped_example_is_valid(name: str) -> None:
    plan = load_plan(EXAMPLES / name)
    assert plan.objectives


def test_load_plan_given_several_problems_lists_each_with_file_line_column() -> None:
    text = """\
version: 1
cycle: {name: Q, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: A
    title: A
    parent: B
    colour: red
    key_results:
      - {id: A.1, title: x, measure: {kind: manual}, target: 3}
  - id: B
    title: B
    parent: A
    key_results:
      - {id: A.1, title: dup, measure: {kind: manual}, target: 3}
"""
    errors = _errors(text)
    assert errors == [
        "plan.yaml:6:5: objectives[0].parent: parent cycle: A -> B -> A",
        "plan.yaml:7:5: objectives[0].colour: unknown key",
        "plan.yaml:14:10: objectives[1].key_results[0].id: duplicate id 'A.1' "
        "(first used at objectives[0].key_results[0])",
    ]
    assert all(ISSUE_LINE.match(line) for line in errors)


def test_load_plan_given_yaml_syntax_error_reports_its_position() -> None:
    errors = _errors('version: 1\ncycle: {name: "Q", start: 2026-10-01\nobjectives: []\n')
    assert len(errors) == 1
    assert errors[0].startswith("plan.yaml:3:11: (yaml): ")


def test_load_plan_given_duplicate_yaml_key_reports_it() -> None:
    errors = _errors("version: 1\nversion: 1\n")
    assert errors[0].startswith("plan.yaml:") and "duplicate" in errors[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b.with_cycle(end="2026-09-30"),
         "cycle.end: the cycle must end after it starts"),
        (lambda b: b.with_cycle(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1), parent="NOPE")),
         "objectives[1].parent: unknown parent objective 'NOPE'"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1), perspective="fun")),
         "objectives[1].perspective: unknown perspective 'fun'"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1), notify=["ops"])),
         "objectives[1].notify[0]: unknown route 'ops'"),
        (lambda b: b.with_objective(objective("X")),
         "objectives[1].key_results: objective 'X' has no contributors"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1, weight=0))),
         "contributors sum to 0"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1, weight=-1))),
         "objectives[1].key_results[0].weight: Input should be greater than or equal to 0"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=2, baseline=2))),
         "baseline and target are equal"),
        (lambda b: b.with_objective(
            objective("X", {"id": "X.1", "title": "t", "measure": {"kind": "velocity"}})),
         "unknown measure kind 'velocity'"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=2, direction="at_most",
                                                             baseline=5))),
         "takes only a `target`"),
        (lambda b: b.with_objective(objective("X", {
            "id": "X.1", "title": "t",
            "measure": {"kind": "count", "select": {"project": "ZZZ"}}, "target": 3})).set(
            "jira", {"main": {"projects": ["ENT"]}}),
         "select.project: project 'ZZZ' is outside jira.main.projects"),
        (lambda b: b.with_objective(objective("X", {
            "id": "X.1", "title": "t",
            "measure": {"kind": "count", "select": {"project": "ENT"}, "jql": "project = ENT"},
            "target": 3})),
         "give exactly one of `select` or `jql`"),
        (lambda b: b.with_kpi({"id": "K", "title": "k", "value": 1, "measure": {"kind": "manual"},
                               "thresholds": {"green": 2, "yellow": 1}}),
         "kpis[0]: give exactly one of `value` or `measure`"),
        (lambda b: b.with_kpi({"id": "O-1", "title": "k", "value": 1,
                               "thresholds": {"green": 2, "yellow": 1}}),
         "kpis[0].id: duplicate id 'O-1'"),
        (lambda b: b.with_bands(("low", 0.2), ("high", 0.7)), "the lowest band must have min 0"),
    ],
)
def test_load_plan_given_invalid_plan_names_field_and_problem(change, expected: str) -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    change(builder)
    errors = _errors(builder.yaml())
    assert any(expected in line for line in errors), errors
    assert all(ISSUE_LINE.match(line) for line in errors), errors


def test_load_plan_given_missing_file_reports_it_without_traceback(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "nope.yaml")
    assert str(caught.value).endswith("(plan): cannot read: No such file or directory")


def test_load_plan_given_defaults_applies_contract_defaults() -> None:
    plan = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10))).build()
    assert [(b.name, b.min) for b in plan.scoring.bands] == [
        ("missed", 0.0), ("progress", 0.4), ("strong", 0.7)]
    assert [p.id for p in plan.perspectives] == ["financial", "customer", "internal", "learning"]
    assert plan.notify.min_delta == 0.05
    assert plan.objectives[0].weight == 1 and plan.objectives[0].key_results[0].weight == 1
    assert plan.key_result("O-1.KR1").effective_baseline == 0


def test_plan_json_schema_given_plan_model_describes_objectives_and_measures() -> None:
    schema = plan_json_schema()
    assert "objectives" in schema["properties"]
    assert {"DoneRatioMeasure", "ManualMeasure", "KeyResult"} <= set(schema["$defs"])


def test_load_plan_given_shape_and_reference_errors_lists_both() -> None:
    text = """\
version: 1
cycle: {name: Q, start: 2026-12-31, end: 2026-10-01}
objectives:
  - id: A
    title: A
    perspective: fun
    notify: [nowhere]
    key_results:
      - {id: A.1, title: x, measure: {kind: manual}, target: three}
"""
    errors = _errors(text)
    assert any("cycle.end: the cycle must end after it starts" in e for e in errors)
    assert any("objectives[0].perspective: unknown perspective 'fun'" in e for e in errors)
    assert any("objectives[0].notify[0]: unknown route 'nowhere'" in e for e in errors)
    assert any("objectives[0].key_results[0].target:" in e for e in errors)


def test_load_plan_given_value_fitting_no_union_member_reports_it_once() -> None:
    builder = PlanBuilder().with_objective(objective("O", {
        "id": "O.1", "title": "t", "measure": {"kind": "count", "select": {"project": 5}},
        "target": 3}))
    errors = [e for e in _errors(builder.yaml()) if "select.project" in e]
    assert len(errors) == 1
    assert "list[str]" not in errors[0] and ".str:" not in errors[0]


def test_load_plan_given_measure_without_kind_says_so() -> None:
    builder = PlanBuilder().with_objective(objective("O", {
        "id": "O.1", "title": "t", "measure": {"jql": "project = X"}, "target": 3}))
    assert any("measure: missing `kind`" in e for e in _errors(builder.yaml()))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b.set("notify", {"digest_cron": "every monday"}),
         "notify.digest_cron: 'every monday' is not a cron expression"),
        (lambda b: b.with_kpi({"id": "K", "title": "k", "measure": {"kind": "manual"},
                               "thresholds": {"green": 2, "yellow": 1}}),
         "a KPI entered by hand takes `value:`"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=float("nan")))),
         "objectives[1].key_results[0].target:"),
        (lambda b: b.with_objective(objective("X", manual_kr("X.1", target=1,
                                                             weight=float("inf")))),
         "objectives[1].key_results[0].weight:"),
    ],
)
def test_load_plan_given_unusable_values_refuses_them(change, expected: str) -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    change(builder)
    errors = _errors(builder.yaml())
    assert any(expected in line for line in errors), errors


@pytest.mark.parametrize("value", ["5", "2 days", "0d", "soon"])
def test_load_plan_given_bad_stale_after_names_it_with_its_position(value: str) -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    builder.set("notify", {"stale_after": value})
    errors = _errors(builder.yaml())
    assert any("notify.stale_after" in line for line in errors), errors
    assert all(ISSUE_LINE.match(line) for line in errors), errors


def test_load_plan_given_stale_after_reads_days_hours_and_minutes() -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    plan = load_plan_text(builder.set("notify", {"stale_after": "1d12h30m"}).yaml(), name="p")
    assert plan.notify.stale_after is not None
    assert plan.notify.stale_after.total_seconds() == (36 * 60 + 30) * 60
