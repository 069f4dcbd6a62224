"""``checkins.allowed`` in the plan: who may check in from Slack or Teams besides owners."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text, plan_json_schema

_PLAN = """version: 1
cycle: {name: "2026-Q4", start: 2026-10-01, end: 2026-12-31, timezone: UTC}
people:
  alice: {name: Alice Ng, slack: U012AB3CD}
  bob: {slack: U0BOB1234}
objectives:
  - id: O1
    title: t
    owner: alice
    key_results:
      - {id: K1, title: k, measure: {kind: manual}, target: 3}
"""


def test_load_plan_given_no_checkins_section_allows_owners_only() -> None:
    assert load_plan_text(_PLAN).checkins.allowed == []


def test_load_plan_given_allowed_people_and_anyone_reads_them() -> None:
    plan = load_plan_text(_PLAN + "checkins: {allowed: [bob, anyone]}\n")
    assert plan.checkins.allowed == ["bob", "anyone"] and plan.checkins.allows_anyone()


def test_load_plan_given_unknown_allowed_person_names_the_entry() -> None:
    with pytest.raises(PlanError) as caught:
        load_plan_text(_PLAN + "checkins: {allowed: [bob, carol]}\n", name="plan.yaml")
    (issue,) = caught.value.issues
    assert str(issue).startswith("plan.yaml:12:27: checkins.allowed[1]: unknown person 'carol': "
                                 "`checkins.allowed` takes keys of `people` or 'anyone'")


def test_load_plan_given_unknown_checkins_key_refuses_it() -> None:
    with pytest.raises(PlanError) as caught:
        load_plan_text(_PLAN + "checkins: {alowed: [bob]}\n", name="plan.yaml")
    assert any("checkins.alowed" in str(issue) for issue in caught.value.issues)


def test_plan_json_schema_given_checkins_describes_allowed() -> None:
    schema = plan_json_schema()
    policy = schema["$defs"]["CheckinPolicy"]
    assert "anyone" in policy["properties"]["allowed"]["description"]
    assert schema["properties"]["checkins"]["$ref"].endswith("CheckinPolicy")
