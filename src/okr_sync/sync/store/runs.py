"""Store operations on what a pass produced: runs, scorecard snapshots, per-KR score
history and check-ins."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from okr_sync.scoring.scorecard import Confidence
from okr_sync.sync.store.base import truncate
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
    SnapshotMark,
)
from okr_sync.sync.store.snapshot_items import (
    EXPLAIN_REASONS,
    EXPLAIN_REFS,
    SPLIT_VERSIONS,
    SnapshotItemOps,
)
from okr_sync.sync.store.tables import (
    CONFIDENCES,
    RUN_KINDS,
    RUN_OUTCOMES,
    checkins,
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


def _checkin(row: sa.Row[Any]) -> Checkin:
    return Checkin(row.id, row.kr_id, row.at, row.value, row.confidence, row.note, row.author)


class RunOps(SnapshotItemOps):
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
        with self._connection() as conn:
            stored = self._write_explained(conn, document)
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

    def _resolved(self, row: sa.Row[Any]) -> Snapshot:
        """The snapshot of ``row`` with its explanations inline, whichever way they are
        stored: every reader sees the same document as before they moved to ``kr_items``."""
        snapshot = _snapshot(row)
        refs = snapshot.document.get(EXPLAIN_REFS)
        if not isinstance(refs, dict):
            return snapshot
        with self._connection() as conn:
            explain = self._read_items(conn, refs)
        document = {k: v for k, v in snapshot.document.items()
                    if k not in (EXPLAIN_REFS, EXPLAIN_REASONS)}
        document["explain"] = {owner: explain[owner] for owner in refs if owner in explain}
        return Snapshot(snapshot.id, snapshot.run_id, snapshot.created_at, snapshot.cycle,
                        snapshot.as_of, document, snapshot.published)

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
        if row.version not in SPLIT_VERSIONS or not isinstance(row.scorecard, dict):
            return self.get_snapshot(row.id)
        document = {"version": row.version, "scorecard": row.scorecard, "fetch": row.fetch or {}}
        return Snapshot(row.id, row.run_id, row.created_at, row.cycle, row.as_of, document,
                        row.published)

    def snapshot_marks(self) -> tuple[SnapshotMark | None, SnapshotMark | None]:
        """What names the newest snapshot and the newest published one, in one read and
        without their documents: a running process that decoded them before keeps them."""
        newest = sa.select(sa.func.max(snapshots.c.id)).scalar_subquery()
        published = (sa.select(sa.func.max(snapshots.c.id))
                     .where(snapshots.c.published.is_(True)).scalar_subquery())
        query = sa.select(snapshots.c.id, snapshots.c.run_id, snapshots.c.created_at,
                          snapshots.c.cycle, snapshots.c.published).where(
            sa.or_(snapshots.c.id == newest, snapshots.c.id == published))
        with self._connection() as conn:
            rows = conn.execute(query).all()
        marks = sorted((SnapshotMark(int(r.id), r.run_id, r.created_at, r.cycle, r.published)
                        for r in rows), key=lambda m: m.id)
        latest = marks[-1] if marks else None
        last_published = next((m for m in reversed(marks) if m.published), None)
        return latest, last_published

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
