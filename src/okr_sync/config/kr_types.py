"""KR types beyond A3's linear and threshold KRs (issue 13 item 4): range targets,
phased targets (milestones) and over-achievement (``score_cap``).

Shapes live here so that :mod:`okr_sync.config.plan` stays one node per class; the
rules that need the cycle (milestone dates inside it) are :func:`milestone_problems`,
run by the loader's cross-checks so each problem is reported at its own line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: Same bound as ``plan.MAX_PLAN_NUMBER`` (kept here to avoid an import cycle).
_MAX_NUMBER = 1e12
#: ``score_cap`` may let a KR show up to 10x its target; beyond that it is a typo.
MAX_SCORE_CAP = 10.0

RANGE_SCORE_TEXT = (
    "direction: range scores 1 when min <= value <= max. Without `tolerance` it scores 0"
    " outside; with `tolerance` T the score falls linearly from 1 at the edge to 0 at T"
    " beyond it: score = max(0, 1 - d / T), where d = min - value below the range and"
    " d = value - max above it."
)
MILESTONES_TEXT = (
    "Phased targets: [{date, target}], dates inside the cycle and ascending. The expected"
    " value at as_of is interpolated linearly, in absolute time, through (cycle start,"
    " baseline), each milestone (due at the end of its date) and (cycle end, target); pace"
    " compares the score with the score of that expected value instead of the elapsed"
    " fraction. The KR's `target` stays the final target: milestone targets lie between"
    " baseline and target, never moving back, and a milestone on the cycle's last day"
    " must equal the target."
)
SCORE_CAP_TEXT = (
    "Highest score a linear KR can show (over-achievement), from 1 (the default) to 10:"
    " score = clamp(progress, 0, score_cap). Objective means still count each contributor"
    " at most 1 unless scoring.cap_objectives is false."
)


def _bounded(value: float) -> float:
    if abs(value) > _MAX_NUMBER:
        raise ValueError(f"{value:g} is out of range: numbers in a plan must be within +-1e12")
    return value


_Number = Annotated[float, AfterValidator(_bounded)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RangeTarget(_Strict):
    """``target: {min, max}`` of a ``direction: range`` KR (stay between)."""

    min: _Number
    max: _Number

    @model_validator(mode="after")
    def _ordered(self) -> RangeTarget:
        if self.min > self.max:
            raise ValueError(f"range min {self.min:g} is above max {self.max:g}")
        return self


class Milestone(_Strict):
    """One phase of a phased target: the value to reach by the end of ``date``."""

    date: date
    target: _Number

    @field_validator("date", mode="before")
    @classmethod
    def _date_not_datetime(cls, value: object) -> object:
        if isinstance(value, datetime) or (isinstance(value, str) and not _ISO_DATE.match(value)):
            raise ValueError("give a date (YYYY-MM-DD): a milestone is due at the end of its day")
        return value


def kr_type_problem(direction: str | None, target: object, baseline: float | None,
                    tolerance: float | None, linear_only: bool) -> str | None:
    """Why a KR's direction, target and type options do not fit together, if they don't.
    ``linear_only``: the KR has milestones or a score_cap (meaningful on linear KRs only)."""
    if (direction == "range") != isinstance(target, RangeTarget):
        return ("direction: range takes `target: {min, max}`, and a {min, max} target needs"
                " direction: range")
    if tolerance is not None and direction != "range":
        return "`tolerance` is only for direction: range"
    if direction is None:
        return None
    if target is None:
        return f"direction {direction} needs a `target`"
    if baseline is not None:
        return f"direction {direction} takes only a `target`, no `baseline`"
    if linear_only:
        return (f"direction {direction} scores by a threshold: `milestones` and `score_cap`"
                " are for linear KRs")
    return None


PathPart = int | str
Problem = tuple[list[PathPart], str]


def drop_number_for_mapping(
    errors: list[Any], path_of: Callable[[tuple[int | str, ...]], list[PathPart]]
) -> list[Any]:
    """Pydantic errors, less "not a number" for a mapping where a number or a mapping fits
    (``target``: a number or {min, max}) when the mapping's own errors say more about the
    same place (``path_of``: an error's location as the YAML path)."""
    paths = [path_of(e["loc"]) for e in errors]

    def redundant(index: int) -> bool:
        e, mine = errors[index], paths[index]
        if e.get("type") != "float_type" or not isinstance(e.get("input"), dict):
            return False
        return any(other[:len(mine)] == mine for j, other in enumerate(paths) if j != index)

    return [e for index, e in enumerate(errors) if not redundant(index)]


def milestone_problems(plan: Plan) -> Iterator[Problem]:
    """Milestone dates inside the cycle and strictly ascending; targets between baseline
    and target, never moving back; a milestone on the last day equals the target."""
    cycle = plan.cycle
    for o_index, objective in enumerate(plan.objectives):
        for k_index, kr in enumerate(objective.key_results):
            if not kr.milestones:
                continue
            base: list[PathPart] = ["objectives", o_index, "key_results", k_index, "milestones"]
            baseline, target = kr.effective_baseline, kr.effective_target
            assert target is not None  # the model refuses milestones without a target
            sign = 1.0 if target > baseline else -1.0
            previous_date: date | None = None
            previous_progress = 0.0
            for index, milestone in enumerate(kr.milestones):
                path = [*base, index]
                when = milestone.date.isoformat()
                if not cycle.start <= milestone.date <= cycle.end:
                    yield [*path, "date"], (
                        f"{when} is outside the cycle ({cycle.start.isoformat()} to "
                        f"{cycle.end.isoformat()})")
                elif previous_date is not None and milestone.date <= previous_date:
                    yield [*path, "date"], (
                        f"{when} is not after the previous milestone "
                        f"({previous_date.isoformat()}): milestones must be ascending")
                previous_date = milestone.date
                progress = sign * (milestone.target - baseline)
                in_span = 0 <= progress <= sign * (target - baseline)
                if not in_span:
                    yield [*path, "target"], (
                        f"{milestone.target:g} is not between the baseline {baseline:g} and "
                        f"the target {target:g} (the KR's target is the final one)")
                elif progress < previous_progress:
                    yield [*path, "target"], (
                        f"{milestone.target:g} moves back from the previous milestone: "
                        "each milestone must be at least as far as the one before")
                elif milestone.date == cycle.end and milestone.target != target:
                    yield [*path, "target"], (
                        f"a milestone on the cycle's last day must equal the target "
                        f"{target:g}")
                if in_span:
                    previous_progress = max(previous_progress, progress)
