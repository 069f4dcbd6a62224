"""A KR's score and pace formulas as text, for ``okr-sync explain`` (pure).

The numbers come from :mod:`okr_sync.scoring.rules` (the functions the pass uses);
these strings only show them with the numbers filled in.
"""

from __future__ import annotations

from okr_sync.config.plan import KeyResult
from okr_sync.scoring.rules import range_distance
from okr_sync.scoring.scorecard import rounded


def num(value: float) -> str:
    """A number as explain writes it: at most 4 decimals (A3), no trailing zeros."""
    shown = rounded(value)
    if isinstance(shown, int):
        return str(shown)
    return f"{shown:.4f}".rstrip("0").rstrip(".") if shown is not None else "-"


def score_formula(kr: KeyResult, value: float, score: float) -> str:
    """How ``score`` follows from ``value`` for this KR's type."""
    span = kr.range_target
    if span is not None:
        return _range_formula(value, span.min, span.max, kr.tolerance, score)
    target = kr.effective_target
    assert target is not None  # plan validation
    return linear_formula(value, kr.effective_baseline, target, kr.direction, score,
                          kr.score_cap)


def _range_formula(value: float, low: float, high: float, tolerance: float | None,
                   score: float) -> str:
    v, inside = num(value), f"[{num(low)}, {num(high)}]"
    distance = range_distance(value, low, high)
    if distance == 0:
        return f"range: {v} in {inside} -> 1"
    if tolerance is None:
        return f"range: {v} outside {inside} -> 0"
    return (f"range: {v} is {num(distance)} outside {inside}; max(0, 1 - d/tolerance) = "
            f"max(0, 1 - {num(distance)}/{num(tolerance)}) = {num(score)}")


def linear_formula(value: float, baseline: float, target: float, direction: str | None,
                   score: float, cap: float = 1.0) -> str:
    v, b, t = num(value), num(baseline), num(target)
    if direction == "at_least":
        return f"at_least: {v} >= {t} -> 1" if score == 1 else f"at_least: {v} < {t} -> 0"
    if direction == "at_most":
        return f"at_most: {v} <= {t} -> 1" if score == 1 else f"at_most: {v} > {t} -> 0"
    if target > baseline:
        raw = (value - baseline) / (target - baseline)
        text = f"(v - b)/(t - b) = ({v} - {b})/({t} - {b}) = {num(raw)}"
    else:
        raw = (baseline - value) / (baseline - target)
        text = f"(b - v)/(b - t) = ({b} - {v})/({b} - {t}) = {num(raw)} (decrease)"
    if raw != score:
        text += f", clamped to [0, {num(cap)}] = {num(score)}"
    elif cap != 1.0 and raw > 1:
        text += f" (score_cap {num(cap)} allows over-achievement)"
    return text


def share_text(score: float, capped: bool) -> str:
    """A contributor's score in an objective's mean: ``min(1.25, 1)`` when capped."""
    return f"min({num(score)}, 1)" if capped and score > 1 else num(score)
