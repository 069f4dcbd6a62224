"""When ``okr-sync serve`` runs passes: a fixed interval ("5m") or a cron expression.

Cron expressions (croniter syntax) are evaluated in the time zone of the datetime
they are given; the scheduler passes "now" in the plan's cycle time zone, so
``0 9 * * MON`` means 09:00 where the team works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from okr_sync.sync.cron import ScheduleError, cron_latest, cron_next

__all__ = ["Schedule", "ScheduleError", "check_cron", "cron_latest", "cron_next", "parse_duration"]

DEFAULT_INTERVAL = timedelta(minutes=5)
MIN_INTERVAL = timedelta(seconds=1)
#: A longer interval is a typo (a pass a week still keeps the scorecard roughly current),
#: and a huge one would overflow the next run's datetime.
MAX_INTERVAL = timedelta(days=7)

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)([dhms])")


def parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"1h30m"``, ``"2d"`` or a bare number of seconds."""
    raw = text.strip().lower()
    if not raw:
        raise ScheduleError("empty interval")
    if raw.isdigit():
        seconds = int(raw)
    else:
        parts = _DURATION.findall(raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise ScheduleError(
                f"invalid interval {text!r}: use a number with a unit, e.g. 30s, 5m, 1h, 1h30m"
            )
        units = [u for _, u in parts]
        if len(set(units)) != len(units):
            raise ScheduleError(f"invalid interval {text!r}: a unit appears twice")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_INTERVAL.total_seconds():
        raise ScheduleError(f"interval {text!r} is longer than the maximum, 7d")
    duration = timedelta(seconds=seconds)
    if duration < MIN_INTERVAL:
        raise ScheduleError(f"interval {text!r} is shorter than {MIN_INTERVAL.total_seconds():g}s")
    return duration


def check_cron(expression: str) -> str:
    """The expression, stripped, when croniter accepts it (five fields, or six with seconds)."""
    expr = " ".join(expression.split())
    if not expr or len(expr.split()) not in (5, 6) or not croniter.is_valid(expr):
        raise ScheduleError(f"invalid cron expression {expression!r}")
    return expr


@dataclass(frozen=True)
class Schedule:
    """Either ``interval`` or ``cron`` is set (use :meth:`parse`)."""

    interval: timedelta | None = DEFAULT_INTERVAL
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ScheduleError("a schedule needs exactly one of an interval or a cron expression")
        if self.interval is not None and self.interval < MIN_INTERVAL:
            raise ScheduleError("the interval must be at least 1 second")

    @classmethod
    def parse(cls, interval: str | None = None, cron: str | None = None) -> Schedule:
        """From the CLI's ``--interval`` / ``--cron`` (default: every 5 minutes)."""
        if interval is not None and cron is not None:
            raise ScheduleError("use either --interval or --cron, not both")
        if cron is not None:
            return cls(interval=None, cron=check_cron(cron))
        if interval is not None:
            if interval.strip().isdigit():
                # "5" reads as five minutes to some and five seconds to others.
                raise ScheduleError(f"--interval {interval.strip()}: give a unit: 5s, 5m, 1h, 1d")
            return cls(interval=parse_duration(interval))
        return cls()

    @property
    def runs_at_start(self) -> bool:
        """An interval schedule syncs as soon as it leads; cron waits for its time."""
        return self.interval is not None

    def next_run(self, after: datetime) -> datetime:
        if self.interval is not None:
            return after + self.interval
        assert self.cron is not None
        return cron_next(self.cron, after)

    def period(self, at: datetime) -> timedelta:
        """The nominal time between passes around ``at`` (for a cron: the current gap)."""
        if self.interval is not None:
            return self.interval
        assert self.cron is not None
        return cron_next(self.cron, at) - cron_latest(self.cron, at)

    def describe(self) -> str:
        if self.interval is not None:
            return f"every {self.interval.total_seconds():g}s"
        return f"cron {self.cron!r}"
