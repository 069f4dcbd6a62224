"""Store operations on what was pulled from Jira: issue mirror, key history,
raw-JQL memberships and per-source cursors."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, chunks, to_jsonable, upsert
from okr_sync.sync.store.records import (
    Cursor,
    InvalidRecordError,
    KeyChange,
    Membership,
    UpsertResult,
    jql_hash,
)
from okr_sync.sync.store.tables import cursors, issue_key_history, issues, memberships

_REQUIRED = ("id", "key", "project", "updated")


def _parse_updated(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidRecordError(f"'updated' is not an ISO-8601 timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        raise InvalidRecordError(f"'updated' must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecordError("'updated' must carry a UTC offset")
    return value


def _issue_row(source: str, record: Any, seen_at: datetime) -> dict[str, Any]:
    fields = to_jsonable(record)
    if not isinstance(fields, dict):
        raise InvalidRecordError(f"an issue record must be a mapping, got {type(record).__name__}")
    missing = [name for name in _REQUIRED if fields.get(name) in (None, "")]
    if missing:
        raise InvalidRecordError(f"issue record lacks {', '.join(missing)}")
    for name in ("id", "key", "project"):
        if not isinstance(fields[name], str | int) or isinstance(fields[name], bool):
            raise InvalidRecordError(f"issue record field {name!r} must be a string")
    return {
        "source": source,
        "issue_id": str(fields["id"]),
        "key": str(fields["key"]),
        "project": str(fields["project"]),
        "updated": _parse_updated(fields["updated"]),
        "fields": fields,
        "deleted": False,
        "deleted_at": None,
        "seen_at": seen_at,
    }


def _cursor(row: sa.Row[Any]) -> Cursor:
    return Cursor(row.source, row.high_water_mark, row.last_full_reconcile, row.updated_at)


#: Issue rows built and written at once by :meth:`IssueOps.upsert_issues`.
UPSERT_BATCH = 200


def _identity(record: Any) -> tuple[str, datetime]:
    """A record's id and ``updated``, read without encoding the record; what is not
    there is left for :func:`_issue_row` to reject."""
    if isinstance(record, Mapping):
        ident, updated = record.get("id"), record.get("updated")
    else:
        ident, updated = getattr(record, "id", None), getattr(record, "updated", None)
    if ident in (None, "") or updated in (None, ""):
        raise InvalidRecordError(_issue_row_problem(record))
    return str(ident), _parse_updated(updated)


def _issue_row_problem(record: Any) -> str:
    try:
        _issue_row("", record, datetime.now())
    except InvalidRecordError as error:
        return str(error)
    return "issue record lacks id or updated"


def _write_rows(conn: sa.Connection, source: str, rows: list[dict[str, Any]],
                seen: datetime) -> tuple[list[dict[str, Any]], list[KeyChange], int]:
    """Upsert ``rows`` (one per id) not older than the mirror's; (written, key changes,
    inserted)."""
    ids = [row["issue_id"] for row in rows]
    query = sa.select(issues.c.issue_id, issues.c.key, issues.c.updated).where(
        issues.c.source == source, issues.c.issue_id.in_(ids))
    existing = {r.issue_id: (r.key, r.updated) for r in conn.execute(query)}
    fresh = [row for row in rows
             if row["issue_id"] not in existing or row["updated"] >= existing[row["issue_id"]][1]]
    changes = [KeyChange(source, row["issue_id"], existing[row["issue_id"]][0], row["key"], seen)
               for row in fresh
               if row["issue_id"] in existing and existing[row["issue_id"]][0] != row["key"]]
    if fresh:
        stmt = upsert(
            conn,
            issues,
            ["source", "issue_id"],
            ["key", "project", "updated", "fields", "deleted", "deleted_at", "seen_at"],
            # Re-checked in SQL so a concurrent newer write is never overwritten.
            where=lambda table, excluded: excluded.updated >= table.updated,
        )
        conn.execute(stmt, fresh)
    if changes:
        conn.execute(sa.insert(issue_key_history), [
            {"source": c.source, "issue_id": c.issue_id, "old_key": c.old_key,
             "new_key": c.new_key, "changed_at": c.changed_at}
            for c in changes
        ])
    return fresh, changes, sum(1 for row in fresh if row["issue_id"] not in existing)


class IssueOps(StoreOps):
    # -- issue mirror ------------------------------------------------------------------

    def upsert_issues(
        self, source: str, records: Iterable[Any], seen_at: datetime | None = None
    ) -> UpsertResult:
        """Insert or refresh issue records (mappings or dataclasses) in statement batches.

        Each record needs ``id``, ``key``, ``project`` and ``updated`` (an aware datetime
        or ISO-8601 text); the whole record is kept as JSON and returned by
        :meth:`get_issues`. Rows are keyed by the immutable issue id; a record older than
        the mirrored one (``updated`` earlier) is skipped as stale; a refreshed row is no
        longer deleted. Key changes (moves between projects) are detected and recorded in
        the key history, and returned.

        A cold pass writes every issue of the mirror: the rows (each record as JSON) are
        built and written :data:`UPSERT_BATCH` at a time, in one transaction, so memory
        holds one batch of documents rather than the whole mirror's.
        """
        seen = self._now(seen_at)
        records = records if isinstance(records, list) else list(records)
        # Which record of each id is written: the last one with the latest ``updated``.
        # A record that loses is checked in full here, before anything is written, so an
        # invalid one refuses the call as it would have as a winner (winners are checked
        # as their rows are built, in the transaction). Duplicates are few: only their
        # ``updated`` is read again, not kept for every record of a cold pass's mirror.
        winners: dict[str, int] = {}
        for index, record in enumerate(records):
            ident, updated = _identity(record)
            previous = winners.get(ident)
            if previous is None:
                winners[ident] = index
                continue
            if updated >= _identity(records[previous])[1]:
                winners[ident] = index
                _issue_row(source, records[previous], seen)
            else:
                _issue_row(source, record, seen)
        if not winners:
            return UpsertResult(0, 0, 0, ())
        inserted = written = 0
        changes: list[KeyChange] = []
        order = list(winners.values())
        del winners  # a dict of every id: not held while the rows are written
        with self._connection() as conn:
            for batch in chunks(order, UPSERT_BATCH):
                rows = [_issue_row(source, records[index], seen) for index in batch]
                fresh, moved, new = _write_rows(conn, source, rows, seen)
                inserted, written = inserted + new, written + len(fresh)
                changes += moved
        return UpsertResult(inserted, written - inserted, len(order) - written,
                            tuple(changes))

    def mark_deleted(
        self, source: str, issue_ids: Collection[str], at: datetime | None = None
    ) -> int:
        """Flag mirrored issues as deleted (gone from Jira or moved out of scope).

        Returns how many rows changed (already-deleted rows keep their first deletion time).
        """
        when = self._now(at)
        changed = 0
        with self._connection() as conn:
            for ids in chunks(sorted(set(issue_ids))):
                result = conn.execute(
                    sa.update(issues)
                    .where(
                        issues.c.source == source,
                        issues.c.issue_id.in_(ids),
                        issues.c.deleted.is_(False),
                    )
                    .values(deleted=True, deleted_at=when)
                )
                changed += result.rowcount
        return changed

    def get_issues(
        self,
        source: str,
        *,
        ids: Collection[str] | None = None,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """The mirrored records of a source (as stored JSON: datetimes are ISO text),
        ordered by issue id; optionally only ``ids``."""
        base = sa.select(issues.c.fields).where(issues.c.source == source)
        if not include_deleted:
            base = base.where(issues.c.deleted.is_(False))
        with self._connection() as conn:
            if ids is None:
                rows = list(conn.execute(base.order_by(issues.c.issue_id)).scalars())
            else:
                rows = []
                for chunk in chunks(sorted(set(ids))):
                    query = base.where(issues.c.issue_id.in_(chunk)).order_by(issues.c.issue_id)
                    rows.extend(conn.execute(query).scalars())
        return [dict(row) for row in rows]

    def mirror_with_deletions(self, source: str) -> list[tuple[dict[str, Any], datetime | None]]:
        """Every mirrored record of a source, deleted ones included, each with the time
        a pass saw it gone (None while it is live): what ``backfill`` rewinds."""
        query = (sa.select(issues.c.fields, issues.c.deleted_at)
                 .where(issues.c.source == source).order_by(issues.c.issue_id))
        with self._connection() as conn:
            return [(dict(row.fields), row.deleted_at) for row in conn.execute(query)]

    def issue_ids(self, source: str, *, include_deleted: bool = False) -> set[str]:
        """Ids of the mirrored issues of a source (for reconcile diffs)."""
        query = sa.select(issues.c.issue_id).where(issues.c.source == source)
        if not include_deleted:
            query = query.where(issues.c.deleted.is_(False))
        with self._connection() as conn:
            return set(conn.execute(query).scalars())

    # -- key history -------------------------------------------------------------------

    def record_key_change(
        self,
        source: str,
        issue_id: str,
        old_key: str,
        new_key: str,
        at: datetime | None = None,
    ) -> KeyChange:
        """Append a key change seen outside :meth:`upsert_issues` (e.g. a webhook changelog).

        :meth:`upsert_issues` already records the changes it sees; do not repeat them here.
        """
        change = KeyChange(source, issue_id, old_key, new_key, self._now(at))
        with self._connection() as conn:
            conn.execute(
                sa.insert(issue_key_history).values(
                    source=source,
                    issue_id=issue_id,
                    old_key=old_key,
                    new_key=new_key,
                    changed_at=change.changed_at,
                )
            )
        return change

    def key_history(self, source: str, issue_id: str | None = None) -> list[KeyChange]:
        """Key changes of a source (or one issue), oldest first."""
        query = sa.select(issue_key_history).where(issue_key_history.c.source == source)
        if issue_id is not None:
            query = query.where(issue_key_history.c.issue_id == issue_id)
        query = query.order_by(issue_key_history.c.changed_at, issue_key_history.c.id)
        with self._connection() as conn:
            return [
                KeyChange(r.source, r.issue_id, r.old_key, r.new_key, r.changed_at)
                for r in conn.execute(query)
            ]

    def resolve_key(self, source: str, key: str) -> str | None:
        """The id of the issue a key names now, or named before it moved; None if unknown."""
        with self._connection() as conn:
            current = conn.execute(
                sa.select(issues.c.issue_id)
                .where(issues.c.source == source, issues.c.key == key)
                .order_by(issues.c.deleted, issues.c.updated.desc())
                .limit(1)
            ).scalar_one_or_none()
            if current is not None:
                return str(current)
            former = conn.execute(
                sa.select(issue_key_history.c.issue_id)
                .where(issue_key_history.c.source == source, issue_key_history.c.old_key == key)
                .order_by(issue_key_history.c.changed_at.desc(), issue_key_history.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return None if former is None else str(former)

    def resolve_keys(self, source: str, keys: Collection[str]) -> dict[str, str | None]:
        """:meth:`resolve_key` of every key in ``keys`` at once (every key is in the
        result, None when unknown): a plan names a hundred epics, each pass."""
        wanted = sorted(set(keys))
        found: dict[str, str | None] = {}
        with self._connection() as conn:
            for chunk in chunks(wanted):
                rows = conn.execute(
                    sa.select(issues.c.key, issues.c.issue_id)
                    .where(issues.c.source == source, issues.c.key.in_(chunk))
                    .order_by(issues.c.key, issues.c.deleted, issues.c.updated.desc())
                )
                for row in rows:
                    found.setdefault(row.key, str(row.issue_id))
            former = [k for k in wanted if k not in found]
            for chunk in chunks(former):
                rows = conn.execute(
                    sa.select(issue_key_history.c.old_key, issue_key_history.c.issue_id)
                    .where(issue_key_history.c.source == source,
                           issue_key_history.c.old_key.in_(chunk))
                    .order_by(issue_key_history.c.old_key, issue_key_history.c.changed_at.desc(),
                              issue_key_history.c.id.desc())
                )
                for row in rows:
                    found.setdefault(row.old_key, str(row.issue_id))
        return {key: found.get(key) for key in wanted}

    # -- raw-JQL memberships -----------------------------------------------------------

    def set_membership(
        self,
        source: str,
        kr_id: str,
        *,
        jql: str,
        issue_ids: Iterable[str],
        refreshed_at: datetime | None = None,
        checked_through: datetime | None = None,
    ) -> Membership:
        """Replace the issue ids a raw-JQL KR selects (stored with the JQL's hash);
        ``checked_through``: the source's cursor the answer holds through."""
        ids = tuple(sorted({str(i) for i in issue_ids}))
        through = None if checked_through is None else self._now(checked_through)
        membership = Membership(source, kr_id, jql_hash(jql), ids, self._now(refreshed_at),
                                through)
        with self._connection() as conn:
            conn.execute(
                upsert(
                    conn,
                    memberships,
                    ["source", "kr_id"],
                    ["jql_hash", "issue_ids", "refreshed_at", "checked_through"],
                ),
                {
                    "source": source,
                    "kr_id": kr_id,
                    "jql_hash": membership.jql_hash,
                    "issue_ids": list(ids),
                    "refreshed_at": membership.refreshed_at,
                    "checked_through": through,
                },
            )
        return membership

    def mark_memberships_checked(self, source: str, kr_ids: Collection[str], *,
                                 through: datetime) -> int:
        """Record that the stored answers of ``kr_ids`` hold through the cursor ``through``
        (a pass kept them: nothing it read could move them); returns how many."""
        marked = 0
        with self._connection() as conn:
            for chunk in chunks(sorted(set(kr_ids))):
                marked += conn.execute(
                    sa.update(memberships)
                    .where(memberships.c.source == source, memberships.c.kr_id.in_(chunk))
                    .values(checked_through=self._now(through))
                ).rowcount
        return marked

    def get_membership(self, source: str, kr_id: str) -> Membership | None:
        with self._connection() as conn:
            row = conn.execute(
                sa.select(memberships).where(
                    memberships.c.source == source, memberships.c.kr_id == kr_id
                )
            ).first()
        if row is None:
            return None
        return Membership(
            row.source, row.kr_id, row.jql_hash, tuple(row.issue_ids), row.refreshed_at,
            row.checked_through,
        )

    def get_memberships(self, source: str) -> dict[str, Membership]:
        """Every stored membership of a source by owner, in one read."""
        with self._connection() as conn:
            rows = conn.execute(sa.select(memberships).where(memberships.c.source == source))
            return {
                row.kr_id: Membership(row.source, row.kr_id, row.jql_hash,
                                      tuple(row.issue_ids), row.refreshed_at,
                                      row.checked_through)
                for row in rows
            }

    def forget_membership(self, source: str, kr_id: str) -> bool:
        """Drop one stored membership (the next pass computes it afresh); True if one was."""
        query = sa.delete(memberships).where(
            memberships.c.source == source, memberships.c.kr_id == kr_id)
        with self._connection() as conn:
            return bool(conn.execute(query).rowcount)

    def delete_memberships(self, source: str, *, keep: Collection[str]) -> int:
        """Drop memberships of KRs no longer in the plan (all but ``keep``)."""
        query = sa.delete(memberships).where(memberships.c.source == source)
        if keep:
            query = query.where(memberships.c.kr_id.not_in(sorted(keep)))
        with self._connection() as conn:
            return conn.execute(query).rowcount

    # -- cursors -----------------------------------------------------------------------

    def get_cursor(self, source: str) -> Cursor | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(cursors).where(cursors.c.source == source)).first()
        return None if row is None else _cursor(row)

    def list_cursors(self) -> list[Cursor]:
        """Every source's cursor (freshness per source, for ``status``)."""
        with self._connection() as conn:
            return [_cursor(r) for r in conn.execute(sa.select(cursors).order_by(cursors.c.source))]

    def set_cursor(
        self,
        source: str,
        *,
        high_water_mark: datetime | None = None,
        last_full_reconcile: datetime | None = None,
        at: datetime | None = None,
    ) -> Cursor:
        """Set a source's high-water mark and/or last full reconcile; None leaves a field as is.

        Call it in the same transaction as the snapshot it belongs to, so the cursor only
        advances when the pass's results are committed.
        """
        if high_water_mark is None and last_full_reconcile is None:
            raise InvalidRecordError("set_cursor needs high_water_mark or last_full_reconcile")
        values: dict[str, Any] = {"source": source, "updated_at": self._now(at)}
        if high_water_mark is not None:
            values["high_water_mark"] = self._now(high_water_mark)
        if last_full_reconcile is not None:
            values["last_full_reconcile"] = self._now(last_full_reconcile)
        update_columns = [name for name in values if name != "source"]
        with self._connection() as conn:
            conn.execute(upsert(conn, cursors, ["source"], update_columns), values)
            row = conn.execute(sa.select(cursors).where(cursors.c.source == source)).one()
        return _cursor(row)

    def reset_cursor(self, source: str) -> bool:
        """Forget a source's cursor (the next pull is a full one)."""
        with self._connection() as conn:
            return bool(conn.execute(sa.delete(cursors).where(cursors.c.source == source)).rowcount)
