"""Next cycle's targets from throughput (issue 13 item 3; ``okr-sync recommend``): pure.

For a Jira KR with score history in earlier cycles, the daily deltas of its value in
those cycles (one value a day, as forecasts read history) are drawn with replacement for
every day of the next cycle, ``runs`` times, from where the next cycle starts. Of those
simulated outcomes:

* the **stretch** target is the value reached in 30 % of the runs (the KR's good
  direction: up for an increasing KR, down for a decreasing one), so landing at ~70 % of
  the way to it is a strong result (the OKR convention);
* the **safe** target is the value reached in 70 % of the runs.

A KR that scored 1.0 in each of the last two cycles is flagged ``too_easy``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from okr_sync.scoring.forecast import DailyPoint, forecast_seed, percentile
from okr_sync.scoring.rules import is_too_easy

#: The share of simulated runs that reach the stretch and the safe target.
STRETCH_REACHED, SAFE_REACHED = 0.3, 0.7
#: Fewer observed daily deltas than this over the earlier cycles: no recommendation.
MIN_DELTAS = 2

Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class Recommendation:
    kr_id: str
    direction: Direction
    start: float
    stretch: float
    safe: float
    days: int
    runs: int
    #: Observed daily deltas drawn from, their mean, and the cycles they came from.
    observed_days: int
    mean_daily: float
    cycles: tuple[str, ...]
    too_easy: bool


@dataclass(frozen=True)
class NoRecommendation:
    kr_id: str
    reason: str
    too_easy: bool = False


def cycle_deltas(series_by_cycle: Sequence[Sequence[DailyPoint]]) -> list[float]:
    """Daily deltas within each cycle (never across two cycles: a new cycle's scope and
    baseline are not the old one's), pooled."""
    return [b.value - a.value for series in series_by_cycle for a, b in pairwise(series)]


def recommend_target(kr_id: str, direction: Direction, start: float,
                     series_by_cycle: Sequence[tuple[str, Sequence[DailyPoint]]],
                     days: int, runs: int, next_cycle: str,
                     past_scores: Sequence[float]) -> Recommendation | NoRecommendation:
    """Stretch and safe targets for ``days`` days from ``start`` (see the module doc)."""
    too_easy = is_too_easy(past_scores)
    deltas = cycle_deltas([series for _, series in series_by_cycle])
    if len(deltas) < MIN_DELTAS:
        return NoRecommendation(kr_id, (
            f"only {len(deltas)} observed daily change(s) in earlier cycles (needs "
            f"{MIN_DELTAS}): no throughput to simulate"), too_easy)
    rng = random.Random(forecast_seed(next_cycle, kr_id))
    outcomes = sorted(start + math.fsum(rng.choices(deltas, k=days)) for _ in range(runs))
    # Reached in a share s of runs: for an increasing KR the (1 - s) quantile, for a
    # decreasing one the s quantile.
    if direction == "increase":
        stretch = percentile(outcomes, 1 - STRETCH_REACHED)
        safe = percentile(outcomes, 1 - SAFE_REACHED)
    else:
        stretch = percentile(outcomes, STRETCH_REACHED)
        safe = percentile(outcomes, SAFE_REACHED)
    return Recommendation(kr_id, direction, start, stretch, safe, days, runs, len(deltas),
                          math.fsum(deltas) / len(deltas),
                          tuple(name for name, _ in series_by_cycle), too_easy)
