"""Store operations on what a pass produced: runs, scorecard snapshots, per-KR score
history and check-ins."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from okr_sync.scoring.scorecard import Confidence
from okr_sync.sync.store.base import StoreOps, chunks, to_jsonable, truncate
from okr_sync.sync.store.records import (
    Checkin,
    InvalidRecordError,
    InvalidStateError,
    LatestCheckin,
    NotFoundError,
    Outcome,
    RunCounts,
    RunKind,
    RunRecord,
    Snapshot,
)
from okr_sync.sync.store.tables import (
    CONFIDENCES,
    RUN_KINDS,
    RUN_OUTCOMES,
    checkins,
    kr_items,
    runs,
    snapshots,
)

ABANDONED = "abandoned: its process ended, or lost the run lock, before finishing the pass"


def _check_confidence(value: str) -> None:
    if value not in CONFIDENCES:
        raise InvalidRecordError(f"unknown confidence {value!r}")


def _run(row: sa.Row[Any]) -> RunRecord:
    counts = RunCounts(
        row.jira_requests,
        row.issues_fetched,
        row.changes,
        row.deliveries_sent,
        row.deliveries_failed,
    )
    return RunRecord(
        row.id,
        row.kind,
        row.holder,
        row.started_at,
        row.ended_at,
        row.outcome,
        counts,
        row.error_summary,
    )


def _snapshot(row: sa.Row[Any]) -> Snapshot:
    return Snapshot(
        row.id, row.run_id, row.created_at, row.cycle, row.as_of, dict(row.document), row.published
    )


#: The document key naming each owner's ``kr_items`` row in place of inline ``explain``.
EXPLAIN_REFS = "explain_refs"


def _split_explain(document: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """``document`` with its explanations replaced by per-owner content hashes, and the
    rows those hashes name. Documents of another layout keep theirs inline."""
    plain = to_jsonable(document)
    explain = plain.get("explain")
    if plain.get("version") != 2 or not isinstance(explain, dict):
        return plain, {}
    refs: dict[str, str] = {}
    rows: dict[tuple[str, str], Any] = {}
    for owner, entry in explain.items():
        text = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).hexdigest()
        refs[owner] = digest
        rows[(owner, digest)] = entry
    stored = {key: value for key, value in plain.items() if key != "explain"}
    stored[EXPLAIN_REFS] = refs
    return stored, rows


def referenced_item_keys(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The ``kr_items`` rows a stored document names (none for an inline one)."""
    refs = document.get(EXPLAIN_REFS)
    return set(refs.items()) if isinstance(refs, dict) else set()


def _checkin(row: sa.Row[Any]) -> Checkin:
    return Checkin(row.id, row.kr_id, row.at, row.value, row.confidence, row.note, row.author)


class RunOps(StoreOps):
    #: ``kr_items`` rows this object has written and read (tests and benchmarks check a
    #: pass writes only the owners whose items changed and reads only those it needs).
    kr_item_rows_written: int = 0
    kr_item_rows_read: int = 0

    # -- runs --------------------------------------------------------------------------

    def start_run(
        self, kind: RunKind, *, holder: str | None = None, started_at: datetime | None = None
    ) -> int:
        """Record the start of a pass; returns its run id."""
        if kind not in RUN_KINDS:
            raise InvalidRecordError(f"unknown run kind {kind!r}")
        with self._connection() as conn:
            result = conn.execute(
                sa.insert(runs)
                .values(
                    kind=kind,
                    holder=holder,
                    started_at=self._now(started_at),
                    jira_requests=0,
                    issues_fetched=0,
                    changes=0,
                    deliveries_sent=0,
                    deliveries_failed=0,
                )
                .returning(runs.c.id)
            )
            return int(result.scalar_one())

    def finish_run(
        self,
        run_id: int,
        outcome: Outcome,
        counts: RunCounts | None = None,
        *,
        error_summary: str | None = None,
        ended_at: datetime | None = None,
    ) -> RunRecord:
        """Record how a pass ended. A run is finished once; a second finish is refused."""
        if outcome not in RUN_OUTCOMES:
            raise InvalidRecordError(f"unknown run outcome {outcome!r}")
        c = counts or RunCounts()
        with self._connection() as conn:
            result = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.outcome.is_(None))
                .values(
                    outcome=outcome,
                    ended_at=self._now(ended_at),
                    jira_requests=c.jira_requests,
                    issues_fetched=c.issues_fetched,
                    changes=c.changes,
                    deliveries_sent=c.deliveries_sent,
                    deliveries_failed=c.deliveries_failed,
                    error_summary=truncate(error_summary),
                )
            )
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run {run_id}")
        if result.rowcount == 0:
            raise InvalidStateError(f"run {run_id} already finished ({row.outcome})")
        return _run(row)

    def abandon_unfinished_runs(self, at: datetime | None = None) -> int:
        """Close runs left open by a process that died. Call only while holding the run
        lock: then no open run can still be alive."""
        with self._connection() as conn:
            return conn.execute(
                sa.update(runs)
                .where(runs.c.outcome.is_(None))
                .values(outcome="failed", ended_at=self._now(at), error_summary=ABANDONED)
            ).rowcount

    def get_run(self, run_id: int) -> RunRecord:
        with self._connection() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run {run_id}")
        return _run(row)

    def last_run(
        self, *, outcome: Outcome | None = None, kind: RunKind | None = None
    ) -> RunRecord | None:
        """The latest run (optionally with a given outcome / kind)."""
        query = sa.select(runs)
        if outcome is not None:
            query = query.where(runs.c.outcome == outcome)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with self._connection() as conn:
            row = conn.execute(query.order_by(runs.c.id.desc()).limit(1)).first()
        return None if row is None else _run(row)

    def last_runs_by_outcome(self) -> dict[str, RunRecord]:
        """The latest run of each outcome (``ok``, ``partial``, ``failed``, and ``running``
        for a run without an end) - what ``status`` and ``/readyz`` report."""
        latest = (
            sa.select(sa.func.max(runs.c.id))
            .group_by(sa.func.coalesce(runs.c.outcome, "running"))
            .scalar_subquery()
        )
        with self._connection() as conn:
            rows = conn.execute(sa.select(runs).where(runs.c.id.in_(latest))).all()
        return {(row.outcome or "running"): _run(row) for row in rows}

    # -- snapshots ---------------------------------------------------------------------

    def save_snapshot(
        self,
        *,
        cycle: str,
        as_of: datetime,
        document: Mapping[str, Any],
        run_id: int | None = None,
        published: bool = True,
        created_at: datetime | None = None,
    ) -> int:
        """Store a scorecard document (the A5 JSON); returns the snapshot id.

        ``published`` marks the snapshot that later passes diff against: save it in
        the same transaction as the outbox rows announcing it.
        """
        stored, rows = _split_explain(document)
        with self._connection() as conn:
            self._write_items(conn, rows)
            result = conn.execute(
                sa.insert(snapshots)
                .values(
                    run_id=run_id,
                    created_at=self._now(created_at),
                    cycle=cycle,
                    as_of=self._now(as_of),
                    document=stored,
                    published=published,
                )
                .returning(snapshots.c.id)
            )
            return int(result.scalar_one())

    def _write_items(self, conn: sa.Connection, rows: Mapping[tuple[str, str], Any]) -> None:
        """Insert the rows not stored yet: an owner whose items did not change names
        the row an earlier snapshot wrote."""
        if not rows:
            return
        present: set[tuple[str, str]] = set()
        for part in chunks(sorted({digest for _, digest in rows})):
            present.update(
                (row.owner, row.hash) for row in conn.execute(
                    sa.select(kr_items.c.owner, kr_items.c.hash).where(kr_items.c.hash.in_(part))
                )
            )
        missing = [{"owner": owner, "hash": digest, "document": entry}
                   for (owner, digest), entry in rows.items() if (owner, digest) not in present]
        if missing:
            conn.execute(sa.insert(kr_items), missing)
            self.kr_item_rows_written += len(missing)

    def _read_items(self, conn: sa.Connection, refs: Mapping[str, str],
                    owners: Iterable[str] | None = None) -> dict[str, Any]:
        """Per owner (all of ``refs``, or those of ``owners``), its stored explanation."""
        wanted = {owner: refs[owner] for owner in (refs if owners is None else owners)
                  if owner in refs}
        by_key: dict[tuple[str, str], Any] = {}
        for part in chunks(sorted(set(wanted.values()))):
            for row in conn.execute(
                sa.select(kr_items.c.owner, kr_items.c.hash, kr_items.c.document)
                .where(kr_items.c.hash.in_(part))
            ):
                by_key[(row.owner, row.hash)] = row.document
        found = {owner: by_key[(owner, digest)] for owner, digest in wanted.items()
                 if (owner, digest) in by_key}
        self.kr_item_rows_read += len(found)
        return found

    def _resolved(self, row: sa.Row[Any]) -> Snapshot:
        """The snapshot of ``row`` with its explanations inline, whichever way they are
        stored: every reader sees the same document as before they moved to ``kr_items``."""
        snapshot = _snapshot(row)
        refs = snapshot.document.get(EXPLAIN_REFS)
        if not isinstance(refs, dict):
            return snapshot
        with self._connection() as conn:
            explain = self._read_items(conn, refs)
        document = {k: v for k, v in snapshot.document.items() if k != EXPLAIN_REFS}
        document["explain"] = {owner: explain[owner] for owner in refs if owner in explain}
        return Snapshot(snapshot.id, snapshot.run_id, snapshot.created_at, snapshot.cycle,
                        snapshot.as_of, document, snapshot.published)

    def snapshot_explanations(self, snapshot_id: int,
                              owners: Iterable[str] | None = None) -> dict[str, Any]:
        """The stored explanations (JSON) of snapshot ``snapshot_id``: all, or only those
        of ``owners``; reads only those owners' rows when they are stored apart."""
        doc = snapshots.c.document
        with self._connection() as conn:
            row = conn.execute(
                sa.select(doc[EXPLAIN_REFS].label("refs"), doc["explain"].label("explain"))
                .where(snapshots.c.id == snapshot_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no snapshot {snapshot_id}")
            if isinstance(row.refs, dict):
                return self._read_items(conn, row.refs, owners)
        explain = row.explain if isinstance(row.explain, dict) else {}
        return dict(explain) if owners is None else {
            owner: explain[owner] for owner in owners if owner in explain}

    def snapshot_explained_owners(self, snapshot_id: int) -> list[str]:
        """The owners snapshot ``snapshot_id`` holds explanations for, without their items
        when they are stored apart."""
        doc = snapshots.c.document
        with self._connection() as conn:
            refs = conn.execute(
                sa.select(doc[EXPLAIN_REFS]).where(snapshots.c.id == snapshot_id)
            ).scalar_one_or_none()
        if isinstance(refs, dict):
            return list(refs)
        return list(self.snapshot_explanations(snapshot_id))

    def mark_published(self, snapshot_id: int) -> None:
        with self._connection() as conn:
            result = conn.execute(
                sa.update(snapshots).where(snapshots.c.id == snapshot_id).values(published=True)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no snapshot {snapshot_id}")

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        with self._connection() as conn:
            row = conn.execute(sa.select(snapshots).where(snapshots.c.id == snapshot_id)).first()
        if row is None:
            raise NotFoundError(f"no snapshot {snapshot_id}")
        return self._resolved(row)

    def last_published_snapshot(self) -> Snapshot | None:
        """The snapshot the next pass diffs against (the newest published one)."""
        return self._last_snapshot(published_only=True)

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot, published or not."""
        return self._last_snapshot(published_only=False)

    def snapshot_head(self, *, published_only: bool) -> Snapshot | None:
        """The last (published) snapshot with its scorecard and fetch marks but without
        its explanations (every KR's items: most of a large document). Documents of
        another layout version come whole."""
        doc = snapshots.c.document
        query = sa.select(
            snapshots.c.id, snapshots.c.run_id, snapshots.c.created_at, snapshots.c.cycle,
            snapshots.c.as_of, snapshots.c.published, doc["version"].label("version"),
            doc["scorecard"].label("scorecard"), doc["fetch"].label("fetch"),
        )
        if published_only:
            query = query.where(snapshots.c.published.is_(True))
        with self._connection() as conn:
            row = conn.execute(query.order_by(snapshots.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        if row.version != 2 or not isinstance(row.scorecard, dict):
            return self.get_snapshot(row.id)
        document = {"version": row.version, "scorecard": row.scorecard, "fetch": row.fetch or {}}
        return Snapshot(row.id, row.run_id, row.created_at, row.cycle, row.as_of, document,
                        row.published)

    def latest_snapshot_id(self) -> int | None:
        """The newest snapshot's id, without reading its document."""
        with self._connection() as conn:
            found = conn.execute(sa.select(sa.func.max(snapshots.c.id))).scalar_one_or_none()
        return None if found is None else int(found)

    def published_snapshot_at(self, moment: datetime, *, cycle: str | None = None
                              ) -> Snapshot | None:
        """The newest snapshot published at or before ``moment`` (of ``cycle`` when given):
        what people were shown then, e.g. a week ago for the digest's moves."""
        query = sa.select(snapshots).where(
            snapshots.c.published.is_(True), snapshots.c.created_at <= self._now(moment)
        )
        if cycle is not None:
            query = query.where(snapshots.c.cycle == cycle)
        with self._connection() as conn:
            row = conn.execute(
                query.order_by(snapshots.c.created_at.desc(), snapshots.c.id.desc()).limit(1)
            ).first()
        return None if row is None else self._resolved(row)

    def snapshot_before(self, snapshot_id: int) -> Snapshot | None:
        """The snapshot stored just before ``snapshot_id`` (published or not): the pass
        ``explain`` compares item states with."""
        with self._connection() as conn:
            row = conn.execute(
                sa.select(snapshots).where(snapshots.c.id < snapshot_id)
                .order_by(snapshots.c.id.desc()).limit(1)
            ).first()
        return None if row is None else self._resolved(row)

    def first_published_at(self) -> datetime | None:
        """When the first published scorecard was measured (its ``as_of``); None before.
        Scheduled messages count only slots after it."""
        with self._connection() as conn:
            value = conn.execute(
                sa.select(sa.func.min(snapshots.c.as_of))
                .where(snapshots.c.published.is_(True))
            ).scalar_one_or_none()
        return cast(datetime | None, value)

    def _last_snapshot(self, *, published_only: bool) -> Snapshot | None:
        query = sa.select(snapshots)
        if published_only:
            query = query.where(snapshots.c.published.is_(True))
        with self._connection() as conn:
            row = conn.execute(query.order_by(snapshots.c.id.desc()).limit(1)).first()
        return None if row is None else self._resolved(row)

    # -- check-ins ---------------------------------------------------------------------

    def add_checkin(
        self,
        kr_id: str,
        *,
        value: float | None = None,
        confidence: Confidence | None = None,
        note: str | None = None,
        author: str | None = None,
        at: datetime | None = None,
    ) -> Checkin:
        """Record a manual check-in (``okr-sync checkin``): a value, a confidence, a note."""
        if value is None and confidence is None and note is None:
            raise InvalidRecordError("a check-in needs a value, a confidence or a note")
        if confidence is not None:
            _check_confidence(confidence)
        when = self._now(at)
        with self._connection() as conn:
            new_id = conn.execute(
                sa.insert(checkins)
                .values(
                    kr_id=kr_id,
                    at=when,
                    value=value,
                    confidence=confidence,
                    note=note,
                    author=author,
                )
                .returning(checkins.c.id)
            ).scalar_one()
        return Checkin(int(new_id), kr_id, when, value, confidence, note, author)

    def checkins(self, kr_id: str, *, limit: int | None = None) -> list[Checkin]:
        """A KR's check-ins, newest first."""
        query = (
            sa.select(checkins)
            .where(checkins.c.kr_id == kr_id)
            .order_by(checkins.c.at.desc(), checkins.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self._connection() as conn:
            return [_checkin(r) for r in conn.execute(query)]

    def latest_checkins(
        self, *, since: datetime | None = None, kr_ids: Collection[str] | None = None,
        until: datetime | None = None,
    ) -> dict[str, LatestCheckin]:
        """Per KR, the latest value, confidence and note set by check-ins (at or after
        ``since``, e.g. the cycle start; at or before ``until``, e.g. what a pass saw)."""
        query = sa.select(checkins).order_by(checkins.c.at, checkins.c.id)
        if since is not None:
            query = query.where(checkins.c.at >= self._now(since))
        if until is not None:
            query = query.where(checkins.c.at <= self._now(until))
        if kr_ids is not None:
            query = query.where(checkins.c.kr_id.in_(sorted(kr_ids)))
        state: dict[str, dict[str, Any]] = {}
        with self._connection() as conn:
            for row in conn.execute(query):
                current = state.setdefault(row.kr_id, {"kr_id": row.kr_id})
                if row.value is not None:
                    current.update(value=row.value, value_at=row.at)
                if row.confidence is not None:
                    current.update(
                        confidence=cast(Confidence, row.confidence), confidence_at=row.at
                    )
                if row.note is not None:
                    current.update(note=row.note, note_at=row.at, note_by=row.author)
        return {kr: LatestCheckin(**fields) for kr, fields in state.items()}
