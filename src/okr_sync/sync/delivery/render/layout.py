"""How much detail a message shows, and the digest's selections; shared by Slack and Teams.

A big plan cannot be shown in full within Slack's or Teams' limits. Each
renderer builds its message at the most detailed level first and steps down
:data:`DETAIL_LEVELS` until the result fits, so a small plan gets everything and
a large one a faithful summary ("…and N more key results") instead of an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from okr_sync.scoring.scorecard import KeyResultScore, ObjectiveScore, Scorecard
from okr_sync.sync.delivery.render.common import worst_first


@dataclass(frozen=True)
class DetailLevel:
    kr_title_limit: int
    objective_title_limit: int
    kr_bar: bool
    max_links: int
    #: KRs listed per objective; None lists all, 0 only counts them by confidence.
    max_krs: int | None
    max_objectives: int | None
    #: Entries of a flat list (changes, KRs needing attention, check-ins).
    max_items: int
    #: Perspectives and KPIs listed (each), and warnings.
    max_facts: int
    max_warnings: int


DETAIL_LEVELS: tuple[DetailLevel, ...] = (
    DetailLevel(150, 150, True, 3, None, None, 40, 10, 3),
    DetailLevel(100, 120, True, 1, None, None, 40, 10, 3),
    DetailLevel(80, 100, False, 1, None, None, 30, 10, 3),
    DetailLevel(60, 80, False, 0, None, None, 25, 10, 3),
    DetailLevel(60, 80, False, 0, 8, None, 20, 10, 3),
    DetailLevel(50, 60, False, 0, 4, None, 15, 10, 3),
    DetailLevel(40, 60, False, 0, 2, 30, 10, 8, 2),
    DetailLevel(40, 50, False, 0, 0, 20, 8, 6, 1),
    DetailLevel(30, 40, False, 0, 0, 10, 5, 4, 1),
    # Last resorts for hostile input (say, thousands of 4-byte characters):
    # the counts survive even when nothing else fits.
    DetailLevel(30, 30, False, 0, 0, 5, 3, 2, 0),
    DetailLevel(20, 20, False, 0, 0, 0, 0, 0, 0),
)

#: Caps on the secondary sections, whatever the level.
MAX_CHANGES = 40
MAX_ATTENTION = 8
MAX_MOVERS = 5
MAX_REMINDER_KRS = 25


@dataclass(frozen=True)
class Mover:
    kr: KeyResultScore
    before: float

    @property
    def delta(self) -> float:
        return (self.kr.score or 0.0) - self.before


def movers(
    scorecard: Scorecard, previous: Scorecard | None, limit: int = MAX_MOVERS
) -> list[Mover]:
    """KRs whose score moved since ``previous``, biggest moves first (ties by id)."""
    if previous is None:
        return []
    # Only measured, fresh KRs move: a failure or a first measurement is no move.
    before = {kr.id: kr.score for kr in previous.key_results() if kr.score is not None}
    moved = [
        Mover(kr=kr, before=before[kr.id])
        for kr in scorecard.key_results()
        if kr.id in before and kr.score is not None and not kr.stale
        and round(kr.score - before[kr.id], 4) != 0
    ]
    moved.sort(key=lambda mover: (-round(abs(mover.delta), 4), mover.kr.id))
    return moved[:limit]


def needs_attention(scorecard: Scorecard) -> list[KeyResultScore]:
    """Every KR not on track, worst first."""
    return worst_first(kr for kr in scorecard.key_results() if kr.confidence != "on_track")


def previous_objective_score(objective: ObjectiveScore, previous: Scorecard | None) -> float | None:
    if previous is None:
        return None
    for candidate in previous.objectives:
        if candidate.id == objective.id:
            return candidate.score
    return None
