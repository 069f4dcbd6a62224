"""Cron expressions (croniter syntax) evaluated in the time zone of the datetime given:
the service's schedule and the scheduled messages of ``run`` and ``serve`` pass times in
the plan's cycle time zone, so ``0 9 * * MON`` means 09:00 where the team works."""

from __future__ import annotations

from datetime import datetime, timedelta

# croniter is imported where a cron is evaluated (~40 ms with dateutil): a plan without
# cron fields, the usual case, starts without it.


class ScheduleError(ValueError):
    """An interval or cron expression that cannot be used (exit 2 at the CLI)."""


def cron_next(expression: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (in ``after``'s time zone)."""
    from croniter import CroniterBadCronError, croniter

    try:
        result: datetime = croniter(expression, after).get_next(datetime)
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ScheduleError(f"invalid cron expression {expression!r}") from error
    return result


def cron_latest(expression: str, now: datetime) -> datetime:
    """The latest fire time at or before ``now`` (in ``now``'s time zone)."""
    # croniter's get_prev is strictly before its start; a slot falling exactly on
    # ``now`` is found by looking forward from just before it.
    candidate = cron_next(expression, now - timedelta(seconds=1))
    if candidate <= now:
        return candidate
    from croniter import CroniterBadCronError, croniter

    try:
        result: datetime = croniter(expression, now).get_prev(datetime)
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ScheduleError(f"invalid cron expression {expression!r}") from error
    return result
