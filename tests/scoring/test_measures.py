from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from okr_sync.config.plan import (
    CountMeasure,
    DoneRatioMeasure,
    JiraSourceConfig,
    MilestoneMeasure,
    Selector,
    SumMeasure,
)
from okr_sync.scoring import measures
from okr_sync.scoring.explain import measurement_warnings
from okr_sync.scoring.measures import SelectorMatcher, measure
from support.issue_builders import AFTER_START, CYCLE_START, issue

SOURCE = JiraSourceConfig(projects=["ENT", "SUP"])


def _select(items, source=SOURCE, resolve=None, **select):
    matcher = SelectorMatcher(Selector(**select), source, resolve)
    return [i.key for i in items if matcher(i)]


def test_selector_given_list_values_matches_any_and_keys_must_all_hold() -> None:
    items = [
        issue("ENT-1", issuetype="Bug", labels=("sso", "p1")),
        issue("ENT-2", issuetype="Story", labels=("SSO",)),
        issue("ENT-3", issuetype="Bug", labels=("billing",)),
        issue("SUP-1", issuetype="Bug", labels=("sso",)),
    ]
    assert _select(items, project="ENT", labels=["sso", "x"]) == ["ENT-1", "ENT-2"]
    assert _select(items, project="ent", issuetype="bug", labels="sso") == ["ENT-1"]
    assert _select(items, issuetype=["Bug"]) == ["ENT-1", "ENT-3", "SUP-1"]  # source projects


def test_selector_given_components_versions_priority_and_category_matches_each() -> None:
    items = [
        issue("ENT-1", components=("Auth", "API"), fix_versions=("2.0",), priority="Highest"),
        issue("ENT-2", components=("UI",), fix_versions=("2.1",), priority="Low", done=True),
    ]
    assert _select(items, components="auth") == ["ENT-1"]
    assert _select(items, fix_version=["2.1", "3.0"]) == ["ENT-2"]
    assert _select(items, priority="highest") == ["ENT-1"]
    assert _select(items, status_category="done") == ["ENT-2"]
    assert _select(items, status_category=["new", "indeterminate"]) == ["ENT-1"]


def test_selector_given_subtasks_excludes_them_unless_asked() -> None:
    items = [issue("ENT-1"), issue("ENT-2", is_subtask=True, issuetype="Sub-task")]
    assert _select(items, project="ENT") == ["ENT-1"]
    assert _select(items, project="ENT", include_subtasks=True) == ["ENT-1", "ENT-2"]


def test_selector_given_epic_matches_direct_children_only() -> None:
    epic = issue("ENT-100", issuetype="Epic", id="900")
    child = issue("ENT-1", parent_id="900", parent_key="ENT-100")
    grandchild = issue("ENT-2", parent_id=child.id, parent_key="ENT-1", is_subtask=True)
    other = issue("ENT-3", parent_id="901", parent_key="ENT-101")
    items = [epic, child, grandchild, other]
    assert _select(items, epic="ENT-100", include_subtasks=True) == ["ENT-1"]


def test_selector_given_epic_moved_to_new_key_still_matches_children_by_id() -> None:
    child = issue("SUP-7", parent_id="900", parent_key="SUP-50")  # epic ENT-100 became SUP-50
    resolve = {"ENT-100": "900"}.get
    assert _select([child], resolve=resolve, epic="ENT-100", project=["ENT", "SUP"]) == ["SUP-7"]
    assert _select([child], epic="ENT-100", project=["ENT", "SUP"]) == []


def test_selector_given_project_outside_matches_nothing() -> None:
    assert _select([issue("OPS-1")], issuetype="Story") == []


def test_measure_done_ratio_by_issues_counts_done_over_selected() -> None:
    items = [issue("ENT-1", done=True), issue("ENT-2"), issue("ENT-3"), issue("ENT-4", done=True)]
    result = measure(DoneRatioMeasure(kind="done_ratio", jql="x"), items, SOURCE,
                     cycle_start=CYCLE_START)
    assert (result.value, result.selected, result.done) == (0.5, 4, 2)


def test_measure_done_ratio_by_points_counts_unestimated_as_zero() -> None:
    items = [issue("ENT-1", done=True, points=3), issue("ENT-2", points=5),
             issue("ENT-3", done=True), issue("ENT-4")]
    spec = DoneRatioMeasure(kind="done_ratio", unit="story_points", jql="x")
    result = measure(spec, items, SOURCE, cycle_start=CYCLE_START)
    assert result.value == pytest.approx(3 / 8)
    assert result.unestimated == 2
    described = [c.describe("done_ratio", "story_points") for c in result.contributions]
    assert described == ["done, 3 pts", "not done, 5 pts", "done, no points (counts 0)",
                         "not done, no points (counts 0)"]


def test_measure_done_ratio_given_nothing_or_no_points_is_zero() -> None:
    spec = DoneRatioMeasure(kind="done_ratio", unit="story_points", jql="x")
    assert measure(spec, [], SOURCE, cycle_start=CYCLE_START).value == 0
    assert measure(spec, [issue("ENT-1", done=True)], SOURCE, cycle_start=CYCLE_START).value == 0


def test_measure_done_ratio_frozen_scope_counts_only_items_from_before_start() -> None:
    items = [issue("ENT-1", done=True), issue("ENT-2"),
             issue("ENT-3", done=True, created=AFTER_START),
             issue("ENT-4", done=True, created=AFTER_START)]
    spec = DoneRatioMeasure(kind="done_ratio", scope="frozen", jql="x")
    result = measure(spec, items, SOURCE, cycle_start=CYCLE_START)
    assert result.value == 0.5
    assert result.frozen_scope_size == 2
    assert [c.counted for c in result.contributions] == [
        "done", "open", "excluded_frozen", "excluded_frozen"]


def test_measure_done_given_localised_status_uses_category_key() -> None:
    item = replace(issue("ENT-1"), status="Готово", status_category="done", resolution=None)
    spec = DoneRatioMeasure(kind="done_ratio", jql="x")
    assert measure(spec, [item], SOURCE, cycle_start=CYCLE_START).value == 1
    by_resolution = JiraSourceConfig(projects=["ENT"], done="resolution")
    assert measure(spec, [item], by_resolution, cycle_start=CYCLE_START).value == 0


def test_measure_count_counts_selected_items() -> None:
    items = [issue("SUP-1"), issue("SUP-2", done=True)]
    assert measure(CountMeasure(kind="count", jql="x"), items, SOURCE,
                   cycle_start=CYCLE_START).value == 2


def test_measure_sum_of_points_and_custom_field_with_done_only() -> None:
    items = [issue("ENT-1", done=True, points=3, fields={"customfield_10050": 1200.5}),
             issue("ENT-2", points=5, fields={"customfield_10050": "300"}),
             issue("ENT-3", done=True, fields={"customfield_10050": None})]
    points = SumMeasure(kind="sum", field="story_points", jql="x")
    assert measure(points, items, SOURCE, cycle_start=CYCLE_START).value == 8
    done_points = SumMeasure(kind="sum", field="story_points", done_only=True, jql="x")
    assert measure(done_points, items, SOURCE, cycle_start=CYCLE_START).value == 3
    custom = SumMeasure(kind="sum", field="customfield_10050", jql="x")
    assert measure(custom, items, SOURCE, cycle_start=CYCLE_START).value == 1500.5


def test_measure_milestone_needs_every_selected_item_done() -> None:
    spec = MilestoneMeasure(kind="milestone", jql="x")
    done = [issue("ENT-1", done=True), issue("ENT-2", done=True)]
    assert measure(spec, done, SOURCE, cycle_start=CYCLE_START).value == 1
    assert measure(spec, [*done, issue("ENT-3")], SOURCE, cycle_start=CYCLE_START).value == 0
    assert measure(spec, [], SOURCE, cycle_start=CYCLE_START).value == 0


UNUSABLE = [float("nan"), float("inf"), float("-inf"), 1e308, -1000.0, 10**400]


@pytest.mark.parametrize("bad", UNUSABLE)
def test_measure_done_ratio_by_points_given_unusable_points_counts_them_as_unestimated(
    bad: float,
) -> None:
    # Records built before the connector refused such values (a stored mirror) still hold them.
    items = [issue("ENT-1", done=True, points=3), issue("ENT-2", points=bad),
             issue("ENT-3", points=1)]
    spec = DoneRatioMeasure(kind="done_ratio", unit="story_points", jql="x")
    result = measure(spec, items, SOURCE, cycle_start=CYCLE_START)
    assert result.value == pytest.approx(3 / 4)
    assert result.unestimated == 1
    assert result.contributions[1].points is None


@pytest.mark.parametrize("bad", [*UNUSABLE, "NaN", "-5", "1e999", [1], {"value": float("nan")}])
def test_measure_sum_given_unusable_values_counts_them_as_missing(bad: object) -> None:
    numeric = isinstance(bad, float | int)
    items = [issue("ENT-1", done=True, points=2, fields={"customfield_10050": 10}),
             issue("ENT-2", points=bad if numeric else None, fields={"customfield_10050": bad})]
    points = SumMeasure(kind="sum", field="story_points", jql="x")
    custom = SumMeasure(kind="sum", field="customfield_10050", jql="x")
    summed = measure(points, items, SOURCE, cycle_start=CYCLE_START)
    assert (summed.value, summed.unestimated) == (2, 1)
    assert measure(custom, items, SOURCE, cycle_start=CYCLE_START).value == 10


def test_measure_given_items_without_status_counts_them_not_done_and_warns() -> None:
    nameless = replace(issue("ENT-2"), status="", status_category="undefined")
    items = [issue("ENT-1", done=True), nameless, issue("ENT-3")]
    spec = DoneRatioMeasure(kind="done_ratio", jql="x")
    result = measure(spec, items, SOURCE, cycle_start=CYCLE_START)
    assert (result.value, result.no_status) == (pytest.approx(1 / 3), 1)
    warnings = measurement_warnings(result, uses_points=False, frozen_at_start=None)
    assert warnings == ["1 selected item has no status (counted as not done)"]
    by_resolution = JiraSourceConfig(projects=["ENT"], done="resolution")
    assert measure(spec, items, by_resolution, cycle_start=CYCLE_START).no_status == 0


def test_measure_given_key_with_unicode_digits_orders_it_without_crashing() -> None:
    items = [issue("SUP-\u00b2"), issue("SUP-1")]
    result = measure(CountMeasure(kind="count", jql="x"), items, SOURCE, cycle_start=CYCLE_START)
    assert [c.key for c in result.contributions] == ["SUP-\u00b2", "SUP-1"]


def test_measure_given_frozen_scope_counts_the_excluded_items_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[int] = []
    original = measures._excluded

    def counting(contributions: Any) -> int:
        counted.append(len(contributions))
        return original(contributions)

    monkeypatch.setattr(measures, "_excluded", counting)
    items = [issue("ENT-1", done=True), issue("ENT-2", created=AFTER_START)]
    spec = DoneRatioMeasure(kind="done_ratio", scope="frozen", jql="x")

    result = measure(spec, items, SOURCE, cycle_start=CYCLE_START)

    # One pass over the items tells the frozen scope and the value's terms.
    assert (result.value, result.frozen_scope_size, result.done) == (1.0, 1, 1)
    assert counted == [2]
