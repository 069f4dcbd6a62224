"""JQL date operands: literals in the user's timezone, relative periods and date functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DATE_FUNCTIONS", "date_function", "parse_date_literal"]

_ABSOLUTE = re.compile(r"^(\d{4})([/-])(\d{1,2})\2(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")
_RELATIVE = re.compile(r"^([+-])?\s*((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)
_RELATIVE_PART = re.compile(r"(\d+)\s*([wdhm])", re.IGNORECASE)
_INCREMENT = re.compile(r"^([+-]?)(\d+)([yMwdhm]?)$")
_UNIT_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
# Jira's default (en_US) week starts on Sunday.
_SUNDAY = 6

DATE_FUNCTIONS = frozenset({
    "now", "startofday", "endofday", "startofweek", "endofweek",
    "startofmonth", "endofmonth", "startofyear", "endofyear",
})
_PERIOD_UNIT = {"day": "d", "week": "w", "month": "M", "year": "y"}


def _localize(naive: datetime, tz: ZoneInfo) -> datetime:
    return naive.replace(tzinfo=tz).astimezone(UTC)


def parse_date_literal(text: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """An instant for a JQL date value, or None when Jira would call it invalid.

    Absolute values (minute precision) are wall-clock times in the user's zone ``tz``;
    relative values ("-5m", "-1w 2d") count from ``now``.
    """
    text = text.strip()
    match = _ABSOLUTE.match(text)
    if match:
        year, _, month, day, hour, minute = match.groups()
        try:
            naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
        except ValueError:
            return None
        if int(hour or 0) > 23:
            return None
        return _localize(naive, tz)
    match = _RELATIVE.match(text)
    if match:
        minutes = sum(
            int(n) * _UNIT_MINUTES[unit.lower()] for n, unit in _RELATIVE_PART.findall(match[2])
        )
        sign = -1 if match[1] == "-" else 1
        return now + timedelta(minutes=sign * minutes)
    return None


def _add_months(naive: datetime, months: int) -> datetime:
    index = naive.year * 12 + naive.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    days_in_month = (datetime(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return naive.replace(year=year, month=month, day=min(naive.day, days_in_month))


def _shift(naive: datetime, amount: int, unit: str) -> datetime:
    if unit == "y":
        return _add_months(naive, 12 * amount)
    if unit == "M":
        return _add_months(naive, amount)
    return naive + timedelta(minutes=amount * _UNIT_MINUTES[unit.lower()])


def _period_start(local: datetime, period: str) -> datetime:
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "week":
        return day - timedelta(days=(day.weekday() - _SUNDAY) % 7)
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    return day


def date_function(name: str, args: tuple[str, ...], tz: ZoneInfo, now: datetime) -> datetime:
    """Evaluate now(), startOfDay([inc]), endOfWeek([inc]), ... in the user's zone.

    Raises ValueError for an argument Jira would reject.
    """
    lowered = name.lower()
    if lowered == "now":
        if args:
            raise ValueError("now() takes no arguments")
        return now
    if lowered not in DATE_FUNCTIONS:
        raise ValueError(f"unknown date function {name}")
    is_end = lowered.startswith("end")
    period = lowered.removeprefix("end" if is_end else "start").removeprefix("of")
    if len(args) > 1:
        raise ValueError(f"{name}() takes at most one argument")
    amount, unit = 0, _PERIOD_UNIT[period]
    if args:
        match = _INCREMENT.match(args[0].strip())
        if not match:
            raise ValueError(f"invalid increment {args[0]!r}")
        amount = int(match[2]) * (-1 if match[1] == "-" else 1)
        unit = match[3] or unit
    boundary = _period_start(now.astimezone(tz), period)
    if is_end:
        boundary = _shift(boundary, 1, _PERIOD_UNIT[period])
    boundary = _shift(boundary, amount, unit)
    instant = _localize(boundary, tz)
    return instant - timedelta(milliseconds=1) if is_end else instant
