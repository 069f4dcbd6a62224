"""Pure JQL builders for incremental pulls (no I/O).

Jira reads a date literal such as ``"2026/11/15 09:58"`` at **minute**
precision in the **calling user's profile timezone**. A cursor kept in UTC
must therefore be moved back by an overlap, converted to that timezone and
floored to the minute, or updates near the boundary are lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

JQL_DATETIME_FORMAT = "%Y/%m/%d %H:%M"

#: Appended when the scope has no ORDER BY of its own: creation order is
#: immutable, so offset paging (Data Center) does not skip issues that are
#: updated or moved while the pages are read.
DEFAULT_ORDER_BY = "ORDER BY created ASC"

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)

# A wall time in a fall-back hour is read by Jira as one of two instants;
# a couple of corrections always reach an unambiguous one.
_MAX_AMBIGUITY_STEPS = 4


def jql_string(value: str) -> str:
    """Quote ``value`` as a JQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def projects_jql(projects: Sequence[str]) -> str:
    """``project in ("A", "B")`` for a non-empty list of project keys."""
    keys = [key.strip() for key in projects if key.strip()]
    if not keys:
        raise ValueError("an incremental pull needs at least one project or a JQL scope")
    return f"project in ({', '.join(jql_string(key) for key in keys)})"


def split_order_by(jql: str) -> tuple[str, str | None]:
    """Split ``jql`` into its condition and its ``ORDER BY`` clause (if any).

    ``ORDER BY`` inside a quoted value is not a clause, so quotes are tracked.
    """
    quote: str | None = None
    escaped = False
    for index, char in enumerate(jql):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "oO":
            match = _ORDER_BY.match(jql, index)
            if match is not None and (index == 0 or not _is_word(jql[index - 1])):
                return jql[:index].strip(), jql[index:].strip()
    return jql.strip(), None


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def jql_datetime_literal(instant: datetime, tz: ZoneInfo) -> str:
    """The latest JQL minute literal that Jira cannot read as later than ``instant``.

    The wall time in ``tz`` is floored to the minute. In a DST fall-back hour
    the same wall time names two instants; Jira may pick the later one, so
    the literal is moved back until every reading is ``<= instant``.
    """
    if instant.tzinfo is None:
        raise ValueError("the cursor must be timezone-aware")
    # Aware datetimes sharing a tzinfo compare and subtract as wall times, so
    # everything is compared in UTC.
    instant = instant.astimezone(UTC)
    target = instant
    for _ in range(_MAX_AMBIGUITY_STEPS):
        wall = target.astimezone(tz).replace(second=0, microsecond=0, tzinfo=None)
        latest = max(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
        if latest <= instant:
            return f'"{wall.strftime(JQL_DATETIME_FORMAT)}"'
        target = target - (latest - instant)
    raise ValueError(f"cannot express {instant.isoformat()} as a JQL date in {tz.key}")


def incremental_jql(scope: str | Sequence[str], since: datetime | None, tz: ZoneInfo) -> str:
    """JQL for issues in ``scope`` updated at or after ``since`` (read in ``tz``).

    ``scope`` is a JQL condition (its ``ORDER BY`` is kept) or a list of
    project keys. ``since`` is the earliest instant wanted: the caller moves
    its cursor back by an overlap first. Without it the whole scope is
    returned (a full pull).
    """
    if isinstance(scope, str):
        condition, order_by = split_order_by(scope)
        if not condition:
            raise ValueError("the JQL scope has no condition (Jira refuses unbounded queries)")
        condition = f"({condition})"
    else:
        condition, order_by = projects_jql(scope), None
    if since is not None:
        condition = f"{condition} AND updated >= {jql_datetime_literal(since, tz)}"
    return f"{condition} {order_by or DEFAULT_ORDER_BY}"
