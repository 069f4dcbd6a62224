"""Store: measure states written a batch at a time, read back as written."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.encoded import EncodedOnRead
from okr_sync.sync.store.measures import STATE_BATCH
from okr_sync.sync.store.store import Store

AT = datetime(2026, 11, 2, tzinfo=UTC)


def _state(owner: str) -> tuple[str, dict[str, Any]]:
    return f"key-{owner}", {"key": f"key-{owner}", "facts": [owner, 1, 2.5]}


def test_save_measure_states_given_more_than_a_batch_binds_at_most_a_batch_at_once(
    store: Store,
) -> None:
    # After a full pass every measure's state is new: the documents (each encoded only
    # as the store reads it) must not all be bound in one statement.
    owners = [f"KR{n}" for n in range(3 * STATE_BATCH + 2)]
    encoded: list[str] = []

    def encode(owner: str) -> tuple[str, dict[str, Any]]:
        encoded.append(owner)
        return _state(owner)

    bound: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MEASURE_STATES"):
            bound.append(len(parameters) if executemany else 1)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.save_measure_states("main", EncodedOnRead({o: o for o in owners}, encode),
                                  keep=set(owners), at=AT)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)

    assert sorted(encoded) == sorted(owners)  # each encoded once
    assert sum(bound) == len(owners)
    assert max(bound) <= STATE_BATCH
    assert store.get_measure_states("main") == {owner: _state(owner) for owner in owners}


def _read_peak(store: Store, source: str) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        decoded = store.get_measure_states(source, decode=len)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert decoded is not None
    assert all(isinstance(length, int) for _, length in decoded.values())
    return peak


def test_get_measure_states_given_decode_holds_one_document_at_a_time_not_all(
    store: Store,
) -> None:
    # A changed pass may read every state: decoded as each row is read, the JSON of all
    # of them never sits in memory at once, so the peak does not grow with their number.
    def big(owner: str) -> tuple[str, dict[str, Any]]:
        return f"key-{owner}", {"key": owner, "facts": [f"{owner}-{n:06d}" for n in range(400)]}

    for source, count in (("small", 50), ("large", 400)):
        store.save_measure_states(source, {f"KR{n}": big(f"KR{n}") for n in range(count)},
                                  keep={f"KR{n}" for n in range(count)}, at=AT)

    small, large = _read_peak(store, "small"), _read_peak(store, "large")

    assert large < 2 * small  # 8 times the states


def test_get_measure_states_given_decode_gives_none_leaves_that_owner_out(store: Store) -> None:
    store.save_measure_states("main", {"KR1": _state("KR1"), "KR2": _state("KR2")},
                              keep={"KR1", "KR2"}, at=AT)

    read = store.get_measure_states(
        "main", decode=lambda doc: None if doc["facts"][0] == "KR2" else doc["key"])

    assert read == {"KR1": ("key-KR1", "key-KR1")}
