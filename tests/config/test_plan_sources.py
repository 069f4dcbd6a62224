"""The plan's Jira sources (issue 14 item 1): names usable in variables and webhook paths,
each measure's source known and connected by settings, the schema says so."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text, plan_json_schema

PLAN = """\
version: 1
cycle: {{name: Q, start: 2026-10-01, end: 2026-12-31}}
jira:
  main: {{projects: [ENT]}}
  {name}: {{projects: [OPS]}}
objectives:
  - id: A
    title: A
    key_results:
      - id: A.KR1
        title: cloud
        measure: {{kind: done_ratio, select: {{project: ENT}}}}
      - id: A.KR2
        title: data center
        measure: {{kind: count, source: {name}, jql: 'project = OPS'}}
        target: 1
"""


def test_load_plan_given_two_sources_reads_each_measure_s_source() -> None:
    plan = load_plan_text(PLAN.format(name="legacy"))
    sources = {owner: m.source for owner, m in plan.jira_measures()}
    assert sources == {"A.KR1": "main", "A.KR2": "legacy"}
    assert plan.jira["legacy"].projects == ["OPS"]


@pytest.mark.parametrize("name", ["bu-two", "bu__two", "_x"])
def test_load_plan_given_source_name_unfit_for_a_variable_refuses_at_its_line(name: str) -> None:
    with pytest.raises(PlanError) as error:
        load_plan_text(PLAN.format(name=name), name="plan.yaml")
    assert f"plan.yaml:5:3: jira.{name}: source name {name!r} must be letters" in str(error.value)


def test_load_plan_given_source_names_differing_in_case_refuses() -> None:
    text = PLAN.format(name="legacy").replace("  main: {projects: [ENT]}\n",
                                              "  main: {projects: [ENT]}\n  Legacy: {}\n")
    with pytest.raises(PlanError, match="'legacy' differs from 'Legacy' only in case"):
        load_plan_text(text)


def test_plan_json_schema_given_sources_gives_their_name_pattern_and_the_measure_source() -> None:
    schema = plan_json_schema()
    assert schema["properties"]["jira"]["propertyNames"]["pattern"].startswith("^[A-Za-z0-9]")
    source = schema["$defs"]["CountMeasure"]["properties"]["source"]
    assert source["default"] == "main" and "pattern" in source
