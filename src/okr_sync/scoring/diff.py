"""What changed since the last published scorecard (A5 ``changes``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from okr_sync.scoring.scorecard import Change, Scorecard


@dataclass(frozen=True)
class PublishedKr:
    """What the last published scorecard said about one KR."""

    score: float
    band: str
    confidence: str


def published_krs(scorecard: Scorecard) -> dict[str, PublishedKr]:
    """What a published scorecard told people about each KR (the baseline for news)."""
    return {
        kr.id: PublishedKr(kr.score, kr.band, kr.confidence)
        for kr in scorecard.key_results()
        if kr.score is not None and kr.band is not None and kr.confidence is not None
    }


def diff_scorecard(
    previous: Mapping[str, PublishedKr] | None,
    current: Scorecard,
    min_delta: float,
    reasons: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[Change, ...]:
    """KRs whose score moved by at least ``min_delta`` or whose band or confidence changed.

    With no previous scorecard (the first pass) nothing is news: the standing
    scorecard message itself shows the starting point. A KR that is not measured, or
    stale (its measure failed), is never news: a failure must not read as a move.
    """
    if previous is None:
        return ()
    reasons = reasons or {}
    changes = []
    # Reported scores are rounded to 4 decimals; compare at that precision so a
    # float wobble below what anyone can see is never news.
    epsilon = 1e-9
    for kr in current.key_results():
        if kr.score is None or kr.stale:
            continue
        before = previous.get(kr.id)
        if before is None:
            changes.append(
                Change(
                    kr.id, None, kr.score, ("new key result",), None, kr.band, None, kr.confidence
                )
            )
            continue
        moved = abs(round(kr.score, 4) - round(before.score, 4)) >= min_delta - epsilon
        if min_delta == 0:
            moved = round(kr.score, 4) != round(before.score, 4)
        if moved or kr.band != before.band or kr.confidence != before.confidence:
            # Reasons say what happened to the work items; band and confidence moves
            # travel in their own fields (and JSON keys), so they are not repeated here.
            changes.append(
                Change(
                    kr.id,
                    before.score,
                    kr.score,
                    tuple(reasons.get(kr.id, ())),
                    before.band,
                    kr.band,
                    before.confidence,
                    kr.confidence,
                )
            )
    return tuple(changes)
