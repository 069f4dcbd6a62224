"""A :class:`Scorecard` back from a stored snapshot document (the A5 JSON).

The service's digest and check-in reminder are built from the last published
snapshot, whichever replica computed it. The document omits what only
rendering of the standing message needs (links); the measure kind of each KR,
which the reminder needs to find manual KRs, comes from the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, cast

from okr_sync.config.plan import Plan
from okr_sync.scoring.scorecard import (
    Change,
    Confidence,
    CycleInfo,
    ItemCounts,
    KeyResultScore,
    KpiScore,
    KpiStatus,
    ObjectiveScore,
    PerspectiveScore,
    Scorecard,
    ScoringWarning,
)


class SnapshotFormatError(ValueError):
    """A stored snapshot document does not have the scorecard shape."""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _key_result(doc: Mapping[str, Any], kinds: Mapping[str, str]) -> KeyResultScore:
    items = doc.get("items")
    return KeyResultScore(
        id=str(doc["id"]),
        title=str(doc["title"]),
        value=float(doc["value"]),
        baseline=_float(doc.get("baseline")),
        target=float(doc["target"]),
        score=float(doc["score"]),
        band=str(doc["band"]),
        confidence=cast(Confidence, doc["confidence"]),
        weight=float(doc.get("weight", 1.0)),
        direction=doc.get("direction"),
        items=ItemCounts(int(items["selected"]), int(items["done"])) if items else None,
        too_easy=bool(doc.get("too_easy", False)),
        measure_kind=kinds.get(str(doc["id"]), "manual"),
    )


def _objective(doc: Mapping[str, Any], kinds: Mapping[str, str]) -> ObjectiveScore:
    return ObjectiveScore(
        id=str(doc["id"]),
        title=str(doc["title"]),
        perspective=doc.get("perspective"),
        parent=doc.get("parent"),
        score=float(doc["score"]),
        band=str(doc["band"]),
        confidence=cast(Confidence, doc["confidence"]),
        weight=float(doc.get("weight", 1.0)),
        key_results=tuple(_key_result(kr, kinds) for kr in doc.get("key_results", [])),
    )


def scorecard_from_document(document: Mapping[str, Any], plan: Plan) -> Scorecard:
    """Rebuild the scorecard a pass stored; raises :class:`SnapshotFormatError`."""
    kinds = {kr.id: kr.measure.kind for _, kr in plan.key_results()}
    try:
        cycle = document["cycle"]
        return Scorecard(
            cycle=CycleInfo(
                name=str(cycle["name"]),
                start=date.fromisoformat(cycle["start"]),
                end=date.fromisoformat(cycle["end"]),
                as_of=datetime.fromisoformat(cycle["as_of"]),
                elapsed=float(cycle["elapsed"]),
            ),
            objectives=tuple(_objective(o, kinds) for o in document.get("objectives", [])),
            perspectives=tuple(
                PerspectiveScore(str(p["id"]), str(p["title"]), _float(p.get("score")),
                                 p.get("band"))
                for p in document.get("perspectives", [])
            ),
            kpis=tuple(
                KpiScore(str(k["id"]), str(k.get("title") or k["id"]), k.get("perspective"),
                         _float(k.get("value")), cast(KpiStatus | None, k.get("status")))
                for k in document.get("kpis", [])
            ),
            changes=tuple(
                Change(str(c["kr"]), _float(c.get("from")), float(c["to"]),
                       tuple(str(r) for r in c.get("reasons", [])))
                for c in document.get("changes", [])
            ),
            warnings=tuple(
                ScoringWarning(str(w["message"]), w.get("kr"))
                for w in document.get("warnings", [])
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotFormatError(
            f"stored snapshot is not a scorecard document ({type(error).__name__}: {error})"
        ) from None
