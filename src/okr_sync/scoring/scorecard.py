"""The scorecard: the result of one scoring pass, shaped like the JSON of DESIGN.md A5.

These are plain frozen records with no behaviour beyond conversion to the JSON
document, so renderers (Slack, Teams, HTML), the state store and the CLI can
all share one shape. Scores and values are kept unrounded here; rounding to 4
decimals happens only in :meth:`Scorecard.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.kpi_trend import KpiTrend

Confidence = Literal["blocked", "off_track", "at_risk", "on_track"]
KpiStatus = Literal["green", "yellow", "red"]

#: Confidence values from worst to best; an objective takes the worst of its contributors.
CONFIDENCE_ORDER: tuple[Confidence, ...] = ("blocked", "off_track", "at_risk", "on_track")

REPORT_DECIMALS = 4

#: Version of the stored scorecard codec (:func:`scorecard_to_json`). A document
#: without a version is the plain A5 document, which version 1 is a superset of.
#: KRs' ``measured_at`` and ``stale`` were added within version 1 (tests pin it): a
#: document without them reads as measured at its ``as_of``, not stale.
SCORECARD_VERSION = 1


class ScorecardFormatError(ValueError):
    """A stored scorecard document does not have the scorecard shape."""


class UnknownScorecardVersionError(ScorecardFormatError):
    """A scorecard document written by a newer okr-sync (its version is unknown here)."""

    def __init__(self, version: object) -> None:
        super().__init__(f"scorecard document version {version!r} is newer than this "
                         f"okr-sync reads (up to {SCORECARD_VERSION})")
        self.version = version


def rounded(value: float | None) -> float | int | None:
    """Round a reported number to 4 decimals, keeping integers integral in JSON."""
    if value is None:
        return None
    result = round(float(value), REPORT_DECIMALS)
    if result == int(result) and abs(result) < 2**53:
        return int(result) if float(value).is_integer() else result
    return result


@dataclass(frozen=True)
class ItemCounts:
    """How many work items a KR's measure selected and how many of them are done."""

    selected: int
    done: int
    #: Story points done and in scope, for ``done_ratio`` KRs counted in points
    #: (the frozen scope's, when ``scope: frozen``); None otherwise.
    points_done: float | None = None
    points_total: float | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"selected": self.selected, "done": self.done}
        if self.points_done is not None and self.points_total is not None:
            doc["points"] = {"done": rounded(self.points_done),
                             "total": rounded(self.points_total)}
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ItemCounts:
        points = doc.get("points")
        return cls(
            int(doc["selected"]), int(doc["done"]),
            None if not points else float(points["done"]),
            None if not points else float(points["total"]),
        )


@dataclass(frozen=True)
class TargetRange:
    """The target of a ``direction: range`` KR: stay between ``min`` and ``max``."""

    min: float
    max: float

    def to_json(self) -> dict[str, float | int | None]:
        return {"min": rounded(self.min), "max": rounded(self.max)}


@dataclass(frozen=True)
class KeyResultScore:
    id: str
    title: str
    #: None (with score, band and confidence) when never measured: unmeasured is not zero.
    value: float | None
    baseline: float | None
    target: float | TargetRange
    score: float | None
    band: str | None
    confidence: Confidence | None
    weight: float = 1.0
    direction: str | None = None
    items: ItemCounts | None = None
    too_easy: bool = False
    links: tuple[str, ...] = ()
    measure_kind: str = "manual"
    #: When the value was measured (for a stale KR: its last good measurement).
    measured_at: datetime | None = None
    #: The value is not this pass's: its measure failed, or it is older than
    #: ``notify.stale_after``.
    stale: bool = False
    #: Range KRs: how far outside the range the score falls to 0 (None: 0 outside).
    tolerance: float | None = None
    #: The highest score the KR can show (over-achievement above 1).
    score_cap: float = 1.0
    #: Phased targets: (date, target) per milestone, and the value expected by ``as_of``.
    milestones: tuple[tuple[date, float], ...] = ()
    expected: float | None = None
    #: Who answers for the KR as people read it (the plan's ``people`` name, or the
    #: ``owner`` text; a KR without one inherits its objective's).
    owner: str | None = None
    #: ``story_points`` when the value counts story points (``done_ratio`` by points,
    #: a ``sum`` of story points); None for issues, other fields and manual values.
    unit: str | None = None
    #: The latest check-in note of the cycle, when and by whom (as people read the name).
    checkin_note: str | None = None
    checkin_note_at: datetime | None = None
    checkin_note_by: str | None = None
    #: ``scoring.confidence: forecast``: the forecast, or (None and) why there is none.
    forecast: Forecast | None = None
    forecast_note: str | None = None

    @property
    def measured(self) -> bool:
        return self.score is not None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "value": rounded(self.value),
            "baseline": rounded(self.baseline),
            "target": (self.target.to_json() if isinstance(self.target, TargetRange)
                       else rounded(self.target)),
            "score": rounded(self.score),
            "band": self.band,
            "confidence": self.confidence,
            "weight": rounded(self.weight),
            "measure": self.measure_kind,
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
            "stale": self.stale,
        }
        if self.links:
            doc["links"] = list(self.links)
        if self.direction is not None:
            doc["direction"] = self.direction
        if self.items is not None:
            doc["items"] = self.items.to_json()
        if self.too_easy:
            doc["too_easy"] = True
        if self.tolerance is not None:
            doc["tolerance"] = rounded(self.tolerance)
        if self.score_cap != 1.0:
            doc["score_cap"] = rounded(self.score_cap)
        if self.milestones:
            doc["milestones"] = [{"date": when.isoformat(), "target": rounded(target)}
                                 for when, target in self.milestones]
            doc["expected"] = rounded(self.expected)
        if self.owner is not None:
            doc["owner"] = self.owner
        if self.unit is not None:
            doc["unit"] = self.unit
        if self.checkin_note is not None:
            at = self.checkin_note_at.isoformat() if self.checkin_note_at else None
            doc["checkin_note"] = {"text": self.checkin_note, "at": at, "by": self.checkin_note_by}
        if self.forecast is not None or self.forecast_note is not None:
            doc["forecast"] = self.forecast.to_json() if self.forecast else None
            doc["forecast_note"] = self.forecast_note
        return doc


@dataclass(frozen=True)
class ObjectiveScore:
    id: str
    title: str
    perspective: str | None
    parent: str | None
    #: None when none of its contributors is measured.
    score: float | None
    band: str | None
    confidence: Confidence | None
    weight: float = 1.0
    key_results: tuple[KeyResultScore, ...] = ()
    #: Guardrail KPIs that are red (they cap the confidence).
    red_guardrails: tuple[str, ...] = ()
    owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "perspective": self.perspective,
            "parent": self.parent,
            "weight": rounded(self.weight),
            "score": rounded(self.score),
            "band": self.band,
            "confidence": self.confidence,
        }
        if self.red_guardrails:
            doc["red_guardrails"] = list(self.red_guardrails)
        if self.owner is not None:
            doc["owner"] = self.owner
        doc["key_results"] = [kr.to_json() for kr in self.key_results]
        return doc


@dataclass(frozen=True)
class PerspectiveScore:
    id: str
    title: str
    score: float | None
    band: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": rounded(self.score), "band": self.band}


@dataclass(frozen=True)
class KpiScore:
    id: str
    title: str
    perspective: str | None
    value: float | None
    status: KpiStatus | None
    #: Against its previous measurement and a week earlier (None: no earlier one).
    trend: KpiTrend | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "title": self.title,
                               "perspective": self.perspective,
                               "value": rounded(self.value), "status": self.status}
        if self.trend is not None:
            doc["trend"] = self.trend.to_json()
        return doc


@dataclass(frozen=True)
class Change:
    """A KR whose score moved by at least ``notify.min_delta`` or changed band or confidence."""

    kr: str
    from_score: float | None
    to_score: float
    reasons: tuple[str, ...] = ()
    from_band: str | None = None
    to_band: str | None = None
    from_confidence: str | None = None
    to_confidence: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kr": self.kr,
            "from": rounded(self.from_score),
            "to": rounded(self.to_score),
            "reasons": list(self.reasons),
        }
        for key, value in (("from_band", self.from_band), ("to_band", self.to_band),
                           ("from_confidence", self.from_confidence),
                           ("to_confidence", self.to_confidence)):
            if value is not None:
                doc[key] = value
        return doc


@dataclass(frozen=True)
class ScoringWarning:
    message: str
    kr: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.kr is not None:
            doc["kr"] = self.kr
        doc["message"] = self.message
        return doc


@dataclass(frozen=True)
class Delivery:
    route: str
    target: str
    action: str
    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"route": self.route, "target": self.target,
                               "action": self.action, "status": self.status}
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc


@dataclass(frozen=True)
class CycleInfo:
    name: str
    start: date
    end: date
    as_of: datetime
    elapsed: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "elapsed": rounded(self.elapsed),
        }


@dataclass(frozen=True)
class Scorecard:
    cycle: CycleInfo
    objectives: tuple[ObjectiveScore, ...]
    perspectives: tuple[PerspectiveScore, ...] = ()
    kpis: tuple[KpiScore, ...] = ()
    changes: tuple[Change, ...] = ()
    warnings: tuple[ScoringWarning, ...] = ()
    deliveries: tuple[Delivery, ...] = field(default=())

    def key_results(self) -> list[KeyResultScore]:
        return [kr for objective in self.objectives for kr in objective.key_results]

    def objective(self, objective_id: str) -> ObjectiveScore:
        for objective in self.objectives:
            if objective.id == objective_id:
                return objective
        raise KeyError(objective_id)

    def key_result(self, kr_id: str) -> KeyResultScore:
        for kr in self.key_results():
            if kr.id == kr_id:
                return kr
        raise KeyError(kr_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle.to_json(),
            "objectives": [o.to_json() for o in self.objectives],
            "perspectives": [p.to_json() for p in self.perspectives],
            "kpis": [k.to_json() for k in self.kpis],
            "changes": [c.to_json() for c in self.changes],
            "warnings": [w.to_json() for w in self.warnings],
            "deliveries": [d.to_json() for d in self.deliveries],
        }


def scorecard_to_json(scorecard: Scorecard) -> dict[str, Any]:
    """The stored form of a scorecard: the A5 document with the codec's version."""
    return {"version": SCORECARD_VERSION, **scorecard.to_json()}


def scorecard_from_json(
    doc: Mapping[str, Any], *, measure_kinds: Mapping[str, str] | None = None
) -> Scorecard:
    """A scorecard back from its stored document (:func:`scorecard_to_json`, or A5 JSON).

    ``measure_kinds`` gives the measure kind of KRs stored before documents carried
    it (default ``manual``). A malformed document raises :class:`ScorecardFormatError`,
    one from a newer codec :class:`UnknownScorecardVersionError`.
    """
    version = doc.get("version", SCORECARD_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ScorecardFormatError(f"scorecard document version is not a number: {version!r}")
    if version > SCORECARD_VERSION:
        raise UnknownScorecardVersionError(version)
    try:
        return _scorecard_from_json(doc, measure_kinds or {})
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ScorecardFormatError(
            f"not a scorecard document ({type(error).__name__})"
        ) from None


def _optional_float(value: object) -> float | None:
    """A stored number, or None (never measured); anything else is a malformed document."""
    if value is None:
        return None
    if not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {type(value).__name__}")
    return float(value)


def _target(value: object) -> float | TargetRange:
    """A stored target: a number, or ``{min, max}`` for a range KR."""
    if isinstance(value, Mapping):
        return TargetRange(float(value["min"]), float(value["max"]))
    if not isinstance(value, int | float | str):
        raise TypeError(f"not a target: {type(value).__name__}")
    return float(value)


def _scorecard_from_json(doc: Mapping[str, Any], measure_kinds: Mapping[str, str]) -> Scorecard:
    cycle = doc["cycle"]
    as_of = datetime.fromisoformat(cycle["as_of"])

    def kr(d: dict[str, Any]) -> KeyResultScore:
        items = d.get("items")
        # Documents written before KRs carried their freshness were all measured by
        # the pass that wrote them.
        measured_at = d["measured_at"] if "measured_at" in d else cycle["as_of"]
        note = d.get("checkin_note")
        return KeyResultScore(
            id=d["id"],
            title=d["title"],
            value=_optional_float(d["value"]),
            baseline=None if d.get("baseline") is None else float(d["baseline"]),
            target=_target(d["target"]),
            score=_optional_float(d["score"]),
            tolerance=_optional_float(d.get("tolerance")),
            score_cap=float(d.get("score_cap", 1)),
            milestones=tuple((date.fromisoformat(m["date"]), float(m["target"]))
                             for m in d.get("milestones", ())),
            expected=_optional_float(d.get("expected")),
            band=d["band"],
            confidence=d["confidence"],
            measured_at=None if measured_at is None else datetime.fromisoformat(measured_at),
            stale=bool(d.get("stale", False)),
            weight=float(d.get("weight", 1)),
            direction=d.get("direction"),
            items=ItemCounts.from_json(items) if items else None,
            too_easy=bool(d.get("too_easy", False)),
            links=tuple(d.get("links", ())),
            measure_kind=str(d.get("measure") or measure_kinds.get(d["id"], "manual")),
            owner=d.get("owner"),
            unit=d.get("unit"),
            checkin_note=note.get("text") if note else None,
            checkin_note_at=(datetime.fromisoformat(note["at"])
                             if note and note.get("at") else None),
            checkin_note_by=note.get("by") if note else None,
            forecast=Forecast.from_json(d["forecast"]) if d.get("forecast") else None,
            forecast_note=d.get("forecast_note"),
        )

    return Scorecard(
        cycle=CycleInfo(
            name=cycle["name"],
            start=date.fromisoformat(cycle["start"]),
            end=date.fromisoformat(cycle["end"]),
            as_of=as_of,
            elapsed=float(cycle["elapsed"]),
        ),
        objectives=tuple(
            ObjectiveScore(
                id=o["id"],
                title=o["title"],
                perspective=o.get("perspective"),
                parent=o.get("parent"),
                score=_optional_float(o["score"]),
                band=o["band"],
                confidence=o["confidence"],
                weight=float(o.get("weight", 1)),
                key_results=tuple(kr(k) for k in o.get("key_results", [])),
                red_guardrails=tuple(o.get("red_guardrails", ())),
                owner=o.get("owner"),
            )
            for o in doc.get("objectives", [])
        ),
        perspectives=tuple(
            PerspectiveScore(p["id"], p["title"], p.get("score"), p.get("band"))
            for p in doc.get("perspectives", [])
        ),
        kpis=tuple(
            KpiScore(k["id"], k.get("title", k["id"]), k.get("perspective"), k.get("value"),
                     k.get("status"), KpiTrend.from_json(k["trend"]) if k.get("trend") else None)
            for k in doc.get("kpis", [])
        ),
        changes=tuple(
            Change(c["kr"], c.get("from"), float(c["to"]), tuple(c.get("reasons", ())),
                   c.get("from_band"), c.get("to_band"), c.get("from_confidence"),
                   c.get("to_confidence"))
            for c in doc.get("changes", [])
        ),
        warnings=tuple(
            ScoringWarning(w["message"], w.get("kr")) for w in doc.get("warnings", [])
        ),
        deliveries=tuple(
            Delivery(d["route"], d["target"], d["action"], d["status"], d.get("reason"))
            for d in doc.get("deliveries", [])
        ),
    )
