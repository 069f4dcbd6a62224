"""Store operations for incremental measuring: per-measure states and the streamed mirror.

The states are only trusted on the mirror they were computed on: the pass that
writes them marks the source with its time (``measure_marks``), in the same
transaction as the mirror's rows, and :meth:`MeasureOps.get_measure_states`
returns nothing when any row of the mirror was written after that mark.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, chunks, upsert
from okr_sync.sync.store.tables import issues, measure_marks, measure_states

#: Rows read at a time while streaming the mirror.
STREAM_BATCH = 1000
#: Measure states encoded and written at once.
STATE_BATCH = 10

#: Built once: the ids are bound as one expanding parameter, not coerced one by one.
_MIRRORED_AMONG = sa.select(issues.c.issue_id).where(
    issues.c.source == sa.bindparam("source"), issues.c.deleted.is_(False),
    issues.c.issue_id.in_(sa.bindparam("ids", expanding=True)))


class MeasureOps(StoreOps):
    #: Mirror rows and measure-state rows this object has read (tests and benchmarks
    #: check that a pass with nothing new reads none).
    issue_rows_read: int = 0
    measure_state_rows_read: int = 0
    #: Ids read by :meth:`mirrored_ids` and :meth:`mirrored_among`.
    mirrored_id_rows_read: int = 0

    def iter_issues(self, source: str) -> Iterator[dict[str, Any]]:
        """The mirrored (not deleted) records of a source, streamed a page at a time.

        Each page is its own short read (keyset paging by issue id): no connection is
        held while the caller works on the rows, so it may use the store meanwhile (on
        SQLite every connection of the store takes the write lock).
        """
        after = ""
        while True:
            query = (
                sa.select(issues.c.issue_id, issues.c.fields)
                .where(issues.c.source == source, issues.c.deleted.is_(False),
                       issues.c.issue_id > after)
                .order_by(issues.c.issue_id)
                .limit(STREAM_BATCH)
            )
            with self._connection() as conn:
                page = [(row.issue_id, dict(row.fields)) for row in conn.execute(query)]
            self.issue_rows_read += len(page)
            for _, record in page:
                yield record
            if len(page) < STREAM_BATCH:
                return
            after = page[-1][0]

    def mirrored_ids(self, source: str) -> set[str]:
        """Ids of the mirrored (not deleted) issues of a source."""
        query = sa.select(issues.c.issue_id).where(
            issues.c.source == source, issues.c.deleted.is_(False))
        with self._connection() as conn:
            found = set(conn.execute(query).scalars())
        self.mirrored_id_rows_read += len(found)
        return found

    def mirrored_among(self, source: str, ids: Collection[str]) -> set[str]:
        """Those of ``ids`` that are mirrored (not deleted) issues of a source."""
        found: set[str] = set()
        with self._connection() as conn:
            for chunk in chunks(sorted(set(ids))):
                found.update(conn.execute(_MIRRORED_AMONG,
                                          {"source": source, "ids": list(chunk)}).scalars())
        self.mirrored_id_rows_read += len(found)
        return found

    def mirror_written_since(
        self, source: str, since: tuple[datetime | None, datetime | None], limit: int,
    ) -> tuple[tuple[datetime | None, datetime | None], dict[str, bool] | None]:
        """The mirror's marks now, the newest ``seen_at`` and ``deleted_at`` of its rows
        (every write that mirrors an id sets the first, every deletion the second, and
        no row is ever removed), and, against the marks of an earlier look (``since``),
        whether each row written or deleted after them is mirrored now: None for a
        mirror that was empty then, or when more than ``limit`` rows were. One
        transaction; each part is one seek or one range of its index."""
        with self._connection() as conn:
            marks = tuple(
                None if value is None else _aware(value)
                for column in (issues.c.seen_at, issues.c.deleted_at)
                for value in [conn.execute(sa.select(sa.func.max(column))
                                           .where(issues.c.source == source)).scalar()])
            if since == (None, None):
                return (marks[0], marks[1]), None
            written: dict[str, bool] = {}
            # A mirror without a deletion then: every deleted row is one since.
            after = (since[0], since[1] or datetime(1970, 1, 1, tzinfo=UTC))
            for column, mark, then in zip((issues.c.seen_at, issues.c.deleted_at), marks,
                                          after, strict=True):
                if mark is None or mark == then:
                    continue
                query = (sa.select(issues.c.issue_id, issues.c.deleted)
                         .where(issues.c.source == source, column > then).limit(limit + 1))
                written.update((r.issue_id, not r.deleted) for r in conn.execute(query))
        self.mirrored_id_rows_read += len(written)
        return (marks[0], marks[1]), None if len(written) > limit else written

    def _mirror_mark(self, conn: sa.Connection, source: str) -> sa.Row[Any] | None:
        """The source's mark, when no mirror row was written after it."""
        mark = conn.execute(
            sa.select(measure_marks).where(measure_marks.c.source == source)
        ).first()
        if mark is None:
            return None
        newest = conn.execute(
            sa.select(sa.func.max(issues.c.seen_at)).where(issues.c.source == source)
        ).scalar_one_or_none()
        deleted = conn.execute(
            sa.select(sa.func.max(issues.c.deleted_at)).where(issues.c.source == source)
        ).scalar_one_or_none()
        written = [w for w in (newest, deleted) if w is not None]
        if written and max(_aware(w) for w in written) > _aware(mark.mirror_at):
            return None
        return mark

    def get_measure_states(
        self, source: str, owners: Collection[str] | None = None, *,
        decode: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> dict[str, tuple[str, Any]] | None:
        """Owner -> (measure key, state document), or ``None`` when there are none that
        were computed on the mirror as it is (never stored, or the mirror written since).
        ``owners``: only theirs (a pass reads only the states its changes touch).

        ``decode``: each document is replaced by ``decode(document)`` as its row is read
        (an owner whose ``decode`` gives None is left out). After a change every state
        may be read: this way one row's JSON at a time is held beside the decoded states,
        not all of them, and PostgreSQL streams the rows (a server-side cursor) rather
        than buffering the whole result."""
        with self._connection() as conn:
            if self._mirror_mark(conn, source) is None:
                return None
            states: dict[str, tuple[str, Any]] = {}
            query = sa.select(measure_states.c.owner, measure_states.c.measure_key,
                              measure_states.c.state).where(measure_states.c.source == source)
            selections = [query] if owners is None else [
                query.where(measure_states.c.owner.in_(chunk))
                for chunk in chunks(sorted(set(owners)))]
            read = 0
            for selected in selections:
                for row in conn.execute(selected.execution_options(yield_per=STATE_BATCH)):
                    read += 1
                    value = row.state if decode is None else decode(row.state)
                    if value is not None:
                        states[row.owner] = (row.measure_key, value)
        self.measure_state_rows_read += read
        return states

    def get_measure_summary(self, source: str) -> dict[str, Any] | None:
        """What the pass that stored the measure states measured (no items), when they
        still match the mirror; else ``None``."""
        with self._connection() as conn:
            mark = self._mirror_mark(conn, source)
        if mark is None or not isinstance(mark.summary, dict):
            return None
        return dict(mark.summary)

    def update_measure_summary(self, source: str, summary: Mapping[str, Any]) -> None:
        """Replace the stored summary of ``source`` (its states and mark stay as they are)."""
        with self._connection() as conn:
            conn.execute(sa.update(measure_marks).where(measure_marks.c.source == source)
                         .values(summary=dict(summary)))

    def save_measure_states(
        self,
        source: str,
        states: Mapping[str, tuple[str, Mapping[str, Any]]],
        *,
        keep: Collection[str],
        at: datetime,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        """Write ``states`` (owner -> (key, document)), drop owners not in ``keep``, and
        mark the source's mirror as the one they were computed on (at ``at``)."""
        when = self._now(at)
        with self._connection() as conn:
            stale = sa.delete(measure_states).where(measure_states.c.source == source)
            if keep:
                stale = stale.where(measure_states.c.owner.not_in(sorted(keep)))
            conn.execute(stale)
            if states:
                # A batch at a time: after a full pass every measure's state is new, and
                # ``states`` may encode each document only as it is read.
                statement = upsert(conn, measure_states, ["source", "owner"],
                                   ["measure_key", "state", "updated_at"])
                batch: list[dict[str, Any]] = []
                for owner, (key, document) in states.items():
                    batch.append({"source": source, "owner": owner, "measure_key": key,
                                  "state": dict(document), "updated_at": when})
                    if len(batch) >= STATE_BATCH:
                        conn.execute(statement, batch)
                        batch = []
                if batch:
                    conn.execute(statement, batch)
            conn.execute(upsert(conn, measure_marks, ["source"], ["mirror_at", "summary"]),
                         {"source": source, "mirror_at": when,
                          "summary": None if summary is None else dict(summary)})

    def issue_records(self, source: str, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The mirrored (not deleted) records of ``ids`` by id (absent ids are not mirrored)."""
        found: dict[str, dict[str, Any]] = {}
        with self._connection() as conn:
            for chunk in chunks(sorted(set(ids))):
                query = sa.select(issues.c.issue_id, issues.c.fields).where(
                    issues.c.source == source, issues.c.deleted.is_(False),
                    issues.c.issue_id.in_(chunk))
                found.update({row.issue_id: dict(row.fields) for row in conn.execute(query)})
        self.issue_rows_read += len(found)
        return found


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
