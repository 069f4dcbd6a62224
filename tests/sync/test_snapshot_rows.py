"""Explanation items stored as rows (snapshot version 3) read back exactly, and what
okr-sync stored before (version 2: each item an object, in snapshots and in the
``kr_items`` rows later snapshots still name) reads back the same after the upgrade."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.incremental import MeasureState
from okr_sync.scoring.measures import Contribution, ItemFact
from okr_sync.sync.measuring import previous_snapshots
from okr_sync.sync.state import (
    Explanation,
    PassSnapshot,
    SnapshotFormatError,
    previous_states,
)
from okr_sync.sync.store.snapshot_items import KEPT, item_ids
from okr_sync.sync.store.store import Store
from support.scorecards import realistic_scorecard

ITEMS = (
    Contribution("10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None, "done"),
    Contribution("10002", "ENT-8", "Audit log", "In Progress", "ENT", False, None, None, "open"),
    Contribution("10003", "SUP-1", "Refund", "To Do", "SUP", False, 0.5, 2.25,
                 "excluded_frozen"),
)


def _explanation(items: tuple[Contribution, ...] = ITEMS, **changes: Any) -> Explanation:
    return replace(Explanation("project = ENT", reasons=("+1 done",), items=items), **changes)


def _v2_entry(explanation: Explanation) -> dict[str, Any]:
    """The explanation as okr-sync wrote it before version 3: each item an object."""
    return {
        "jql": explanation.jql, "error": explanation.error, "count": explanation.count,
        "reasons": list(explanation.reasons),
        "items": [{"id": c.id, "key": c.key, "summary": c.summary, "status": c.status,
                   "project": c.project, "done": c.done, "points": c.points,
                   "amount": c.amount, "counted": c.counted} for c in explanation.items],
    }


def _through_json(doc: Any) -> Any:
    return json.loads(json.dumps(doc))


def test_explanation_to_json_given_items_writes_one_row_per_item_in_field_order() -> None:
    doc = _explanation().to_json()

    assert doc["items"] == [
        ["10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None, "done"],
        ["10002", "ENT-8", "Audit log", "In Progress", "ENT", False, None, None, "open"],
        ["10003", "SUP-1", "Refund", "To Do", "SUP", False, 0.5, 2.25, "excluded_frozen"],
    ]


def test_explanation_from_json_given_its_rows_through_json_reads_back_equal() -> None:
    explanation = _explanation()

    assert Explanation.from_json(_through_json(explanation.to_json())) == explanation


def test_explanation_from_json_given_version_2_objects_reads_what_its_rows_read() -> None:
    explanation = _explanation()

    old = Explanation.from_json(_through_json(_v2_entry(explanation)))

    assert old == explanation == Explanation.from_json(_through_json(explanation.to_json()))
    assert [type(c.points) for c in old.items] == [float, type(None), float]


def test_explanation_from_json_given_row_with_whole_numbers_reads_floats_as_objects_did(
) -> None:
    row = ["10001", "ENT-7", "SSO login", "Done", "ENT", True, 3, 2, "done"]
    obj = dict(zip(Contribution._fields, row, strict=True))

    from_row = Explanation.from_json({"jql": "x", "items": [row]}).items[0]
    from_object = Explanation.from_json({"jql": "x", "items": [obj]}).items[0]

    assert from_row == from_object == ITEMS[0]._replace(amount=2.0)
    assert (type(from_row.points), type(from_row.amount)) == (float, float)


@pytest.mark.parametrize("row", [
    ["10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None, "finished"],
    ["10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None],
    ["10001", "ENT-7", "SSO login", "Done", "ENT", True, "3", None, "done"],
])
def test_pass_snapshot_from_json_given_foreign_item_row_raises_a_format_error(
    row: list[Any],
) -> None:
    doc = PassSnapshot(realistic_scorecard()).to_json()
    doc["explain"] = {"KR": {"jql": "x", "items": [row]}}

    with pytest.raises(SnapshotFormatError):
        PassSnapshot.from_json(doc)


def test_measure_state_from_json_given_its_rows_through_json_reads_back_equal() -> None:
    facts = {c.id: ItemFact(c, c.id != "10003", False, c.points is None) for c in ITEMS}
    state = MeasureState("k", facts, members=("10001", "10002", "10003", "10009"))

    again = MeasureState.from_json(_through_json(state.to_json()))

    assert again == state and list(again.facts) == list(state.facts)


def test_previous_snapshots_given_version_3_snapshot_naming_version_2_rows_reads_both_alike(
    store: Store,
) -> None:
    kept, fresh = _explanation(), _explanation(ITEMS[1:], jql="project = SUP", reasons=())
    card = realistic_scorecard()
    before = PassSnapshot(card, {"KR1": kept, "KR2": fresh}).to_json()
    before |= {"version": 2, "explain": {o: _v2_entry(e) for o, e in
                                         (("KR1", kept), ("KR2", fresh))}}
    first = store.save_snapshot(cycle=card.cycle.name, as_of=card.cycle.as_of,
                                document=before, published=False)
    digest = store.snapshot_item_refs(first)["KR1"][0]
    after = PassSnapshot(card, {"KR2": fresh}).to_json()
    after["explain"] = {"KR1": {KEPT: digest, "reasons": ["+1 done"]}, **after["explain"]}
    store.save_snapshot(cycle=card.cycle.name, as_of=card.cycle.as_of, document=after)

    _, _, latest = previous_snapshots(store, card.cycle.name)

    assert latest is not None and after["version"] == 3
    assert dict(latest.explanations) == {"KR1": kept, "KR2": fresh}
    assert previous_states(latest)["KR1"] == {
        c.id: ItemState(c.key, c.project, c.done, c.points) for c in ITEMS}


def test_snapshot_head_given_version_3_snapshot_comes_without_its_items(store: Store) -> None:
    card = realistic_scorecard()
    document = PassSnapshot(card, {"KR1": _explanation()}).to_json()
    store.save_snapshot(cycle=card.cycle.name, as_of=card.cycle.as_of, document=document)

    head = store.snapshot_head(published_only=False)

    assert head is not None and head.document["version"] == 3
    assert "explain" not in head.document and store.kr_item_rows_read == 0


_FACT_ROW = ["10001", "ENT-7", "SSO login", "Done", "ENT", True, 3.0, None, "done",
             True, False, False]


@pytest.mark.parametrize("row", [
    _FACT_ROW[:-1],
    [*_FACT_ROW[:8], "finished", *_FACT_ROW[9:]],
    [10001, *_FACT_ROW[1:]],
    dict(enumerate(_FACT_ROW)),
    "not a row",
])
def test_measure_state_from_json_given_a_foreign_fact_row_refuses_the_state(row: Any) -> None:
    # A state stored with a row per fact (before columns; still read).
    good = {"key": "k", "members": None}

    with pytest.raises((KeyError, TypeError, ValueError)):
        MeasureState.from_json(good | {"facts": [_FACT_ROW, row]})
    assert MeasureState.from_json(good | {"facts": [_FACT_ROW]}).facts["10001"] == ItemFact(
        ITEMS[0], True, False, False)


def test_item_ids_given_version_3_rows_finds_the_ids_version_2_objects_gave() -> None:
    explanation = _explanation()

    assert item_ids(_through_json(explanation.to_json())) == {"10001", "10002", "10003"}
    assert item_ids(_through_json(_v2_entry(explanation))) == {"10001", "10002", "10003"}
