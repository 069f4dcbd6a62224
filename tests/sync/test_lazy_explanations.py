"""Stored explanations read only as far as a pass needs: comparing a new snapshot with
the one its kept owners name, and the published items change reasons are told against."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

import pytest

from okr_sync.scoring.evaluate import Evaluation
from okr_sync.scoring.measures import Contribution
from okr_sync.sync import lazy_explanations
from okr_sync.sync.lazy_explanations import (
    ExplanationsJson,
    KeptExplanations,
    LazyExplanations,
    PreviousStates,
    explanations_equal,
)
from okr_sync.sync.state import Explanation, unchanged_explanations
from okr_sync.sync.store.snapshot_items import KEPT


def _explanation(owner: str, *ids: str, error: str | None = None) -> Explanation:
    items = tuple(Contribution(id=i, key=f"K-{i}", summary="s", status="Open", project="K",
                               done=False, points=None, amount=None, counted="open")
                  for i in ids)
    return Explanation(jql=f"jql {owner}", error=error, items=items)


STORED = {f"KR{n}": _explanation(f"KR{n}", str(n), str(n + 100)) for n in range(10)}


class _Reads:
    """A stored snapshot's explanations behind a counter of reads and owners decoded."""

    def __init__(self) -> None:
        self.reads: list[list[str]] = []
        self.holder_queries = 0

    def lazy(self, *, holders: bool = True) -> LazyExplanations:
        def load_some(owners: Collection[str]) -> dict[str, Explanation]:
            self.reads.append(sorted(owners))
            return {owner: STORED[owner] for owner in owners}

        def owners_holding(ids: Collection[str], owners: Collection[str] | None
                           ) -> set[str]:
            self.holder_queries += 1
            return {owner for owner, e in STORED.items() if {c.id for c in e.items} & set(ids)
                    and (owners is None or owner in owners)}

        def load() -> dict[str, Explanation]:
            self.reads.append(list(STORED))
            return dict(STORED)

        return LazyExplanations(
            load, owners=lambda: list(STORED), load_some=load_some,
            stored=lambda: {owner: (f"h{owner}", ()) for owner in STORED},
            holders=owners_holding if holders else None)

    @property
    def decoded(self) -> int:
        return sum(len(owners) for owners in self.reads)


def _kept(source: LazyExplanations, fresh: dict[str, Explanation]) -> KeptExplanations:
    kept = {owner: (f"h{owner}", ()) for owner in STORED if owner not in fresh}
    return KeptExplanations(list(STORED), fresh, kept, source)


def test_explanations_equal_given_kept_rows_of_the_other_reads_only_fresh_owners() -> None:
    reads = _Reads()
    source = reads.lazy()

    assert explanations_equal(_kept(source, {"KR3": STORED["KR3"]}), source)
    assert not explanations_equal(_kept(source, {"KR3": _explanation("KR3", "7")}), source)
    # One read of the one fresh owner per comparison (not kept: a pass compares once).
    assert reads.reads == [["KR3"], ["KR3"]]


def test_explanations_equal_given_another_snapshot_reads_each_side_in_one_go() -> None:
    reads = _Reads()
    first, second = reads.lazy(), reads.lazy()

    assert explanations_equal(_kept(first, {"KR3": STORED["KR3"]}), second)
    # Not one read per owner: the kept owners of one side, every owner of the other.
    assert len(reads.reads) == 2


def test_previous_states_given_owners_asked_decodes_only_them_in_one_read() -> None:
    reads = _Reads()
    states = PreviousStates(reads.lazy())

    states.preload(["KR1", "KR2"])
    assert set(states["KR1"]) == {"1", "101"}
    assert states.get("KR2") is not None
    assert states.get("nobody") is None

    assert reads.reads == [["KR1", "KR2"]]


def test_previous_states_given_holders_index_tells_them_without_decoding() -> None:
    reads = _Reads()
    states = PreviousStates(reads.lazy())

    assert states.holding({"3", "105", "999"}) == {"KR3", "KR5"}
    assert states.holding(set()) == set()
    assert reads.decoded == 0 and reads.holder_queries == 1


def test_previous_states_given_no_index_decodes_every_owner_once() -> None:
    reads = _Reads()
    states = PreviousStates(reads.lazy(holders=False))

    assert states.holding({"3", "105"}) == {"KR3", "KR5"}
    assert len(reads.reads) == 1 and reads.decoded == len(STORED)


def test_previous_states_given_an_owner_measured_with_error_leaves_it_out() -> None:
    states = PreviousStates({"A": _explanation("A", "1"), "B": _explanation("B", error="x")})

    assert list(states) == ["A"] and states.get("B") is None and len(states) == 1


def test_previous_states_given_owners_counted_decodes_no_items(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from okr_sync.scoring import explain

    decoded: list[int] = []
    original = explain.item_states

    def counting(items: Any) -> Any:
        decoded.append(1)
        return original(items)

    monkeypatch.setattr(explain, "item_states", counting)
    states = PreviousStates(_Reads().lazy())

    # Which owners hold states is told by their errors: no owner's items are decoded.
    assert len(states) == len(list(states)) == len(STORED)
    assert decoded == []


def test_previous_states_given_owners_announced_reads_a_batch_at_a_time_and_keeps_none(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lazy_explanations, "READ_BATCH", 4)
    reads = _Reads()
    states = PreviousStates(reads.lazy())
    owners = list(STORED)

    states.preload(owners)
    for owner in owners:
        assert set(states[owner]) == {c.id for c in STORED[owner].items}

    # In the order asked for, a batch per read: never every owner's items at once.
    assert reads.reads == [owners[:4], owners[4:8], owners[8:]]
    # Each owner is dropped once asked for: asking again reads it again.
    assert states.get("KR1") is not None and reads.reads[-1] == ["KR1"]


def test_explanations_equal_given_all_fresh_reads_the_stored_a_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lazy_explanations, "READ_BATCH", 4)
    reads = _Reads()
    source = reads.lazy()
    owners = list(STORED)

    assert explanations_equal(dict(STORED), source)
    assert reads.reads == [owners[:4], owners[4:8], owners[8:]]
    # Not kept by the stored side: a second comparison reads again, and stops at the
    # batch holding the first difference.
    reads.reads.clear()
    assert not explanations_equal({**STORED, "KR5": _explanation("KR5", "7")}, source)
    assert reads.reads == [owners[:4], owners[4:8]]


def _evaluation(owner: str, *reasons: str) -> Evaluation:
    return Evaluation(owner, f"jql {owner}", None, reasons=reasons)


def test_unchanged_explanations_given_stored_rows_decodes_only_owners_whose_reasons_moved(
) -> None:
    reads = _Reads()
    evaluations = {owner: _evaluation(owner) for owner in STORED}
    evaluations["KR3"] = _evaluation("KR3", "+1 done")

    explanations = unchanged_explanations(reads.lazy(), evaluations)
    entries = ExplanationsJson(explanations)

    # Saved as the stored rows they are, by name: only KR3's reasons moved.
    assert entries["KR1"] == {KEPT: "hKR1", "reasons": []}
    assert entries["KR3"] == {**STORED["KR3"].to_json(), "reasons": ["+1 done"]}
    assert list(explanations) == list(STORED)
    assert reads.reads == [["KR3"]]


def test_unchanged_explanations_given_inline_explanations_gives_them_this_passs_reasons(
) -> None:
    evaluations = {owner: _evaluation(owner) for owner in STORED}
    evaluations["KR3"] = _evaluation("KR3", "+1 done")

    explanations = unchanged_explanations(dict(STORED), evaluations)

    assert dict(explanations.items()) == {**STORED, "KR3": replace(STORED["KR3"],
                                                                   reasons=("+1 done",))}


def test_previous_states_given_owners_asked_out_of_announced_order_reads_each_once(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lazy_explanations, "READ_BATCH", 4)
    reads = _Reads()
    states = PreviousStates(reads.lazy())
    announced = list(STORED)
    # Two sources' owners announced source by source, asked in a plan's interleaved order.
    asked = [announced[i // 2 + (5 if i % 2 else 0)] for i in range(len(announced))]

    states.preload(announced)
    for owner in asked:
        assert set(states[owner]) == {c.id for c in STORED[owner].items}

    assert reads.decoded == len(STORED)


def test_previous_states_given_owners_and_no_index_reads_each_asked_owner_once() -> None:
    reads = _Reads()
    states = PreviousStates(reads.lazy(holders=False))

    assert states.holding({"3", "105"}, ["KR3", "KR4", "KR5"]) == {"KR3", "KR5"}
    assert reads.reads == [["KR3", "KR4", "KR5"]]
