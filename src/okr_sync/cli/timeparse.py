"""Parse ``--as-of`` the way A3 says: dates and naive datetimes are in the cycle's zone."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo


class AsOfError(ValueError):
    """``--as-of`` is not an ISO date or datetime."""


def parse_as_of(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date means 00:00 of that day in ``zone``; a datetime without an offset
    is read in ``zone``; one with an offset is taken as given."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, tzinfo=zone)
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise AsOfError(
            f"--as-of {text!r} is not an ISO date (2026-11-15) or datetime (2026-11-15T09:30)"
        ) from error
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment
