"""Measures over a mirrored dataset across two passes: values, reasons and warnings."""

from __future__ import annotations

from dataclasses import replace

from okr_sync.scoring.evaluate import SourceData, evaluate_measures
from okr_sync.sync.fetch_plan import jira_filter_url, measure_jqls
from support.issue_builders import AFTER_START, CYCLE_START, by_id, finish, issue, reopen
from support.plan_builders import PlanBuilder, objective


def _kr(kr_id: str, measure: dict, **extra) -> dict:
    return {"id": kr_id, "title": f"KR {kr_id}", "measure": measure, **extra}


def _plan():
    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP"]}})
        .with_objective(objective(
            "O",
            _kr("EPIC", {"kind": "done_ratio", "select": {"epic": "ENT-100"}}),
            _kr("PTS", {"kind": "done_ratio", "unit": "story_points",
                        "select": {"project": "ENT", "labels": "sso"}}),
            _kr("BUGS", {"kind": "count", "jql": "project = SUP AND type = Bug"},
                baseline=10, target=0),
            _kr("RAW", {"kind": "done_ratio", "jql": "labels = raw"}),
        ))
        .build()
    )


def _states(result, owner):
    return result[owner].states


def test_evaluate_measures_given_two_passes_tells_reasons_for_each_change() -> None:
    plan = _plan()
    epic = issue("ENT-100", issuetype="Epic", id="100")
    a = issue("ENT-1", parent_id="100", parent_key="ENT-100", labels=("sso",), points=3)
    b = issue("ENT-2", parent_id="100", parent_key="ENT-100", done=True, labels=("sso",), points=5)
    c = issue("ENT-3", parent_id="100", parent_key="ENT-100")
    d = issue("ENT-4", parent_id="100", parent_key="ENT-100")
    first = evaluate_measures(plan, {"main": SourceData(
        by_id(epic, a, b, c, d), memberships={"BUGS": 7, "RAW": [a.id, c.id]},
        jql=measure_jqls(plan, "main"),
        link=lambda jql: jira_filter_url("https://jira.test", jql))}, cycle_start=CYCLE_START)
    assert first["EPIC"].measured.value == 0.25
    assert first["PTS"].measured.value == 5 / 8
    assert first["BUGS"].measured.value == 7
    assert first["RAW"].measured.value == 0
    assert first["EPIC"].reasons == ()
    assert first["EPIC"].measured.links[0].startswith("https://jira.test/issues/?jql=project%20in")

    # Second pass: a done, b reopened, c moved to SUP (new key, same id, no longer a child),
    # d re-parented away (removed), e added to the epic, b's points changed.
    moved_c = replace(c, key="SUP-9", project="SUP", parent_id=None, parent_key=None)
    e = issue("ENT-5", parent_id="100", parent_key="ENT-100", created=AFTER_START)
    second_items = by_id(epic, finish(a), replace(reopen(b), story_points=8), moved_c,
                         replace(d, parent_id=None, parent_key=None), e)
    previous = {owner: ev.states for owner, ev in first.items()}
    second = evaluate_measures(plan, {"main": SourceData(
        second_items, memberships={"BUGS": 5, "RAW": [a.id, moved_c.id]})},
        cycle_start=CYCLE_START, previous=previous)
    assert second["EPIC"].reasons == (
        "+1 done", "-1 reopened", "+1 added to scope", "-1 removed from scope", "1 moved out")
    assert second["EPIC"].measured.value == 1 / 3
    assert second["PTS"].reasons == ("+1 done", "-1 reopened", "points changed")
    assert second["RAW"].reasons == ("+1 done",)
    assert second["RAW"].states[moved_c.id].key == "SUP-9"
    assert second["BUGS"].measured.value == 5


def test_evaluate_measures_given_failed_query_reports_error_and_measures_the_rest() -> None:
    plan = _plan()
    result = evaluate_measures(plan, {"main": SourceData(
        {}, memberships={"BUGS": 1}, failures={"RAW": "bad JQL in RAW: field 'x' does not exist"})},
        cycle_start=CYCLE_START)
    assert result["RAW"].error == "bad JQL in RAW: field 'x' does not exist"
    assert result["RAW"].measured is None
    assert result["BUGS"].ok


def test_evaluate_measures_given_person_worthy_situations_warns() -> None:
    plan = _plan()
    old = [issue(f"ENT-{n}", parent_id="100", parent_key="ENT-100", labels=("sso",))
           for n in range(1, 6)]
    new = [issue(f"ENT-{n}", parent_id="100", parent_key="ENT-100", created=AFTER_START)
           for n in range(6, 8)]
    result = evaluate_measures(plan, {"main": SourceData(
        by_id(*old, *new), memberships={"BUGS": 0, "RAW": []})}, cycle_start=CYCLE_START)
    assert "empty scope: the selection matches no work items" in result["RAW"].measured.warnings
    assert "5 selected items have no story points" in result["PTS"].measured.warnings
    epic_warnings = result["EPIC"].measured.warnings
    assert "scope grew 40% since the cycle started (5 -> 7 items)" in epic_warnings
    assert ("5 items are also counted by PTS of the same objective (double counting)"
            in result["EPIC"].measured.warnings)


def test_evaluate_measures_given_count_kr_does_not_warn_of_scope_growth() -> None:
    # A count KR's scope is what it counts (open bugs): its growth is the value moving.
    plan = (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["SUP"]}})
        .with_objective(objective(
            "O",
            _kr("OPEN", {"kind": "count", "select": {"project": "SUP"}}, baseline=10, target=0),
            _kr("RATIO", {"kind": "done_ratio", "select": {"project": "SUP"}}),
        ))
        .build()
    )
    old = [issue(f"SUP-{n}") for n in range(1, 6)]
    new = [issue(f"SUP-{n}", created=AFTER_START) for n in range(6, 9)]
    result = evaluate_measures(plan, {"main": SourceData(by_id(*old, *new))},
                               cycle_start=CYCLE_START)
    assert not [w for w in result["OPEN"].measured.warnings if "scope grew" in w]
    assert [w for w in result["RATIO"].measured.warnings if "scope grew" in w]


def test_evaluate_measures_given_story_point_ratio_keeps_points_done_and_total() -> None:
    plan = _plan()
    items = [issue("ENT-1", labels=("sso",), points=5, done=True),
             issue("ENT-2", labels=("sso",), points=8),
             issue("ENT-3", labels=("sso",), points=None, done=True)]
    result = evaluate_measures(plan, {"main": SourceData(
        by_id(*items), memberships={"BUGS": 0, "RAW": []})}, cycle_start=CYCLE_START)
    counts = result["PTS"].measured.items
    assert (counts.points_done, counts.points_total) == (5.0, 13.0)
    assert (counts.selected, counts.done) == (3, 2)
    assert result["EPIC"].measured.items.points_done is None  # counted in issues


def test_evaluation_summary_given_story_point_ratio_keeps_points_for_a_quiet_pass() -> None:
    from okr_sync.scoring.evaluate import evaluation_from_summary, evaluation_summary

    plan = _plan()
    items = [issue("ENT-1", labels=("sso",), points=5, done=True),
             issue("ENT-2", labels=("sso",), points=8)]
    result = evaluate_measures(plan, {"main": SourceData(
        by_id(*items), memberships={"BUGS": 0, "RAW": []})}, cycle_start=CYCLE_START)
    again = evaluation_from_summary("PTS", evaluation_summary(result["PTS"]))
    assert again.measured is not None and result["PTS"].measured is not None
    assert again.measured.items == result["PTS"].measured.items
    old = {**evaluation_summary(result["PTS"])}
    old["measured"] = {**old["measured"], "items": old["measured"]["items"][:2]}
    assert evaluation_from_summary("PTS", old).measured.items.points_done is None
