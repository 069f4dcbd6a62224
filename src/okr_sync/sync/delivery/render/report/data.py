"""What the report shows, gathered in one place: :class:`ReportData`.

``okr-sync report`` and ``serve``'s ``GET /report`` both call :func:`load_report_data`
and hand the result to the pure renderers (HTML, JSON, CSV), so the file and the
page can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol

from okr_sync.config.plan import STORY_POINTS, DoneRatioMeasure, Plan, SumMeasure
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.state import Explanation, PassSnapshot
from okr_sync.sync.store.records import Checkin, HistoryRecord, Snapshot


@dataclass(frozen=True)
class HistoryPoint:
    """One stored score of a KR (a point of its burn-up chart)."""

    as_of: datetime
    value: float | None
    score: float | None


@dataclass(frozen=True)
class CheckinNote:
    at: datetime
    value: float | None = None
    confidence: str | None = None
    note: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class KrInfo:
    """What the plan says about a KR beyond its score: who owns it and its unit."""

    owner: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class KpiInfo:
    unit: str | None = None
    direction: str = "increase"
    green: float | None = None
    yellow: float | None = None


@dataclass(frozen=True)
class ReportData:
    scorecard: Scorecard
    #: When the pass behind the scorecard measured (the snapshot's creation time).
    scored_at: datetime | None = None
    explanations: Mapping[str, Explanation] = field(default_factory=dict)
    history: Mapping[str, Sequence[HistoryPoint]] = field(default_factory=dict)
    checkins: Mapping[str, Sequence[CheckinNote]] = field(default_factory=dict)
    krs: Mapping[str, KrInfo] = field(default_factory=dict)
    kpis: Mapping[str, KpiInfo] = field(default_factory=dict)
    objective_owners: Mapping[str, str] = field(default_factory=dict)
    #: Band names from lowest to highest (their colours go red -> green).
    bands: Sequence[str] = ("missed", "progress", "strong")
    #: Jira base URLs: the only sites the report links to.
    jira_sites: Sequence[str] = ()
    #: The site of the Jira source each measured KR reads (KR id -> site); a KR not
    #: here links its issues to the first of ``jira_sites`` (``main``'s).
    kr_sites: Mapping[str, str] = field(default_factory=dict)


class ReportStore(Protocol):
    """The store reads the report makes."""

    def latest_snapshot(self) -> Snapshot | None: ...

    def history_for_cycle(self, cycle: str, zone: tzinfo | None = None
                          ) -> dict[str, list[HistoryRecord]]: ...

    def checkins(self, kr_id: str, *, limit: int | None = None) -> list[Checkin]: ...


class NoScorecardError(LookupError):
    """The store holds no scorecard yet (no pass has run)."""


#: Check-in notes shown per KR (the newest).
CHECKINS_SHOWN = 5


def kr_unit(plan: Plan, kr_id: str) -> str | None:
    """The unit a KR's value is counted in, for "65 of 144 points"."""
    measure = plan.key_result(kr_id).measure
    if isinstance(measure, DoneRatioMeasure):
        return "points" if measure.unit == STORY_POINTS else "issues"
    if isinstance(measure, SumMeasure):
        return "points" if measure.field == STORY_POINTS else measure.field
    if measure.kind == "count":
        return "issues"
    return None


def plan_facts(plan: Plan) -> tuple[dict[str, KrInfo], dict[str, KpiInfo], dict[str, str]]:
    krs = {kr.id: KrInfo(plan.owner_name(kr.owner or objective.owner), kr_unit(plan, kr.id))
           for objective, kr in plan.key_results()}
    kpis = {k.id: KpiInfo(k.unit, k.direction, k.thresholds.green, k.thresholds.yellow)
            for k in plan.kpis}
    owners = {o.id: name for o in plan.objectives if (name := plan.owner_name(o.owner))}
    return krs, kpis, owners


def load_report_data(
    store: ReportStore, plan: Plan | None, *, jira_sites: Sequence[str] = (),
    source_sites: Mapping[str, str] | None = None,
) -> ReportData:
    """The latest snapshot with its cycle's history and the KRs' check-ins.
    ``source_sites``: each Jira source's site by lower-case name (its KRs' issue links).

    Raises :class:`NoScorecardError` before the first pass and
    :class:`~okr_sync.sync.state.SnapshotError` when the stored snapshot cannot be read.
    """
    stored = store.latest_snapshot()
    if stored is None:
        raise NoScorecardError("no scorecard yet: run `okr-sync run` first")
    snapshot = PassSnapshot.from_json(stored.document)
    scorecard = snapshot.scorecard
    # The cycle's zone dates the backfilled rows (a plan of another cycle may differ).
    zone = plan.cycle.zone if plan is not None and plan.cycle.name == scorecard.cycle.name \
        else None
    history = {
        kr_id: tuple(HistoryPoint(r.as_of, r.value, r.score) for r in records)
        for kr_id, records in store.history_for_cycle(
            scorecard.cycle.name, zone).items()
    }
    checkins = {}
    for kr in scorecard.key_results():
        notes = [CheckinNote(c.at, c.value, c.confidence, c.note, c.author)
                 for c in store.checkins(kr.id, limit=CHECKINS_SHOWN)]
        if notes:
            checkins[kr.id] = tuple(notes)
    krs: dict[str, KrInfo] = {}
    kpis: dict[str, KpiInfo] = {}
    owners: dict[str, str] = {}
    bands: Sequence[str] = ReportData.bands
    kr_sites: dict[str, str] = {}
    if plan is not None:
        sites_by_source = source_sites or {}
        kr_sites = {owner: site for owner, measure in plan.jira_measures()
                    if (site := sites_by_source.get(measure.source.lower()))}
        krs, kpis, owners = plan_facts(plan)
        bands = tuple(b.name for b in plan.scoring.bands)
    return ReportData(
        scorecard=scorecard,
        scored_at=stored.created_at,
        explanations=snapshot.explanations,
        history=history,
        checkins=checkins,
        krs=krs,
        kpis=kpis,
        objective_owners=owners,
        bands=bands,
        jira_sites=tuple(site for site in jira_sites if site),
        kr_sites=kr_sites,
    )
