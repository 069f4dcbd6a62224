"""Step 3 of a pass, measuring: incremental, and nothing at all when nothing is new.

Measures are brought up to date from the stored measure states and what the pull
changed (:mod:`okr_sync.scoring.incremental`). Beside the states, each pass stores a
*summary* per source: every KR's and KPI's evaluation without its items, with what it
was computed from (measure keys, raw-JQL member ids, counts, the published snapshot its
reasons are told against, the site its links point to). A later pass whose pull brought
nothing new (no update, deletion or membership change, no failure, the same plan, the
same published snapshot) has, by construction, the same evaluations: it takes them from
the summary and reads no issue, no measure state and no snapshot's items. The items
behind them are those of the latest snapshot (that pass stored it, or its scores and
explanations equalled that snapshot's, or it was such a quiet pass itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from okr_sync.config.plan import Plan
from okr_sync.scoring.evaluate import (
    Basis,
    Evaluation,
    SourceData,
    evaluate_measures,
    evaluation_from_summary,
    evaluation_summary,
    measure_keys,
    measure_states,
    measured_by_source,
    reason_basis,
)
from okr_sync.scoring.explain import ItemState
from okr_sync.scoring.incremental import Measured, MeasureIndex, MeasureState
from okr_sync.scoring.measures import WorkItem
from okr_sync.sync.lazy_explanations import LazyExplanations, PreviousStates
from okr_sync.sync.paused_gc import paused_gc
from okr_sync.sync.pull import PulledSource, issue_from_record
from okr_sync.sync.state import (
    Explanation,
    PassSnapshot,
    previous_states,
    prior_measure_states,
    save_measure_states,
)
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.records import Snapshot
from okr_sync.sync.store.store import StoreTransaction

#: The layout of a stored summary; another one is ignored (the pass measures instead).
SUMMARY_VERSION = 1
#: The summary's key recording, per owner, the snapshot whose items equal its stored
#: measure state (:func:`items_of`).
ITEMS_OF = "items_of"


@dataclass(frozen=True)
class Measurements:
    """This pass's evaluations, and the measure states to store with them."""

    evaluations: dict[str, Evaluation]
    #: Taken from the stored summaries: nothing was new, no state changed.
    unchanged: bool = False
    states: Mapping[str, MeasureState] = field(default_factory=dict)
    #: Owners whose state is the stored one, unchanged (not stored again). Only their
    #: names are kept: holding the stored states read until commit held a second copy
    #: of every changed measure's facts through evaluating and saving.
    same: frozenset[str] = frozenset()
    #: Owners no change of this pass can affect -> their stored measure key (None for
    #: counts): evaluations taken from the stored summary, states neither read nor
    #: written, items those of the latest snapshot.
    reused: Mapping[str, str | None] = field(default_factory=dict)
    #: Owner -> the snapshot whose items for it its stored state equals, of the owners
    #: whose stored state this pass leaves as it is (see :func:`items_of`).
    items_of: Mapping[str, int] = field(default_factory=dict)
    #: Owners whose stored state, after this pass, equals the items the snapshot it
    #: publishes (if it does) holds for them.
    renewed: frozenset[str] = frozenset()


def members_hash(ids: Sequence[str]) -> str:
    """A raw-JQL membership's fingerprint: its set of ids. The order is not part of it:
    nothing measured depends on it (a measure's items are kept in their own order), and
    the store keeps members sorted as text while an answer computed this pass comes in
    id order, so an order-sensitive hash made the first pass after every fresh answer
    measure again with nothing new."""
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()


@paused_gc()
def measure(
    plan: Plan,
    store: StoreReader,
    pulled: Mapping[str, PulledSource],
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    published_id: int | None,
    published: PassSnapshot | None,
    latest: PassSnapshot | None,
    sites: Mapping[str, str | None],
    summaries: Mapping[str, Mapping[str, Any] | None],
    may_reuse: bool,
) -> Measurements:
    """Evaluate every Jira measure. ``published`` is the published snapshot (its id
    ``published_id``): reasons are told against its items, read only when needed.
    ``latest``: the latest snapshot (the items of owners no change touched)."""
    latest_items = latest.explanations if latest is not None else None
    marks = items_of(summaries)
    # Owners whose stored state equals the published items: their reasons are told
    # from the state and the changes (:func:`reason_basis`), not the published items.
    told = {owner for owner, snapshot in marks.items()
            if published_id is not None and snapshot == published_id}
    if may_reuse:
        reused = _unchanged(plan, pulled, sources, cycle_start=cycle_start,
                            published_id=published_id, sites=sites, summaries=summaries)
        if reused is not None:
            # The published snapshot, if this pass publishes one, holds the latest's items.
            return Measurements(reused, unchanged=True, items_of=marks,
                                renewed=frozenset(told) if latest is published else frozenset())
    items_before = previous_states(published)
    # Built once: its matchers and measure keys serve both finding the untouched owners
    # and measuring the others.
    by_source = measured_by_source(plan, sources, cycle_start)
    kept: dict[str, tuple[Evaluation, str | None]] = {}
    if may_reuse and latest_items is not None:
        kept = untouched(plan, store, pulled, sources, cycle_start=cycle_start,
                           published_id=published_id, sites=sites, summaries=summaries,
                           items_before=items_before, latest_items=latest_items,
                           by_source=by_source)
    owners: dict[str, list[str]] | None = None
    if kept:
        owners = {}
        for owner, spec in plan.jira_measures():
            if owner not in kept:
                owners.setdefault(spec.source, []).append(owner)
    before, changes = prior_measure_states(store, pulled, owners)
    states = measure_states(plan, sources, cycle_start=cycle_start, before=before,
                            changes=changes, skip=kept, by_source=by_source)
    same = frozenset(owner for owner, state in states.items() if before.get(owner) is state)
    bases = _bases(plan, pulled, before, states, told.intersection(states))
    # The stored states replaced by new ones are garbage from here on, before evaluating.
    del before, by_source
    if isinstance(items_before, PreviousStates):
        # The owners measured now whose reasons need their published items read them:
        # in one read, and only theirs (counts and failures tell none).
        items_before.preload([owner for owner in states if owner not in bases])
    evaluated = evaluate_measures(plan, sources, cycle_start=cycle_start,
                                  previous=items_before, states=states, skip=kept,
                                  bases=bases)
    evaluations = {owner: evaluated[owner] if owner in evaluated else kept[owner][0]
                   for owner, _ in plan.jira_measures()}
    # A reused owner's items in the snapshot this pass stores are the latest's.
    renewed = set(states)
    if latest is published:
        renewed.update(told.intersection(kept))
    return Measurements(evaluations, states=states, same=same,
                        reused={owner: key for owner, (_, key) in kept.items()},
                        items_of={owner: marks[owner] for owner in (*same, *kept)
                                  if owner in marks},
                        renewed=frozenset(renewed))


def items_of(summaries: Mapping[str, Mapping[str, Any] | None]) -> dict[str, int]:
    """Per owner, the snapshot whose items for it equal its stored measure state, as
    the summaries record it: written in the transaction that stores the states, so it
    holds while they do (a state changed since is no longer recorded there)."""
    marks: dict[str, int] = {}
    for summary in summaries.values():
        recorded = summary.get(ITEMS_OF) if summary is not None else None
        if isinstance(recorded, dict):
            marks.update((owner, snapshot) for owner, snapshot in recorded.items()
                         if isinstance(snapshot, int))
    return marks


def _bases(plan: Plan, pulled: Mapping[str, PulledSource], before: Mapping[str, MeasureState],
           states: Mapping[str, MeasureState], owners: Collection[str]) -> dict[str, Basis]:
    """The :class:`Basis` of those ``owners`` whose state this pass was brought up to
    date from their stored one (``before``)."""
    sources_of = plan.measure_sources()
    touched = {name: frozenset({i.id for i in source.upserts} | set(source.deleted))
               for name, source in pulled.items()}
    bases: dict[str, Basis] = {}
    for owner in owners:
        if owner in before and owner in sources_of:
            basis = reason_basis(before[owner], states[owner], touched[sources_of[owner]])
            if basis is not None:
                bases[owner] = basis
    return bases


def untouched(
    plan: Plan,
    store: StoreReader,
    pulled: Mapping[str, PulledSource],
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    published_id: int | None,
    sites: Mapping[str, str | None],
    summaries: Mapping[str, Mapping[str, Any] | None],
    items_before: Mapping[str, Mapping[str, ItemState]],
    latest_items: Mapping[str, Any],
    by_source: Mapping[str, Mapping[str, Measured]] | None = None,
) -> dict[str, tuple[Evaluation, str | None]]:
    """Owners whose evaluation this pass's changes cannot alter -> (the evaluation in the
    stored summary, its measure key).

    An owner qualifies when its source's summary was told against the same published
    snapshot and site, its measure key, JQL and membership are those of the summary,
    the latest snapshot holds its items, and no changed or removed issue is one it
    selects now, selected before (its mirror row as the previous pass saw it), holds as
    a raw-JQL member, or held at the published snapshot (the reasons read their
    projects). Its items, value, warnings and reasons are then exactly the summary's;
    double counting is told within an objective, so an objective is reused whole or not.
    """
    if by_source is None:
        by_source = measured_by_source(plan, sources, cycle_start)
    keys = {owner: m.key for measures in by_source.values() for owner, m in measures.items()}
    candidates: dict[str, tuple[Evaluation, str | None]] = {}
    touched_in: dict[str, set[str]] = {}
    for name, source in pulled.items():
        summary = summaries.get(name)
        if (
            summary is None or summary.get("version") != SUMMARY_VERSION
            or source.source_error or summary.get("published") != published_id
            or summary.get("site") != sites.get(name)
        ):
            continue
        data = sources[name]
        touched = touched_in[name] = {i.id for i in source.upserts} | set(source.deleted)
        # The changed issues as the previous pass measured them (the mirror is written
        # at commit) and as they are now.
        items: list[WorkItem] = [issue_from_record(doc)
                                 for doc in store.issue_records(name, touched).values()]
        items += [source.issues[i.id] for i in source.upserts
                  if i.id not in source.deleted and i.id in source.issues]
        measures = by_source.get(name, {})
        index = MeasureIndex({o: m.matcher for o, m in measures.items()
                              if m.matcher is not None})
        hit: set[str] = set()
        for item in items:
            hit |= index.matching(item)
        for owner, spec in plan.jira_measures():
            if spec.source != name or owner in hit or owner in data.failures:
                continue
            entry = summary["evaluations"].get(owner)
            membership = source.memberships.get(owner)
            if (
                entry is None or entry["error"] is not None
                or entry["jql"] != data.jql.get(owner, "")
                or keys.get(owner) != summary["keys"].get(owner)
                or owner not in latest_items
            ):
                continue
            if spec.jql is not None:
                if membership is None:
                    continue
                expected = (membership if isinstance(membership, int)
                            else members_hash(membership))
                if summary["memberships"].get(owner) != expected or (
                        not isinstance(membership, int) and touched.intersection(membership)):
                    continue
            candidates[owner] = (evaluation_from_summary(owner, entry), keys.get(owner))
    _whole_objectives(plan, candidates)
    # Owners whose published items hold a changed issue (the reasons read them): asked
    # last, and only of the owners still in question (most of a large pass's owners
    # are out already, and each owner asked is thousands of ids read).
    sources_of = plan.measure_sources()
    for name, touched in touched_in.items():
        mine = [owner for owner in candidates if sources_of[owner] == name]
        for owner in _holding(items_before, touched, mine):
            candidates.pop(owner, None)
    _whole_objectives(plan, candidates)
    return candidates


def _whole_objectives(plan: Plan, candidates: dict[str, Any]) -> None:
    """Drop the ``candidates`` of objectives that are not candidates whole (double
    counting is told within an objective)."""
    jira_owners = {owner for owner, _ in plan.jira_measures()}
    for objective in plan.objectives:
        krs = [kr.id for kr in objective.key_results if kr.id in jira_owners]
        if any(kr not in candidates for kr in krs):
            for kr in krs:
                candidates.pop(kr, None)


def _holding(items_before: Mapping[str, Mapping[str, ItemState]],
             touched: Collection[str], owners: Collection[str]) -> set[str]:
    """Those of ``owners`` whose ``items_before`` hold one of ``touched`` (from the
    store's ids index when it can tell, without decoding the items)."""
    if not touched or not owners:
        return set()
    if isinstance(items_before, PreviousStates):
        return items_before.holding(touched, owners)
    return {owner for owner in owners
            if owner in items_before and not items_before[owner].keys().isdisjoint(touched)}


def _unchanged(
    plan: Plan,
    pulled: Mapping[str, PulledSource],
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    published_id: int | None,
    sites: Mapping[str, str | None],
    summaries: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Evaluation] | None:
    """The stored evaluations, when this pass would compute exactly them; else None."""
    owners_of: dict[str, set[str]] = {}
    for owner, spec in plan.jira_measures():
        owners_of.setdefault(spec.source, set()).add(owner)
    if set(owners_of) != set(pulled):
        return None
    for name, source in pulled.items():
        summary = summaries.get(name)
        if (
            summary is None
            or summary.get("version") != SUMMARY_VERSION
            or source.source_error or source.upserts or source.deleted or source.failures
            or summary.get("published") != published_id
            or summary.get("site") != sites.get(name)
            or set(summary["evaluations"]) != owners_of[name]
        ):
            return None
        jql = sources[name].jql
        for owner, entry in summary["evaluations"].items():
            if entry["error"] is not None or entry["jql"] != jql.get(owner, ""):
                return None
        for owner, membership in source.memberships.items():
            expected = (membership if isinstance(membership, int)
                        else members_hash(membership))
            if summary["memberships"].get(owner) != expected:
                return None
    keys = measure_keys(plan, sources, cycle_start=cycle_start)
    evaluations: dict[str, Evaluation] = {}
    for name in pulled:
        summary = summaries[name]
        assert summary is not None
        mine = {owner: key for owner, key in keys.items() if owner in owners_of[name]}
        if summary["keys"] != mine:
            return None
        evaluations.update(
            (owner, evaluation_from_summary(owner, entry))
            for owner, entry in summary["evaluations"].items()
        )
    return evaluations


def save_measurements(
    tx: StoreTransaction,
    plan: Plan,
    pulled: Mapping[str, PulledSource],
    measurements: Measurements,
    *,
    published_id: int | None,
    sites: Mapping[str, str | None],
    now: datetime,
    published_now: int | None = None,
    summaries: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> None:
    """Store the changed measure states and each source's summary.

    ``published_now`` is the id of the snapshot this pass publishes (None: it publishes
    none). The summary is then told against that snapshot, so that the next pass with
    nothing new can reuse it: the snapshot holds exactly these evaluations' items, and
    change reasons between a KR's items and themselves are none. Without it, evaluations
    taken from the stored summaries (``unchanged``) store nothing.
    """
    sources_of = plan.measure_sources()
    if measurements.unchanged:
        if published_now is not None:
            for name in pulled:
                stored = (summaries or {}).get(name)
                if stored is not None:
                    tx.update_measure_summary(name, {
                        **told_against_itself(stored, published_now),
                        ITEMS_OF: _marks(name, measurements, sources_of, published_now)})
        return
    for name, source in pulled.items():
        summary = _summary(name, source, measurements, sources_of, published_id,
                           sites.get(name))
        if summary is not None:
            if published_now is not None:
                summary = told_against_itself(summary, published_now)
            summary[ITEMS_OF] = _marks(name, measurements, sources_of, published_now)
        save_measure_states(tx, name, measurements.same, measurements.states, sources_of,
                            now, summary=summary, untouched=measurements.reused)


def _marks(name: str, measurements: Measurements, sources_of: Mapping[str, str],
           published_now: int | None) -> dict[str, int]:
    """What the summary of source ``name`` records after this pass (:func:`items_of`):
    the records of the states it leaves as they are, and, when it publishes a
    snapshot, that snapshot for every owner whose stored state equals its items."""
    marks = {owner: snapshot for owner, snapshot in measurements.items_of.items()
             if sources_of.get(owner) == name}
    if published_now is not None:
        marks.update((owner, published_now) for owner in measurements.renewed
                     if sources_of.get(owner) == name)
    return marks


def told_against_itself(summary: Mapping[str, Any], snapshot_id: int) -> dict[str, Any]:
    """``summary`` as the next pass would measure it against snapshot ``snapshot_id``,
    which holds the items of these very evaluations: every item as it was, so no
    reason (``change_reasons`` of a KR's items against themselves is empty)."""
    evaluations = {owner: {**entry, "reasons": []}
                   for owner, entry in summary["evaluations"].items()}
    return {**summary, "published": snapshot_id, "evaluations": evaluations}


def _summary(
    name: str,
    source: PulledSource,
    measurements: Measurements,
    sources_of: Mapping[str, str],
    published_id: int | None,
    site: str | None,
) -> dict[str, Any] | None:
    mine = {owner: e for owner, e in measurements.evaluations.items()
            if sources_of.get(owner) == name}
    if source.source_error or source.failures or any(not e.ok for e in mine.values()):
        return None  # the next pass measures: a failure is never taken as "unchanged"
    return {
        "version": SUMMARY_VERSION,
        "published": published_id,
        "site": site,
        "keys": {**{owner: state.key for owner, state in measurements.states.items()
                    if owner in mine},
                 **{owner: key for owner, key in measurements.reused.items()
                    if owner in mine and key is not None}},
        "memberships": {
            owner: membership if isinstance(membership, int) else members_hash(membership)
            for owner, membership in source.memberships.items()
        },
        "evaluations": {owner: evaluation_summary(e) for owner, e in mine.items()},
    }


def stored_explanations(
    store: StoreReader, snapshot_id: int, *,
    owners: Callable[[], list[str]] | None = None,
    stored: Callable[[], dict[str, tuple[str, tuple[str, ...]]]] | None = None,
) -> LazyExplanations:
    """Snapshot ``snapshot_id``'s explanations stored apart, read only as far as asked.
    ``owners`` and ``stored`` replace reading its owners and row references from the
    store (a running process keeps them: :mod:`okr_sync.sync.snapshot_heads`)."""

    def load() -> Mapping[str, Explanation]:
        return PassSnapshot.from_json(store.get_snapshot(snapshot_id).document).explanations

    def load_some(wanted: Collection[str]) -> dict[str, Explanation]:
        return {owner: Explanation.from_json(entry) for owner, entry
                in store.snapshot_explanations(snapshot_id, wanted).items()}

    def holders(ids: Collection[str], owners: Collection[str] | None) -> set[str] | None:
        return store.snapshot_owners_holding(snapshot_id, ids, owners)

    return LazyExplanations(
        load,
        owners=owners or (lambda: store.snapshot_explained_owners(snapshot_id)),
        load_some=load_some,
        stored=stored or (lambda: store.snapshot_item_refs(snapshot_id)),
        holders=holders)


def previous_snapshots(
    store: StoreReader, cycle: str
) -> tuple[int | None, PassSnapshot | None, PassSnapshot | None]:
    """The published snapshot's id, and the last published and the latest snapshots of
    ``cycle`` (None when none). Their explanations (every KR's items: most of a large
    document) are read from the store only when something asks for them."""

    def this_cycle(record: Snapshot | None) -> PassSnapshot | None:
        # A new cycle starts from scratch: last cycle's scores are no baseline for news.
        if record is None or record.cycle != cycle:
            return None
        snapshot = PassSnapshot.from_json(record.document)
        if "explain" in record.document:
            return snapshot
        return replace(snapshot, explanations=stored_explanations(store, record.id))

    published_record = store.snapshot_head(published_only=True)
    published = this_cycle(published_record)
    published_id = published_record.id if published is not None and published_record else None
    # Usually the latest snapshot is the published one: read it once.
    if published_record is not None and published_record.id == store.latest_snapshot_id():
        return published_id, published, published
    return published_id, published, this_cycle(store.snapshot_head(published_only=False))
