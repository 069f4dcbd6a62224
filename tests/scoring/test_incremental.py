"""Incremental measuring equals a full recomputation, after every step of random mutations."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr_sync.config.plan import Plan
from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.scoring import evaluate, incremental
from okr_sync.scoring.evaluate import (
    SourceData,
    evaluate_measures,
    measure_states,
    reason_basis,
)
from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.incremental import Changes, MeasureIndex, MeasureState
from okr_sync.scoring.measures import SelectorMatcher
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import scorecard_to_json
from okr_sync.sync.fetch_plan import measure_jqls
from support.hypothesis_profile import examples
from support.issue_builders import AFTER_START, BEFORE_START, CYCLE_START, issue
from support.plan_builders import PlanBuilder, objective

LABELS = ("sso", "infra", "raw")


def _kr(kr_id: str, measure: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": kr_id, "title": f"KR {kr_id}", "measure": measure, **extra}


def _plan(variant: int) -> Plan:
    """Two plans: the second changes some measures and keeps others as they were."""
    epic = "ENT-100" if variant == 0 else "SUP-200"
    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT", "SUP"]}})
        .with_objective(objective(
            "O",
            _kr("EPIC", {"kind": "done_ratio", "select": {"epic": epic}}),
            _kr("PTS", {"kind": "done_ratio", "unit": "story_points", "scope": "frozen",
                        "select": {"project": "ENT", "labels": ["sso", "infra"]}}),
            _kr("SUM", {"kind": "sum", "field": "story_points", "done_only": variant == 0,
                        "select": {"project": ["ENT", "SUP"]}}, target=20),
            _kr("MILE", {"kind": "milestone",
                         "select": {"project": "SUP", "priority": ["High", "Highest"]}}),
            _kr("OPEN", {"kind": "count", "select": {"status_category": ["new", "indeterminate"]}},
                target=0, baseline=10),
            _kr("RAW", {"kind": "done_ratio", "unit": "story_points", "jql": "labels = raw"}),
            _kr("RAWN", {"kind": "count", "jql": "project = SUP"}, target=0, baseline=10),
        ))
        .build()
    )


PLANS = (_plan(0), _plan(1))


def _start() -> dict[str, JiraIssue]:
    items = [
        issue("ENT-100", issuetype="Epic", id="100"),
        issue("SUP-200", issuetype="Epic", id="200"),
        issue("ENT-1", id="1", parent_id="100", parent_key="ENT-100", labels=("sso",), points=3),
        issue("ENT-2", id="2", done=True, labels=("infra", "raw"), points=5),
        issue("SUP-3", id="3", priority="High", parent_id="200", parent_key="SUP-200"),
        issue("SUP-4", id="4", done=True, priority="Highest", points=2.5, labels=("raw",)),
    ]
    return {i.id: i for i in items}


@dataclass
class World:
    """The mirror, the plan and raw-JQL memberships as they evolve."""

    issues: dict[str, JiraIssue] = field(default_factory=_start)
    plan: int = 0
    former_keys: dict[str, str] = field(default_factory=dict)
    next_id: int = 1000

    def resolve(self, key: str) -> str | None:
        for item in self.issues.values():
            if item.key.upper() == key.upper():
                return item.id
        return self.former_keys.get(key.upper())

    def memberships(self) -> dict[str, list[str] | int]:
        raw = sorted((i.id for i in self.issues.values() if "raw" in i.labels), key=int)
        return {"RAW": raw, "RAWN": sum(1 for i in self.issues.values() if i.project == "SUP")}

    def source(self) -> SourceData:
        plan = PLANS[self.plan]
        return SourceData(dict(self.issues), memberships=self.memberships(),
                          resolve_key=self.resolve, jql=measure_jqls(plan, "main"))


def _apply(world: World, step: tuple[Any, ...]) -> tuple[set[str], set[str]]:
    """Apply one mutation; returns (changed ids, removed ids)."""
    kind = step[0]
    ids = sorted(world.issues, key=int)
    if kind == "plan":
        world.plan = 1 - world.plan
        return set(), set()
    if kind == "add":
        world.next_id += 1
        new = issue(f"{step[1]}-{world.next_id}", id=str(world.next_id), points=step[2],
                    labels=step[3], created=AFTER_START if step[4] else BEFORE_START)
        world.issues[new.id] = new
        return {new.id}, set()
    if not ids:
        return set(), set()
    target = world.issues[ids[step[1] % len(ids)]]
    if kind == "delete":
        del world.issues[target.id]
        return set(), {target.id}
    if kind == "status":
        done = step[2]
        target = replace(target, status="Done" if done else "To Do",
                         status_category="done" if done else "new",
                         resolution="Done" if done else None)
    elif kind == "points":
        target = replace(target, story_points=step[2])
    elif kind == "epic":
        parent = {None: (None, None), "100": ("100", "ENT-100"), "200": ("200", "SUP-200")}
        parent_id, _ = parent[step[2]]
        parent_key = None if parent_id is None else world.issues.get(parent_id, target).key
        target = replace(target, parent_id=parent_id, parent_key=parent_key)
    elif kind == "labels":
        target = replace(target, labels=step[2])
    elif kind == "priority":
        target = replace(target, priority=step[2])
    elif kind == "move":
        project = "SUP" if target.project == "ENT" else "ENT"
        world.former_keys[target.key.upper()] = target.id
        world.next_id += 1
        target = replace(target, project=project, key=f"{project}-{world.next_id}")
    world.issues[target.id] = target
    return {target.id}, set()


_index = st.integers(min_value=0, max_value=50)
_labels = st.lists(st.sampled_from(LABELS), max_size=2, unique=True).map(tuple)
_points = st.sampled_from([None, 0.0, 1.0, 2.5, 3.0, 0.1])
steps = st.one_of(
    st.tuples(st.just("status"), _index, st.booleans()),
    st.tuples(st.just("points"), _index, _points),
    st.tuples(st.just("epic"), _index, st.sampled_from([None, "100", "200"])),
    st.tuples(st.just("labels"), _index, _labels),
    st.tuples(st.just("priority"), _index, st.sampled_from(["High", "Low", None])),
    st.tuples(st.just("move"), _index),
    st.tuples(st.just("delete"), _index),
    st.tuples(st.just("add"), st.sampled_from(["ENT", "SUP"]), _points, _labels, st.booleans()),
    st.tuples(st.just("plan")),
)


def _scorecard_json(plan: Plan, evaluations: dict[str, Any]) -> dict[str, Any]:
    measured = {o: e.measured for o, e in evaluations.items() if e.measured is not None}
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    return scorecard_to_json(build_scorecard(ScoringInput(
        plan=plan, as_of=as_of, measured=measured, checkins={}, measured_at=as_of)))


def _stored(states: dict[str, MeasureState]) -> dict[str, MeasureState]:
    """``states`` as a later pass reads them back from the store (kept as columns)."""
    return {owner: MeasureState.from_json(json.loads(json.dumps(state.to_json())))
            for owner, state in states.items()}


@pytest.mark.parametrize("stored", [False, True], ids=["in_memory", "read_back"])
@settings(max_examples=examples(100))
@given(st.lists(steps, min_size=1, max_size=25))
def test_measure_states_given_random_mutations_equal_full_recomputation_after_every_step(
    stored: bool, mutations: list[tuple[Any, ...]],
) -> None:
    world = World()
    plan = PLANS[world.plan]
    states: dict[str, MeasureState] = measure_states(
        plan, {"main": world.source()}, cycle_start=CYCLE_START)
    if stored:
        states = _stored(states)
    published: dict[str, dict[str, ItemState]] = {}
    for step in mutations:
        changed, removed = _apply(world, step)
        plan = PLANS[world.plan]
        sources = {"main": world.source()}
        changes = Changes({i: world.issues[i] for i in changed}, frozenset(removed))
        incremental = measure_states(plan, sources, cycle_start=CYCLE_START, before=states,
                                     changes={"main": changes})
        full = measure_states(plan, sources, cycle_start=CYCLE_START)
        assert incremental == full, step
        # In the same order too: sums add the items in it.
        assert {o: list(s.facts) for o, s in incremental.items()} == {
            o: list(s.facts) for o, s in full.items()}, step

        by_increment = evaluate_measures(plan, sources, cycle_start=CYCLE_START,
                                         previous=published, states=incremental)
        by_full = evaluate_measures(plan, sources, cycle_start=CYCLE_START, previous=published)
        assert by_increment == by_full, step
        assert _scorecard_json(plan, by_increment) == _scorecard_json(plan, by_full)
        # The published items are the previous states': reasons told from those states
        # and the changed ids only are the same.
        touched = frozenset(changed) | frozenset(removed)
        bases = {owner: basis for owner in incremental if owner in published
                 and (basis := reason_basis(states[owner], incremental[owner], touched))}
        by_basis = evaluate_measures(plan, sources, cycle_start=CYCLE_START,
                                     previous=published, states=incremental, bases=bases)
        assert by_basis == by_full, step
        assert [e.contributions for e in by_basis.values()] == [
            e.contributions for e in by_full.values()]
        states = _stored(incremental) if stored else incremental
        published = {o: e.states for o, e in by_full.items() if e.ok}


def test_update_given_no_change_keeps_every_state_object() -> None:
    world = World()
    plan = PLANS[0]
    before = measure_states(plan, {"main": world.source()}, cycle_start=CYCLE_START)
    after = measure_states(plan, {"main": world.source()}, cycle_start=CYCLE_START,
                           before=before, changes={"main": Changes({})})
    assert all(after[owner] is before[owner] for owner in before)


def test_update_given_changed_plan_measure_rebuilds_only_that_measure() -> None:
    world = World()
    before = measure_states(PLANS[0], {"main": world.source()}, cycle_start=CYCLE_START)
    world.plan = 1
    after = measure_states(PLANS[1], {"main": world.source()}, cycle_start=CYCLE_START,
                           before=before, changes={"main": Changes({})})
    rebuilt = {owner for owner in after if after[owner] is not before[owner]}
    assert rebuilt == {"EPIC", "SUM"}
    assert after["EPIC"].facts.keys() == {"3"}


def test_measure_state_given_json_round_trip_is_equal() -> None:
    world = World()
    states = measure_states(PLANS[0], {"main": world.source()}, cycle_start=CYCLE_START)
    assert states["RAW"].members == ("2", "4")
    for state in states.values():
        assert MeasureState.from_json(state.to_json()) == state
        assert MeasureState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_measure_state_given_facts_stores_one_list_per_field_not_one_per_item() -> None:
    world = World()
    state = measure_states(PLANS[0], {"main": world.source()},
                           cycle_start=CYCLE_START)["SUM"]
    assert len(state.facts) == 6

    stored = json.loads(json.dumps(state.to_json()))

    # A column per field (Contribution's 9, ItemFact's other 3), each holding every
    # item: the flags and how each item is counted as a character per item.
    assert [len(column) for column in stored["columns"]] == [6] * 12
    assert stored["columns"][0] == list(state.facts)
    assert set(stored["columns"][5] + stored["columns"][9]) <= {"0", "1"}
    assert stored["columns"][8] == "".join(
        {"done": "d", "open": "o"}[f.contribution.counted] for f in state.facts.values())


def test_measure_state_given_rows_stored_before_columns_reads_them() -> None:
    world = World()
    state = measure_states(PLANS[0], {"main": world.source()},
                           cycle_start=CYCLE_START)["SUM"]
    rows = [[*c, at_start, no_status, unestimated]
            for c, at_start, no_status, unestimated in state.facts.values()]

    assert MeasureState.from_json({"key": state.key, "members": None, "facts": rows}) == state


def _foreign(columns: list[Any], damage: str) -> list[Any]:
    items = len(columns[0])
    if damage == "a column missing":
        return columns[:-1]
    if damage == "a column short":
        return [columns[0][:-1], *columns[1:]]
    if damage == "an id not text":
        return [[1, *columns[0][1:]], *columns[1:]]
    if damage == "an unknown way of counting":
        return [*columns[:8], "q" * items, *columns[9:]]
    if damage == "a flag neither 0 nor 1":
        return [*columns[:5], "2" * items, *columns[6:]]
    if damage == "a key not text":
        return [columns[0], [5] * items, *columns[2:]]
    if damage == "points as text":
        return [*columns[:6], ["3"] * items, *columns[7:]]
    if damage == "an amount as a flag":
        return [*columns[:7], [True] * items, *columns[8:]]
    return [*columns[:9], [False] * items, *columns[10:]]  # a flag column as values


@pytest.mark.parametrize("damage", [
    "a column missing", "a column short", "an id not text", "an unknown way of counting",
    "a flag neither 0 nor 1", "a flag column as values", "a key not text", "points as text",
    "an amount as a flag"])
def test_measure_state_given_foreign_columns_refuses_them(damage: str) -> None:
    world = World()
    state = measure_states(PLANS[0], {"main": world.source()},
                           cycle_start=CYCLE_START)["SUM"]
    stored = json.loads(json.dumps(state.to_json()))
    assert MeasureState.from_json(stored) == state

    with pytest.raises(ValueError):
        MeasureState.from_json(stored | {"columns": _foreign(stored["columns"], damage)})


def test_measure_state_given_states_decoded_apart_shares_their_text() -> None:
    # Each document decoded on its own, as the store reads one row at a time: decoded
    # JSON gives every value its own string.
    row = ('["10001", "WEB-1", "Checkout page", "In Progress", "WEB", false, 3.0, null,'
           ' "open", true, false, false]')
    first, second = (MeasureState.from_json(json.loads(
        f'{{"key": "k{n}", "members": null, "facts": [{row}]}}')) for n in (1, 2))

    one, other = first.facts["10001"][0], second.facts["10001"][0]
    # An issue selected by several measures, and the status, project and count repeated
    # on every row, are held once, not once per measure and row.
    assert all(a is b for a, b in zip(one, other, strict=True) if isinstance(a, str))
    assert one == other and first.facts["10001"] == second.facts["10001"]


def test_measure_index_given_item_tests_only_measures_filed_under_its_attributes() -> None:
    plan = PLANS[0]
    source = plan.jira["main"]
    world = World()
    matchers = {
        owner: SelectorMatcher(spec.select, source, world.resolve)
        for owner, spec in plan.jira_measures() if spec.select is not None
    }
    calls: list[str] = []

    class Counting(SelectorMatcher):
        def __call__(self, item: Any) -> bool:
            calls.append(self.owner)
            return super().__call__(item)

    counted = {}
    for owner, spec in plan.jira_measures():
        if spec.select is not None:
            matcher = Counting(spec.select, source, world.resolve)
            matcher.owner = owner  # type: ignore[attr-defined]
            counted[owner] = matcher
    index = MeasureIndex(counted)
    lone = issue("ENT-77", id="77", labels=())
    assert index.matching(lone) == {o for o, m in matchers.items() if m(lone)}
    # Not filed under its epic, labels or priority: EPIC, PTS and MILE are never tried.
    assert set(calls) == {"SUM", "OPEN"}


def test_update_given_items_keeping_their_place_sorts_no_measure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    before = measure_states(PLANS[0], {"main": world.source()}, cycle_start=CYCLE_START)
    sorts: list[int] = []
    original = incremental._inserted

    def counting(ordered: Any, new: Any) -> Any:
        sorts.append(len(new))
        return original(ordered, new)

    monkeypatch.setattr(incremental, "_inserted", counting)
    # Points change: every item stays in its measures, in its place (project, key).
    changed = {"1": replace(world.issues["1"], story_points=8.0),
               "2": replace(world.issues["2"], story_points=1.0)}
    world.issues.update(changed)
    after = measure_states(PLANS[0], {"main": world.source()}, cycle_start=CYCLE_START,
                           before=before, changes={"main": Changes(changed)})

    assert after == measure_states(PLANS[0], {"main": world.source()},
                                   cycle_start=CYCLE_START)
    assert sorts == []
    assert any(after[o] is not before[o] for o in after)


def test_evaluate_given_no_published_items_builds_no_item_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    built: list[int] = []
    original = evaluate.item_states

    def counting(contributions: Any) -> Any:
        built.append(1)
        return original(contributions)

    monkeypatch.setattr(evaluate, "item_states", counting)
    evaluations = evaluate_measures(PLANS[0], {"main": world.source()},
                                    cycle_start=CYCLE_START)

    # Of an owner without published items only which items it holds is read (double
    # counting): a state is built for an item only when asked for.
    assert built == []
    assert evaluations["PTS"].states["1"] == ItemState("ENT-1", "ENT", False, 3.0)
    assert set(evaluations["PTS"].states) == {"1", "2"}


def test_measure_state_given_facts_of_ids_not_among_its_members_refuses_it() -> None:
    world = World()
    state = measure_states(PLANS[0], {"main": world.source()},
                           cycle_start=CYCLE_START)["SUM"]
    stored = json.loads(json.dumps(state.to_json()))
    ids = list(state.facts)
    assert MeasureState.from_json(stored | {"members": ids}).members == tuple(ids)

    with pytest.raises(ValueError):
        MeasureState.from_json(stored | {"members": ids[1:]})
