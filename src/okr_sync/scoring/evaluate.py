"""Apply every Jira measure of a plan to the mirrored issues and memberships.

Input is what a pass has pulled (per source: the issue mirror by id and the
raw-JQL memberships); output is, per KR or KPI, the measured value with the
items behind it, the reasons it changed since the last published pass, and
warnings. Everything here is deterministic and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter, truth
from typing import Any

from okr_sync.config.plan import Plan, uses_points
from okr_sync.scoring.explain import (
    FactStates,
    ItemState,
    change_reasons,
    double_counting,
    item_states,
    measurement_warnings,
)
from okr_sync.scoring.fact_columns import FactColumns
from okr_sync.scoring.incremental import (
    Changes,
    Measured,
    MeasureState,
    full_states,
    measure_key,
    needed_items,
    update_states,
)
from okr_sync.scoring.measures import (
    Contribution,
    ItemFact,
    SelectorMatcher,
    WorkItem,
    combine,
)
from okr_sync.scoring.rollup import MeasuredValue
from okr_sync.scoring.scorecard import ItemCounts


@dataclass(frozen=True)
class SourceData:
    """What one Jira source holds after this pass's pull."""

    issues: Mapping[str, WorkItem]
    #: Raw-JQL owners -> member ids (``ids`` mode) or a count (``count`` mode).
    memberships: Mapping[str, Sequence[str] | int] = field(default_factory=dict)
    #: Owners whose query failed this pass -> a message naming the problem.
    failures: Mapping[str, str] = field(default_factory=dict)
    resolve_key: Callable[[str], str | None] | None = None
    #: Owner -> the JQL that selects its items (shown by ``explain``, linked to Jira).
    jql: Mapping[str, str] = field(default_factory=dict)
    #: JQL -> a link to Jira's issue navigator, when the site's address is known.
    link: Callable[[str], str] | None = None
    #: Reads some mirrored items by id at once (absent ids are not mirrored); without
    #: it they are looked up in ``issues`` one by one.
    read: Callable[[Collection[str]], Mapping[str, WorkItem]] | None = None


@dataclass(frozen=True)
class Evaluation:
    """One KR's or KPI's measure after this pass."""

    owner: str
    jql: str
    measured: MeasuredValue | None
    contributions: Sequence[Contribution] = ()
    states: Mapping[str, ItemState] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    error: str | None = None
    #: For raw-JQL ``count`` measures: the count Jira reported (no items behind it).
    count: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def measured_by_source(plan: Plan, sources: Mapping[str, SourceData], cycle_start: datetime,
                       skip: Collection[str] = ()) -> dict[str, dict[str, Measured]]:
    """Per source, the measures that select items this pass (not failed, not counts),
    but those in ``skip``."""
    result: dict[str, dict[str, Measured]] = {}
    for owner, spec in plan.jira_measures():
        if owner in skip:
            continue
        data = sources[spec.source]
        source = plan.jira[spec.source]
        membership = data.memberships.get(owner)
        if owner in data.failures or (spec.jql is not None and isinstance(membership, int)):
            continue
        if spec.select is not None:
            matcher = SelectorMatcher(spec.select, source, data.resolve_key)
            key = measure_key(spec, source, cycle_start=cycle_start, epic_ids=matcher.epic_ids)
            measured = Measured(spec, source, key, matcher=matcher)
        else:
            members = tuple(membership) if isinstance(membership, Sequence) else ()
            key = measure_key(spec, source, cycle_start=cycle_start)
            measured = Measured(spec, source, key, members=members)
        result.setdefault(spec.source, {})[owner] = measured
    return result


def measure_states(
    plan: Plan,
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    before: Mapping[str, MeasureState] | None = None,
    changes: Mapping[str, Changes] | None = None,
    skip: Collection[str] = (),
    by_source: Mapping[str, Mapping[str, Measured]] | None = None,
) -> dict[str, MeasureState]:
    """Each item-selecting measure's state (its selected items' facts) this pass.

    Without ``before`` and ``changes`` every measure is measured in full over its
    source's ``issues``. With them, ``before`` must be the states computed on the
    mirror that ``changes[source]`` turns into this pass's: a measure whose stored
    state has its key is brought up to date from the changes alone, the rest (and
    every measure of a source without changes) in one pass over the mirror. Owners in
    ``skip`` are not measured (the caller has their evaluations). ``by_source``: this
    pass's :func:`measured_by_source` when the caller built it already (a measure key
    hashes the measure's spec: built once per pass, not once per use).
    """
    before = before or {}
    changes = changes or {}
    states: dict[str, MeasureState] = {}
    if by_source is None:
        by_source = measured_by_source(plan, sources, cycle_start, skip)
    for source_name, all_measures in by_source.items():
        measures = {owner: m for owner, m in all_measures.items() if owner not in skip}
        data = sources[source_name]
        source_changes = changes.get(source_name)
        kept = {
            owner: m for owner, m in measures.items()
            if source_changes is not None and owner in before and before[owner].key == m.key
        }
        fresh = {owner: m for owner, m in measures.items() if owner not in kept}
        if kept:
            assert source_changes is not None
            wanted = needed_items(kept, before, source_changes)
            read = data.read(wanted) if data.read is not None else {
                i: data.issues[i] for i in wanted if i in data.issues}
            states.update(update_states(kept, before, source_changes, read,
                                        cycle_start=cycle_start))
        if fresh:
            states.update(full_states(fresh, data.issues.values(), cycle_start=cycle_start))
    return states


@dataclass(frozen=True)
class Basis:
    """What one owner's reasons are told against when its published items are exactly
    those of its stored state (the one its state this pass was brought up to date
    from): the ids whose items may differ since (every other item is that state's,
    unchanged), and the states of those it held then. Reasons count items that differ:
    told over these ids, they are the reasons told over every item, without reading
    the published items."""

    ids: frozenset[str]
    before: Mapping[str, ItemState]


def reason_basis(before: MeasureState, after: MeasureState, touched: frozenset[str]
                 ) -> Basis | None:
    """The :class:`Basis` of ``after``, :func:`update_states`' result from ``before``
    given changes of the ``touched`` ids (None when ``after`` was not: another key).

    A selected measure's items differ only in touched ids; a raw-JQL one's also in the
    members that joined or left. (Set operations: a pass tells the bases of hundreds of
    measures from the same few hundred touched ids.)"""
    if before.key != after.key:
        return None
    ids = touched
    if before.members != after.members:
        ids = ids.union(set(before.members or ()).symmetric_difference(after.members or ()))
    facts = before.facts
    held = sorted(facts.keys() & ids)
    if isinstance(facts, FactColumns):
        return Basis(ids, {i: facts.item_state(i) for i in held})
    return Basis(ids, item_states([facts[i].contribution for i in held]))


def evaluate_measures(
    plan: Plan,
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    previous: Mapping[str, Mapping[str, ItemState]] | None = None,
    states: Mapping[str, MeasureState] | None = None,
    skip: Collection[str] = (),
    bases: Mapping[str, Basis] | None = None,
) -> dict[str, Evaluation]:
    """Measure every Jira-measured KR and KPI of ``plan``.

    ``previous`` holds each owner's item states at the last published pass, so
    the reasons for a change can be told (``+2 done``, ``1 moved out``...); an owner in
    ``bases`` has its reasons told from its :class:`Basis` instead (``previous`` is not
    read for it).
    ``states`` are this pass's :func:`measure_states` (computed in full when absent).
    Owners in ``skip`` are left out (whole objectives: double counting is told within one).
    """
    bases = bases or {}
    # Not ``previous or {}``: telling whether a lazily read mapping is empty reads it all.
    previous = {} if previous is None else previous
    if states is None:
        states = measure_states(plan, sources, cycle_start=cycle_start)
    results: dict[str, Evaluation] = {}
    for owner, spec in plan.jira_measures():
        if owner in skip:
            continue
        data = sources[spec.source]
        jql = data.jql.get(owner, "")
        links = (data.link(jql),) if data.link is not None and jql else ()
        if owner in data.failures:
            results[owner] = Evaluation(owner, jql, None, error=data.failures[owner])
            continue
        membership = data.memberships.get(owner)
        if spec.jql is not None and isinstance(membership, int):
            results[owner] = Evaluation(
                owner,
                jql,
                MeasuredValue(float(membership), ItemCounts(membership, 0), links),
                count=membership,
            )
            continue
        state = states[owner]
        facts = state.facts
        if isinstance(facts, FactColumns):
            # Read back from the store: combined from its columns, no tuple per item.
            outcome = facts.combine(spec)
            at_start = facts.at_start()
        else:
            outcome = combine(spec, facts.values(), presorted=True)
            at_start = sum(map(truth, map(_AT_START, facts.values())))
        # A count KR's scope is what it counts (open bugs...): its growth is the value
        # moving, not a warning.
        warnings = measurement_warnings(
            outcome, uses_points=uses_points(spec),
            frozen_at_start=None if spec.kind == "count" else at_start,
        )
        unread = 0 if state.members is None else len(state.members) - len(state.facts)
        if spec.jql is not None and unread:
            warnings.append(f"{unread} issues of the JQL could not be read from Jira")
        basis = bases.get(owner)
        before = basis.before if basis is not None else previous.get(owner)
        after: Mapping[str, ItemState] = (
            item_states(outcome.contributions) if basis is None and before is not None
            else FactStates(facts, facts.item_state if isinstance(facts, FactColumns) else None))
        # The items as they are now, of those that may differ from ``before``.
        now = after if basis is None else {i: after[i] for i in after.keys() & basis.ids}
        reasons: tuple[str, ...] = ()
        if before is not None:
            reasons = change_reasons(
                before, now, _projects_now(data, [i for i in before if i not in now]),
                track_points=uses_points(spec),
            )
        results[owner] = Evaluation(
            owner=owner,
            jql=jql,
            measured=MeasuredValue(
                outcome.value,
                ItemCounts(outcome.selected, outcome.done, outcome.points_done,
                           outcome.points_total),
                links, tuple(warnings),
            ),
            contributions=outcome.contributions,
            states=after,
            reasons=reasons,
        )
    _warn_double_counting(plan, results)
    return results


_AT_START = itemgetter(ItemFact._fields.index("at_start"))


def _projects_now(data: SourceData, ids: Sequence[str]) -> dict[str, str]:
    """The current project of those ``ids`` that are still mirrored (for "moved out")."""
    if not ids:
        return {}
    if data.read is not None:
        return {i: item.project for i, item in data.read(ids).items()}
    return {i: data.issues[i].project for i in ids if i in data.issues}


def _warn_double_counting(plan: Plan, results: dict[str, Evaluation]) -> None:
    for objective in plan.objectives:
        krs = [
            (kr.id, results[kr.id].states.keys())
            for kr in objective.key_results
            if kr.id in results and results[kr.id].measured is not None
        ]
        for kr_id, messages in double_counting(krs).items():
            evaluation = results[kr_id]
            measured = evaluation.measured
            assert measured is not None
            results[kr_id] = replace(
                evaluation,
                measured=replace(measured, warnings=(*measured.warnings, *messages)),
            )


def measure_keys(plan: Plan, sources: Mapping[str, SourceData], *, cycle_start: datetime
                 ) -> dict[str, str]:
    """Owner -> :func:`~okr_sync.scoring.incremental.measure_key` of every item-selecting
    measure this pass (not failed, not counts)."""
    return {
        owner: measured.key
        for by_owner in measured_by_source(plan, sources, cycle_start).values()
        for owner, measured in by_owner.items()
    }


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    """An evaluation without its items: what a pass with nothing new needs of it."""
    measured = evaluation.measured
    return {
        "jql": evaluation.jql,
        "error": evaluation.error,
        "count": evaluation.count,
        "reasons": list(evaluation.reasons),
        "measured": None if measured is None else {
            "value": measured.value,
            "items": None if measured.items is None else [
                measured.items.selected, measured.items.done,
                measured.items.points_done, measured.items.points_total,
            ],
            "links": list(measured.links),
            "warnings": list(measured.warnings),
        },
    }


def _item_counts(items: Sequence[Any]) -> ItemCounts:
    # Summaries stored before points were kept hold [selected, done] only.
    points = [None if p is None else float(p) for p in items[2:4]]
    done_points, total_points = [*points, None, None][:2]
    return ItemCounts(int(items[0]), int(items[1]), done_points, total_points)


def evaluation_from_summary(owner: str, doc: Mapping[str, Any]) -> Evaluation:
    """The evaluation :func:`evaluation_summary` describes, without items (``contributions``
    and ``states`` empty): the items are those of the pass that stored it."""
    measured = doc["measured"]
    value = None
    if measured is not None:
        items = measured["items"]
        value = MeasuredValue(
            float(measured["value"]),
            None if items is None else _item_counts(items),
            tuple(str(link) for link in measured["links"]),
            tuple(str(w) for w in measured["warnings"]),
        )
    count = doc["count"]
    return Evaluation(
        owner=owner,
        jql=str(doc["jql"]),
        measured=value,
        reasons=tuple(str(r) for r in doc["reasons"]),
        error=None if doc["error"] is None else str(doc["error"]),
        count=None if count is None else int(count),
    )
