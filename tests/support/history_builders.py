"""Score-history builders: passes that store a row per KR, and the final scores a full
read of every row gives (the reference ``final_scores_by_cycle`` must agree with)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_history

#: A backfilled row replaces a live one only when later than it by more than this.
SLACK = timedelta(seconds=1)


def store_passes(store: Store, cycle: str, kr_ids: Sequence[str], start: datetime,
                 count: int, score: float = 0.5) -> None:
    """``count`` live passes an hour apart, each storing one row per KR."""
    for n in range(count):
        store.add_history(None, cycle=cycle, as_of=start + timedelta(hours=n),
                          entries=[HistoryEntry(k, n, score, "b", "on_track") for k in kr_ids])


def finals_of_every_row(store: Store) -> dict[str, dict[str, float]]:
    """Each KR's final score per cycle from all of its rows, by the documented rule."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(kr_history)).all()
    chosen: dict[tuple[str, str], tuple[datetime, int, float]] = {}
    for r in rows:
        key = (r.kr_id, r.cycle)
        live = [x for x in rows if (x.kr_id, x.cycle) == key and not x.backfilled]
        last = max(live, key=lambda x: x.id) if live else None
        later = [x for x in rows if (x.kr_id, x.cycle) == key and x.backfilled
                 and (last is None or _aware(x.as_of) > _aware(last.as_of) + SLACK)]
        pick = max(later, key=lambda x: (_aware(x.as_of), x.id)) if later else last
        assert pick is not None
        chosen[key] = (_aware(pick.as_of), pick.id, pick.score)
    result: dict[str, dict[str, float]] = {}
    for (kr_id, cycle), (_, _, score) in sorted(chosen.items(), key=lambda i: i[1][:2]):
        result.setdefault(kr_id, {})[cycle] = score
    return result


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@contextmanager
def sqlite_steps(store: Store) -> Iterator[list[int]]:
    """Count the SQLite virtual-machine steps of the statements run inside (a count of
    the work a query does, e.g. rows it scans, independent of the machine's speed)."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    def on_checkout(dbapi_connection: object, record: object, proxy: object) -> None:
        dbapi_connection.set_progress_handler(tick, 1)  # type: ignore[attr-defined]

    sa.event.listen(store.engine, "checkout", on_checkout)
    try:
        yield steps
    finally:
        sa.event.remove(store.engine, "checkout", on_checkout)
