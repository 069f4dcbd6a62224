"""Which days a backfill covers, and the instants that end them (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from okr_sync.config.plan import Plan


class BackfillInputError(ValueError):
    """The request names something the plan does not have (exit 2, nothing stored)."""


@dataclass(frozen=True)
class Day:
    day: date
    #: The first instant after the day (exclusive): histories before it count.
    cutoff: datetime
    #: The instant its history row is stored at: the day's last second, in the zone.
    as_of: datetime


def jira_krs(plan: Plan) -> list[str]:
    """Ids of the KRs measured from Jira, in plan order."""
    return [kr.id for _, kr in plan.key_results() if kr.measure.kind != "manual"]


def chosen_krs(plan: Plan, requested: Sequence[str]) -> list[str]:
    """The KRs to backfill: every Jira KR, or those requested (each checked)."""
    measured = jira_krs(plan)
    if not requested:
        return measured
    every = [kr.id for _, kr in plan.key_results()]
    for kr_id in requested:
        if kr_id in measured:
            continue
        if kr_id in every:
            raise BackfillInputError(
                f"--kr {kr_id}: this KR is manual (check-ins), not measured from Jira; "
                "there is nothing to rebuild from the changelog")
        close = difflib.get_close_matches(kr_id, every, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise BackfillInputError(f"--kr {kr_id}: no such key result in the plan{hint}")
    return [kr_id for kr_id in measured if kr_id in set(requested)]


def backfill_days(plan: Plan, since: date | None, now: datetime) -> list[Day]:
    """Every day of the cycle from ``since`` (default: the cycle's start) that has ended
    by ``now``, in the cycle's zone (the zone live passes use for the cycle)."""
    cycle = plan.cycle
    zone = cycle.zone
    first = cycle.start if since is None else since
    if not cycle.start <= first <= cycle.end:
        raise BackfillInputError(
            f"--from {first.isoformat()} is outside the cycle {cycle.name} "
            f"({cycle.start.isoformat()} to {cycle.end.isoformat()})")
    days = []
    current = first
    while current <= cycle.end:
        cutoff = datetime.combine(current + timedelta(days=1), time.min, tzinfo=zone)
        as_of = cutoff - timedelta(seconds=1)
        if as_of > now:
            break
        days.append(Day(current, cutoff, as_of))
        current += timedelta(days=1)
    return days
