"""Apply every Jira measure of a plan to the mirrored issues and memberships.

Input is what a pass has pulled (per source: the issue mirror by id and the
raw-JQL memberships); output is, per KR or KPI, the measured value with the
items behind it, the reasons it changed since the last published pass, and
warnings. Everything here is deterministic and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from okr_sync.config.plan import Plan, uses_points
from okr_sync.scoring.explain import (
    ItemState,
    change_reasons,
    double_counting,
    item_states,
    measurement_warnings,
)
from okr_sync.scoring.measures import (
    Contribution,
    SelectorMatcher,
    WorkItem,
    measure,
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


@dataclass(frozen=True)
class Evaluation:
    """One KR's or KPI's measure after this pass."""

    owner: str
    jql: str
    measured: MeasuredValue | None
    contributions: tuple[Contribution, ...] = ()
    states: Mapping[str, ItemState] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    error: str | None = None
    #: For raw-JQL ``count`` measures: the count Jira reported (no items behind it).
    count: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def evaluate_measures(
    plan: Plan,
    sources: Mapping[str, SourceData],
    *,
    cycle_start: datetime,
    previous: Mapping[str, Mapping[str, ItemState]] | None = None,
) -> dict[str, Evaluation]:
    """Measure every Jira-measured KR and KPI of ``plan``.

    ``previous`` holds each owner's item states at the last published pass, so
    the reasons for a change can be told (``+2 done``, ``1 moved out``...).
    """
    previous = previous or {}
    results: dict[str, Evaluation] = {}
    for owner, spec in plan.jira_measures():
        data = sources[spec.source]
        source = plan.jira[spec.source]
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
        unread = 0
        if spec.select is not None:
            matcher = SelectorMatcher(spec.select, source, data.resolve_key)
            items = [item for item in data.issues.values() if matcher(item)]
        else:
            member_ids = membership if isinstance(membership, Sequence) else ()
            items = [data.issues[i] for i in member_ids if i in data.issues]
            unread = len(member_ids) - len(items)
        outcome = measure(spec, items, source, cycle_start=cycle_start)
        at_start = sum(1 for item in items if item.created < cycle_start)
        # A count KR's scope is what it counts (open bugs...): its growth is the value
        # moving, not a warning.
        warnings = measurement_warnings(
            outcome, uses_points=uses_points(spec),
            frozen_at_start=None if spec.kind == "count" else at_start,
        )
        if spec.jql is not None and unread:
            warnings.append(f"{unread} issues of the JQL could not be read from Jira")
        states = item_states(outcome.contributions)
        before = previous.get(owner)
        reasons: tuple[str, ...] = ()
        if before is not None:
            projects_now = {i: item.project for i, item in data.issues.items() if i in before}
            reasons = change_reasons(
                before, states, projects_now, track_points=uses_points(spec)
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
            states=states,
            reasons=reasons,
        )
    _warn_double_counting(plan, results)
    return results


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
