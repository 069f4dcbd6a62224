"""A measure state read back from the store keeps its facts as columns: a pass builds
the tuples of the items it changed, not of every item its touched measures hold."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from typing import Any

import pytest

from okr_sync.config.plan import Plan
from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.scoring.evaluate import SourceData, evaluate_measures, measure_states
from okr_sync.scoring.fact_columns import FactColumns
from okr_sync.scoring.incremental import Changes, MeasureState
from okr_sync.scoring.measures import Contribution, ItemFact
from okr_sync.sync.explanation import Explanation
from support.issue_builders import AFTER_START, CYCLE_START, issue
from support.plan_builders import PlanBuilder, objective

ITEMS = 300


def _plan() -> Plan:
    def kr(kr_id: str, measure: dict[str, Any]) -> dict[str, Any]:
        return {"id": kr_id, "title": f"KR {kr_id}", "measure": measure, "target": 20}

    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP"]}})
        .with_objective(objective(
            "O",
            kr("ALL", {"kind": "done_ratio", "select": {"project": ["ENT", "SUP"]}}),
            kr("PTS", {"kind": "done_ratio", "unit": "story_points", "scope": "frozen",
                       "select": {"project": "ENT"}}),
            kr("SUM", {"kind": "sum", "field": "story_points", "select": {"project": "SUP"}}),
        ))
        .build()
    )


def _mirror() -> dict[str, JiraIssue]:
    items = [issue(f"{'ENT' if n % 3 else 'SUP'}-{n}", id=str(n), done=n % 4 == 0,
                   points=None if n % 7 == 0 else float(n % 5) + 0.1,
                   created=AFTER_START if n % 11 == 0 else issue("X-1").created)
             for n in range(1, ITEMS + 1)]
    return {i.id: i for i in items}


def _read_back(states: dict[str, MeasureState]) -> dict[str, MeasureState]:
    return {owner: MeasureState.from_json(json.loads(json.dumps(state.to_json())))
            for owner, state in states.items()}


def _alive(kind: type) -> int:
    return sum(type(o) is kind for o in gc.get_objects())


def test_measure_states_given_states_read_back_and_two_changes_build_only_their_facts(
    collector_off: None,
) -> None:
    plan, mirror = _plan(), _mirror()
    texts = {owner: json.dumps(state.to_json()) for owner, state in measure_states(
        plan, {"main": SourceData(mirror)}, cycle_start=CYCLE_START).items()}
    changed = {"5": replace(mirror["5"], status="Done", status_category="done"),
               "6": replace(mirror["6"], story_points=8.0)}
    mirror.update(changed)
    sources = {"main": SourceData(mirror)}
    facts_before, contributions_before = _alive(ItemFact), _alive(Contribution)

    stored = {owner: MeasureState.from_json(json.loads(text)) for owner, text in texts.items()}
    states = measure_states(plan, sources, cycle_start=CYCLE_START, before=stored,
                            changes={"main": Changes(changed)})
    evaluations = evaluate_measures(plan, sources, cycle_start=CYCLE_START, states=states)

    # Two changed items, each in two measures: four facts; their contributions, and
    # no more (the 300 items' facts are held as columns).
    assert _alive(ItemFact) - facts_before <= 4
    assert _alive(Contribution) - contributions_before <= 4
    assert all(isinstance(state.facts, FactColumns) for state in states.values())
    full = measure_states(plan, sources, cycle_start=CYCLE_START)
    assert states == full
    assert {o: list(s.facts) for o, s in states.items()} == {
        o: list(s.facts) for o, s in full.items()}
    assert evaluations == evaluate_measures(plan, sources, cycle_start=CYCLE_START)


def test_measure_states_given_read_back_state_gaining_and_losing_items_equal_full(
) -> None:
    plan, mirror = _plan(), _mirror()
    stored = _read_back(measure_states(plan, {"main": SourceData(mirror)},
                                       cycle_start=CYCLE_START))
    # Moved between projects (leaves one measure, joins another, in a new place), a new
    # item, a deleted one.
    changed = {"7": replace(mirror["7"], project="SUP", key="SUP-7"),
               "9": replace(mirror["9"], project="ENT", key="ENT-2"),
               "900": issue("ENT-150", id="900", points=2.0)}
    del mirror["12"]
    mirror.update(changed)
    sources = {"main": SourceData(mirror)}

    states = measure_states(plan, sources, cycle_start=CYCLE_START, before=stored,
                            changes={"main": Changes(changed, frozenset({"12"}))})

    full = measure_states(plan, sources, cycle_start=CYCLE_START)
    assert states == full
    assert {o: list(s.facts) for o, s in states.items()} == {
        o: list(s.facts) for o, s in full.items()}
    assert _read_back(states) == full
    assert evaluate_measures(plan, sources, cycle_start=CYCLE_START, states=states) == (
        evaluate_measures(plan, sources, cycle_start=CYCLE_START))


def test_measure_state_to_json_given_a_read_back_state_stores_its_columns_as_read() -> None:
    plan, mirror = _plan(), _mirror()
    full = measure_states(plan, {"main": SourceData(mirror)}, cycle_start=CYCLE_START)
    for owner, state in _read_back(full).items():
        assert json.loads(json.dumps(state.to_json())) == json.loads(
            json.dumps(full[owner].to_json()))


def test_measure_state_from_json_given_repeated_ids_refuses_the_state() -> None:
    plan, mirror = _plan(), _mirror()
    stored = json.loads(json.dumps(measure_states(
        plan, {"main": SourceData(mirror)}, cycle_start=CYCLE_START)["SUM"].to_json()))
    columns = stored["columns"]
    doubled = [column + column for column in columns]
    with pytest.raises(ValueError, match="not stored item facts"):
        MeasureState.from_json(stored | {"columns": doubled})


def test_explanation_to_json_given_read_back_state_stores_rows_without_item_tuples(
    collector_off: None,
) -> None:
    plan, mirror = _plan(), _mirror()
    sources = {"main": SourceData(mirror)}
    stored = _read_back(measure_states(plan, sources, cycle_start=CYCLE_START))
    by_full = evaluate_measures(plan, sources, cycle_start=CYCLE_START)
    evaluations = evaluate_measures(plan, sources, cycle_start=CYCLE_START, states=stored)
    contributions_before = _alive(Contribution)

    documents = {owner: Explanation.of(e).to_json() for owner, e in evaluations.items()}

    assert _alive(Contribution) == contributions_before
    assert documents == {owner: Explanation.of(e).to_json() for owner, e in by_full.items()}
