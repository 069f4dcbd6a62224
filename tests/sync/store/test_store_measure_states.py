"""Store: measure states written a batch at a time, read back as written."""

from __future__ import annotations

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
