"""The pass snapshot: what a pass stores and the next pass (and ``status``,
``explain``, ``report``, the digest) reads back, typed and versioned.

A :class:`PassSnapshot` holds the scorecard, per KR or KPI the explanation of its
value (its JQL, the items behind it and how each was counted) and the fetch
fingerprint each source's mirror was built for. :meth:`PassSnapshot.to_json` and
:meth:`PassSnapshot.from_json` are the only code that knows the stored layout;
documents of earlier versions are upgraded on read (:func:`upgrade_snapshot_v1`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from okr_sync.scoring.diff import PublishedKr, published_krs
from okr_sync.scoring.evaluate import Evaluation
from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.incremental import Changes, MeasureState
from okr_sync.scoring.scorecard import (
    ItemCounts,
    Scorecard,
    ScorecardFormatError,
    scorecard_from_json,
    scorecard_to_json,
)
from okr_sync.sync.encoded import EncodedOnRead
from okr_sync.sync.explanation import Explanation as Explanation  # re-exported: its old home
from okr_sync.sync.lazy_explanations import (
    ExplanationsJson,
    KeptExplanations,
    LazyExplanations,
    PreviousStates,
    explanations_equal,
)
from okr_sync.sync.mirror import KnownMirrored, MirrorView
from okr_sync.sync.paused_gc import paused_gc
from okr_sync.sync.pull import PulledSource, SourceState
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import Store, StoreTransaction

#: The layout :meth:`PassSnapshot.to_json` writes. Version 1 is the flat scorecard
#: document with ``explain`` and ``fetch`` beside its keys (no version key); version 2
#: holds each explanation's items as objects, version 3 as rows (both are read).
SNAPSHOT_VERSION = 3


class SnapshotError(ValueError):
    """A stored snapshot cannot be read."""


class SnapshotFormatError(SnapshotError):
    """A stored snapshot document does not have the snapshot shape."""


class UnknownSnapshotVersionError(SnapshotError):
    """A snapshot written by a newer okr-sync: its layout is unknown here."""

    def __init__(self, version: object) -> None:
        super().__init__(f"snapshot version {version!r} is newer than this okr-sync reads "
                         f"(up to {SNAPSHOT_VERSION}); upgrade okr-sync")
        self.version = version


def with_reasons(explanations: Mapping[str, Explanation],
                 evaluations: Mapping[str, Evaluation]) -> LazyExplanations:
    """``explanations`` (read when first needed) with each owner's reasons taken from
    ``evaluations``."""

    def load() -> dict[str, Explanation]:
        return {
            owner: explanation if owner not in evaluations
            or evaluations[owner].reasons == explanation.reasons
            else replace(explanation, reasons=tuple(evaluations[owner].reasons))
            for owner, explanation in explanations.items()
        }

    return LazyExplanations(load)


@dataclass(frozen=True)
class PassSnapshot:
    """What one pass concluded, as stored for later passes and commands.

    In memory a snapshot is always of the current layout: older documents are
    upgraded on read, and :meth:`to_json` writes :data:`SNAPSHOT_VERSION`.
    """

    scorecard: Scorecard
    explanations: Mapping[str, Explanation] = field(default_factory=dict)
    #: Per Jira source, what its mirror was fetched for (projects, fields): a plan that
    #: needs more makes the next pull a full one.
    fetch: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "scorecard": scorecard_to_json(self.scorecard),
            "explain": (self.explanations.json_entries()
                        if isinstance(self.explanations, KeptExplanations)
                        else {owner: e.to_json() for owner, e in self.explanations.items()}),
            "fetch": dict(self.fetch),
        }

    def to_stored_json(self) -> dict[str, Any]:
        """:meth:`to_json` with each owner's explanation built as the store reads it."""
        return {"version": SNAPSHOT_VERSION, "scorecard": scorecard_to_json(self.scorecard),
                "explain": ExplanationsJson(self.explanations), "fetch": dict(self.fetch)}

    @classmethod
    def from_json(
        cls, doc: Mapping[str, Any], *, measure_kinds: Mapping[str, str] | None = None
    ) -> PassSnapshot:
        """A stored snapshot of any known version.

        ``measure_kinds`` (KR id -> measure kind, from the plan) fills in what
        scorecards stored before they carried measure kinds lack.
        """
        version = doc.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise SnapshotFormatError(f"snapshot version is not a number: {version!r}")
        if version > SNAPSHOT_VERSION:
            raise UnknownSnapshotVersionError(version)
        if version < 2:
            doc = upgrade_snapshot_v1(doc)
        try:
            scorecard = scorecard_from_json(doc["scorecard"], measure_kinds=measure_kinds)
            explanations = {
                str(owner): Explanation.from_json(entry)
                for owner, entry in (doc.get("explain") or {}).items()
            }
            fetch = {str(source): str(mark) for source, mark in (doc.get("fetch") or {}).items()}
        except ScorecardFormatError as error:
            raise SnapshotFormatError(f"stored snapshot: {error}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SnapshotFormatError(
                f"stored snapshot is not a snapshot document ({type(error).__name__})"
            ) from None
        return cls(scorecard, explanations, fetch)


def upgrade_snapshot_v1(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A version 1 document (the scorecard's A5 keys, ``explain`` and ``fetch`` side by
    side, with or without ``version: 1``) in the version 2 layout."""
    if not isinstance(doc, Mapping):
        raise SnapshotFormatError("stored snapshot is not a JSON object")
    scorecard = {k: v for k, v in doc.items() if k not in ("version", "explain", "fetch")}
    return {
        "version": 2,
        "scorecard": scorecard,
        "explain": doc.get("explain") or {},
        "fetch": doc.get("fetch") or {},
    }


@paused_gc()
def save_snapshot(
    store: Store | StoreTransaction,
    snapshot: PassSnapshot,
    *,
    run_id: int | None = None,
    published: bool = True,
    measured_at: datetime | None = None,
) -> int:
    """Store ``snapshot``; returns its id (``published``: the one later passes diff against).

    ``measured_at`` is the real time of the pass; ``--as-of`` only moves the scorecard's
    elapsed time and confidence (A5), never when the store says it was measured.
    """
    cycle = snapshot.scorecard.cycle
    when = measured_at if measured_at is not None else cycle.as_of
    return store.save_snapshot(cycle=cycle.name, as_of=when, document=snapshot.to_stored_json(),
                               run_id=run_id, published=published)


def explanations_of(evaluations: Mapping[str, Evaluation],
                    latest: Mapping[str, Explanation] | None = None,
                    reused: Collection[str] = ()) -> Mapping[str, Explanation]:
    """Per owner, the items behind its value: kept in the snapshot for ``explain``.
    Owners in ``reused`` (evaluated without items) take theirs from ``latest``: when
    that snapshot stores them apart and their reasons are the same, by naming its row
    (their items are not decoded)."""
    result: dict[str, Explanation] = {}
    kept: dict[str, tuple[str, tuple[str, ...]]] = {}
    if isinstance(latest, LazyExplanations):
        for owner, evaluation in evaluations.items():
            if owner in reused and owner in latest:
                found = latest.kept_ref(owner, tuple(evaluation.reasons))
                if found is not None:
                    kept[owner] = found
        latest.preload([owner for owner in evaluations if owner in reused and owner not in kept])
    for owner, evaluation in evaluations.items():
        if owner in kept:
            continue
        if owner in reused and latest is not None:
            stored = latest[owner]
            result[owner] = (stored if stored.reasons == tuple(evaluation.reasons)
                             else replace(stored, reasons=tuple(evaluation.reasons)))
        else:
            result[owner] = Explanation.of(evaluation)
    if kept and isinstance(latest, LazyExplanations):
        return KeptExplanations(list(evaluations), result, kept, latest)
    return result


def unchanged_explanations(latest: Mapping[str, Explanation],
                           evaluations: Mapping[str, Evaluation]) -> Mapping[str, Explanation]:
    """The explanations of a pass that found nothing new: the latest snapshot's, with
    this pass's reasons. When that snapshot stores them apart and holds exactly the
    evaluated owners, an owner whose reasons are the stored ones names its stored row
    (:func:`explanations_of`): saving such a pass (one that posts a message) then
    decodes only the owners whose reasons moved, not every KR's items."""
    if (isinstance(latest, LazyExplanations) and latest.refs()
            and set(latest.refs()) == set(latest) == set(evaluations)):
        ordered = {owner: evaluations[owner] for owner in latest}
        return explanations_of(ordered, latest, ordered)
    return with_reasons(latest, evaluations)


def materialised(explanations: Mapping[str, Explanation]) -> Mapping[str, Explanation]:
    """``explanations`` with nothing left to read from the store (before a transaction):
    kept ones name stored rows, so saving them reads nothing and they stay as they are."""
    if isinstance(explanations, KeptExplanations):
        return explanations
    return dict(explanations)


def load_state(
    store: StoreReader,
    source: str,
    queries: Mapping[str, str],
    previous: PassSnapshot | None,
    summary: Mapping[str, Any] | None = None,
    known: KnownMirrored | None = None,
) -> SourceState:
    """The mirror, cursor and stored memberships of ``source``.

    ``queries`` maps raw-JQL owners to their JQL in the plan: a stored membership
    is offered for reuse only while it was computed for that same JQL. ``known``: what
    earlier passes of this process learnt of which ids are mirrored.
    """
    # A view of the stored mirror, read on demand: a pass never loads it whole.
    issues = MirrorView(store, source) if known is None else known.view(store, source)
    cursor = store.get_cursor(source)
    memberships: dict[str, tuple[str, tuple[str, ...]]] = {}
    stored_memberships = store.get_memberships(source) if queries else {}
    mark = cursor.high_water_mark if cursor else None
    for owner, jql in queries.items():
        stored = stored_memberships.get(owner)
        # Offered only when checked through the cursor this pass starts from: a pass
        # checks a kept answer against the changes since that cursor only (one of a KR
        # that left the plan for a while, or stored before this was recorded, is older).
        if (stored is not None and stored.matches(jql) and mark is not None
                and stored.checked_through == mark):
            memberships[owner] = (jql, stored.issue_ids)
    checks = {
        check.kr_id: check.verdict
        for check in store.jql_checks(source)
        if check.kr_id in queries and check.matches(queries[check.kr_id])
    }
    counts: dict[str, tuple[str, int]] = {}
    if summary is not None:
        # The pass that wrote the summary had the latest snapshot's explanations.
        for owner, entry in summary["evaluations"].items():
            if owner in queries and entry["count"] is not None and not entry["error"]:
                counts[owner] = (str(entry["jql"]), int(entry["count"]))
    else:
        explanations = previous.explanations if previous is not None else {}
        for owner, explanation in explanations.items():
            if owner in queries and explanation.count is not None and not explanation.error:
                counts[owner] = (explanation.jql, explanation.count)
    return SourceState(
        issues=issues,
        cursor=cursor.high_water_mark if cursor else None,
        last_full_reconcile=cursor.last_full_reconcile if cursor else None,
        probed_at=cursor.updated_at if cursor else None,
        memberships=memberships,
        counts=counts,
        jql_checks=checks,
        resolve_keys=partial(store.resolve_keys, source),
        unplanned_memberships=frozenset(stored_memberships) - set(queries),
    )


def prior_measure_states(
    store: StoreReader, pulled: Mapping[str, PulledSource],
    owners: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, MeasureState], dict[str, Changes]]:
    """The stored measure states and, per source that has them, how this pull changed
    the mirror they were computed on (for :func:`~okr_sync.scoring.evaluate.measure_states`).

    ``owners``: per source, the only owners whose states are wanted (all when absent).
    A source without usable states gets no changes: its measures are measured in full.
    """
    before: dict[str, MeasureState] = {}
    changes: dict[str, Changes] = {}
    for name, source in pulled.items():
        stored = store.get_measure_states(
            name, None if owners is None else owners.get(name, ()), decode=_measure_state)
        if stored is None:
            continue
        before.update((owner, state) for owner, (_, state) in stored.items())
        gone = frozenset(source.deleted)
        changed = {i.id: source.issues[i.id] for i in source.upserts
                   if i.id not in gone and i.id in source.issues}
        changes[name] = Changes(changed, gone)
    return before, changes


def _measure_state(document: Mapping[str, Any]) -> MeasureState | None:
    try:
        return MeasureState.from_json(document)
    except (KeyError, TypeError, ValueError):
        return None  # unreadable (hand-edited, truncated): that measure is rebuilt


@paused_gc()
def save_measure_states(
    tx: StoreTransaction,
    source: str,
    same: Collection[str],
    states: Mapping[str, MeasureState],
    sources_of: Mapping[str, str],
    now: datetime,
    *,
    summary: Mapping[str, Any] | None = None,
    untouched: Collection[str] = (),
) -> None:
    """Store the states of ``source``'s measures that changed (all but ``same``: owners
    whose state is the stored one), with the mirror's mark
    (and the pass's summary, see :mod:`okr_sync.sync.measuring`). ``untouched``: owners
    whose stored states this pass did not read and still hold (kept as they are)."""
    mine = {owner: state for owner, state in states.items() if sources_of.get(owner) == source}
    changed = EncodedOnRead({owner: state for owner, state in mine.items()
                             if owner not in same},
                            lambda state: (state.key, state.to_json()))
    keep = set(mine) | {o for o in untouched if sources_of.get(o) == source}
    tx.save_measure_states(source, changed, keep=keep, at=now, summary=summary)


def write_source(tx: StoreTransaction, source: PulledSource, now: datetime) -> None:
    if source.upserts:
        tx.upsert_issues(source.name, source.upserts, seen_at=now)
    if source.deleted:
        tx.mark_deleted(source.name, source.deleted, at=now)
    for owner in sorted(source.forgotten_memberships - set(source.refreshed_memberships)):
        tx.forget_membership(source.name, owner)
    for owner, (jql, ids) in source.refreshed_memberships.items():
        tx.set_membership(source.name, owner, jql=jql, issue_ids=ids, refreshed_at=now,
                          checked_through=source.cursor)
    for owner, (jql, verdict, detail) in source.jql_checks.items():
        tx.set_jql_check(source.name, owner, jql=jql, verdict=verdict, detail=detail,
                         checked_at=now)
    if source.source_error is not None:
        tx.record_source_failure(source.name, source.source_error, at=now)
    else:
        tx.record_source_read(source.name, at=now)
        if source.kept_memberships and source.cursor is not None:
            tx.mark_memberships_checked(source.name, source.kept_memberships,
                                        through=source.cursor)
        tx.set_cursor(
            source.name,
            high_water_mark=source.cursor,
            last_full_reconcile=source.reconciled_at,
            at=now,
        )


def same_scores(snapshot: PassSnapshot, other: PassSnapshot | None, *,
                same_explanations: bool = False) -> bool:
    """Whether two snapshots agree on everything but the moment they were taken.

    ``same_explanations``: the caller knows the explanations agree (a pass that found
    nothing new), so they are not read to be compared. Otherwise an owner whose
    explanation names the other snapshot's own stored row is equal unread: only the
    others are read.
    """
    if other is None:
        return False
    # Scores compared as stored (rounded to 4 decimals): a wobble nobody can see is no
    # change. Explanations hold exact values that survive the JSON round trip, so they
    # are compared as objects, without writing every KR's items out twice a pass.
    mine, theirs = scorecard_to_json(snapshot.scorecard), scorecard_to_json(other.scorecard)
    keys = ("perspectives", "warnings")
    return (
        all(mine[key] == theirs[key] for key in keys)
        and _trendless(mine["kpis"]) == _trendless(theirs["kpis"])
        and _timeless(mine["objectives"]) == _timeless(theirs["objectives"])
        and dict(snapshot.fetch) == dict(other.fetch)
        and (same_explanations or explanations_equal(snapshot.explanations, other.explanations))
    )


def _trendless(kpis: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KPIs without their trend: it moves with every stored pass (its "previous" is the
    last stored value), so it alone must not make a pass store again."""
    return [{k: v for k, v in kpi.items() if k != "trend"} for kpi in kpis]


def _timeless(objectives: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objectives without their KRs' ``measured_at``: re-measuring the same value is no
    change. A quiet pass stores nothing, so a stored ``measured_at`` is the first time
    that value was measured since it last changed (an age that errs on the old side)."""
    return [
        {**o, "key_results": [
            {k: v for k, v in kr.items() if k != "measured_at"} for kr in o["key_results"]
        ]}
        for o in objectives
    ]


def previous_states(snapshot: PassSnapshot | None) -> Mapping[str, Mapping[str, ItemState]]:
    """Per owner measured without error, its items' states (for change reasons), each
    owner's decoded only when asked for (:class:`PreviousStates`)."""
    if snapshot is None:
        return {}
    return PreviousStates(snapshot.explanations)


@dataclass(frozen=True)
class KeptValue:
    """A KR's or KPI's last measured value, kept (stale) when this pass's measure fails."""

    value: float
    items: ItemCounts | None
    #: When it was really measured: a stale value keeps the time of its measurement.
    measured_at: datetime | None


def previous_values(snapshot: PassSnapshot | None) -> dict[str, KeptValue]:
    """Per measured KR and KPI, its value, item counts and measurement time."""
    if snapshot is None:
        return {}
    values: dict[str, KeptValue] = {
        kr.id: KeptValue(kr.value, kr.items, kr.measured_at)
        for kr in snapshot.scorecard.key_results()
        if kr.value is not None
    }
    for kpi in snapshot.scorecard.kpis:
        if kpi.value is not None:
            values[kpi.id] = KeptValue(float(kpi.value), None, snapshot.scorecard.cycle.as_of)
    return values


def published_scores(snapshot: PassSnapshot) -> dict[str, PublishedKr]:
    """What a published snapshot told people about each KR (the baseline for news)."""
    return published_krs(snapshot.scorecard)
