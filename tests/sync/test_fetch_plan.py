from __future__ import annotations

import pytest

from okr_sync.config.plan import JiraSourceConfig, Selector
from okr_sync.sync.fetch_plan import (
    MembershipQuery,
    build_fetch_plan,
    is_volatile_jql,
    jira_filter_url,
    selector_jql,
)
from support.plan_builders import PlanBuilder, objective


def _kr(kr_id: str, measure: dict, **extra) -> dict:
    return {"id": kr_id, "title": kr_id, "measure": measure, **extra}


def test_build_fetch_plan_given_many_krs_one_scope_per_source_and_needed_fields_only() -> None:
    plan = (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP"]}, "dc": {"projects": ["OPS"]}})
        .with_objective(objective(
            "O",
            _kr("A", {"kind": "done_ratio", "select": {"project": "ENT", "epic": "ENT-1"}}),
            _kr("B", {"kind": "done_ratio", "select": {"project": "ent"}}),
            _kr("C", {"kind": "sum", "field": "customfield_10050", "select": {"issuetype": "Bug"}},
                target=10),
            _kr("D", {"kind": "count", "jql": "project = SUP AND priority = Highest"},
                baseline=40, target=5),
            _kr("E", {"kind": "milestone", "jql": "fixVersion = 2.0 AND updated >= -7d"}),
            _kr("F", {"kind": "done_ratio", "unit": "story_points", "source": "dc",
                      "select": {}}),
        ))
        .build()
    )
    fetch = build_fetch_plan(plan, local_jql=False)
    main, dc = fetch["main"], fetch["dc"]
    assert main.projects == ("ENT", "SUP")
    assert main.scope_jql == 'project in ("ENT", "SUP")'
    assert main.extra_fields == ("customfield_10050",)
    assert main.memberships == (
        MembershipQuery("D", "project = SUP AND priority = Highest", "count", False),
        MembershipQuery("E", "fixVersion = 2.0 AND updated >= -7d", "ids", True),
    )
    assert dc.scope_jql == 'project in ("OPS")'
    assert (main.epics, dc.epics) == (("ENT-1",), ())


def test_build_fetch_plan_given_raw_jql_on_plan_projects_answers_it_on_the_mirror() -> None:
    plan = (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP", "OPS"]}})
        .with_objective(objective(
            "O",
            _kr("A", {"kind": "done_ratio", "select": {"project": "ENT"}}),
            _kr("B", {"kind": "count", "jql": "project = sup AND priority = Highest"},
                baseline=40, target=5),
            _kr("C", {"kind": "done_ratio", "jql": "project = HR AND labels = x"}),
            _kr("D", {"kind": "done_ratio", "jql": "project = ENT AND summary ~ sso"}),
            _kr("E", {"kind": "done_ratio", "jql": "labels = x AND project in (ENT, OPS)"}),
        ))
        .build()
    )
    main = build_fetch_plan(plan)["main"]
    local = {q.owner: q.local for q in main.memberships}
    assert local["B"] is not None and local["B"].projects == {"SUP"}
    assert local["C"] is None  # HR is not a project of the plan: not known to be mirrored
    assert local["D"] is None  # text search
    assert local["E"] is not None and local["E"].projects == {"ENT", "OPS"}
    # The projects local JQL reads join the mirrored scope; OPS and SUP via raw JQL only.
    assert main.projects == ("ENT", "OPS", "SUP")
    assert {"priority", "labels", "project"} <= main.local_attributes
    assert all(q.local is None for q in build_fetch_plan(plan, local_jql=False)["main"].memberships)
    assert build_fetch_plan(plan, local_jql=False)["main"].projects == ("ENT",)


def test_build_fetch_plan_given_manual_plan_needs_no_source() -> None:
    plan = PlanBuilder().with_objective(objective(
        "O", _kr("M", {"kind": "manual"}, target=3))).build()
    assert build_fetch_plan(plan) == {}


@pytest.mark.parametrize(
    ("jql", "volatile"),
    [("project = ENT", False), ("created >= startOfMonth()", True),
     ("sprint in openSprints()", True), ("updated > -2w", True), ('due < "-1d"', True),
     ("assignee = currentUser()", True), ('summary ~ "now"', False),
     ('created >= "2026/10/01"', False)],
)
def test_is_volatile_jql_given_query_detects_clock_dependence(jql: str, volatile: bool) -> None:
    assert is_volatile_jql(jql) is volatile


def test_selector_jql_given_selector_renders_equivalent_jql() -> None:
    select = Selector(project="ENT", issuetype=["Story", "Bug"], labels="sso", epic="ENT-100",
                      status_category="done")
    assert selector_jql(select, JiraSourceConfig(projects=["ENT"])) == (
        'project in ("ENT") AND issuetype in ("Story", "Bug") AND labels in ("sso") AND '
        'parent in ("ENT-100") AND statusCategory in ("done") AND '
        "issuetype not in subTaskIssueTypes()"
    )


def test_jira_filter_url_given_jql_encodes_it() -> None:
    assert jira_filter_url("https://acme.atlassian.net/", "project = ENT") == (
        "https://acme.atlassian.net/issues/?jql=project%20%3D%20ENT")


def test_build_fetch_plan_given_raw_jql_jira_answers_screens_it_when_one_issue_decides() -> None:
    plan = (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT"]}})
        .with_objective(objective(
            "O",
            _kr("A", {"kind": "done_ratio", "select": {"project": "ENT"}}),
            _kr("B", {"kind": "done_ratio", "jql": "parent = ENT-1"}),
            _kr("C", {"kind": "done_ratio", "jql": "project = HR AND labels = x"}),
            _kr("D", {"kind": "done_ratio", "jql": '"Epic Link" = ENT-1'}),
            _kr("E", {"kind": "done_ratio", "jql": "parent = ENT-1 AND updated > -7d"}),
            _kr("F", {"kind": "count", "jql": "parent = ENT-1"}, baseline=4, target=0),
        ))
        .build()
    )
    screens = {q.owner: q.screen for q in build_fetch_plan(plan)["main"].memberships}
    assert screens["B"] is not None and screens["B"].fields == {"parent"}
    assert screens["C"] is None  # HR may be a project's name: Jira reads it so
    assert screens["D"] is None  # whether the parent is an epic: another issue decides
    assert screens["E"] is None  # volatile: re-run every pass anyway
    assert screens["F"] is None  # a count keeps no members to look for
