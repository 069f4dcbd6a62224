"""Exact-string tests of the incremental JQL builder (pure, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okr_sync.connectors.jira.jql import (
    incremental_jql,
    jql_datetime_literal,
    jql_string,
    projects_jql,
    split_order_by,
)
from support.hypothesis_profile import examples

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
UTC_ZONE = ZoneInfo("UTC")


def at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_incremental_jql_given_projects_without_cursor_returns_whole_scope() -> None:
    assert (
        incremental_jql(["ENT", "SUP"], None, UTC_ZONE)
        == 'project in ("ENT", "SUP") ORDER BY created ASC'
    )


def test_incremental_jql_given_utc_user_floors_cursor_minus_overlap_to_the_minute() -> None:
    cursor = datetime(2026, 11, 15, 14, 7, 59, 999_000, tzinfo=UTC)
    assert (
        incremental_jql(["ENT"], cursor - timedelta(minutes=2), UTC_ZONE)
        == 'project in ("ENT") AND updated >= "2026/11/15 14:05" ORDER BY created ASC'
    )


def test_incremental_jql_given_cursor_on_minute_boundary_keeps_that_minute() -> None:
    cursor = at(2026, 11, 15, 14, 7, 0)
    assert (
        incremental_jql(["ENT"], cursor, UTC_ZONE)
        == 'project in ("ENT") AND updated >= "2026/11/15 14:07" ORDER BY created ASC'
    )


def test_incremental_jql_given_one_millisecond_before_minute_floors_to_previous_minute() -> None:
    cursor = datetime(2026, 11, 15, 14, 6, 59, 999_000, tzinfo=UTC)
    assert '"2026/11/15 14:06"' in incremental_jql(["ENT"], cursor, UTC_ZONE)


def test_incremental_jql_given_new_york_user_writes_literal_in_eastern_time() -> None:
    cursor = at(2026, 11, 15, 14, 7, 30)  # EST = UTC-5
    assert (
        incremental_jql(["ENT"], cursor - timedelta(minutes=2), NEW_YORK)
        == 'project in ("ENT") AND updated >= "2026/11/15 09:05" ORDER BY created ASC'
    )


def test_incremental_jql_given_kolkata_user_applies_half_hour_offset() -> None:
    cursor = at(2026, 11, 15, 14, 0, 30)  # IST = UTC+5:30
    assert (
        incremental_jql(["ENT", "SUP"], cursor - timedelta(minutes=2), KOLKATA)
        == 'project in ("ENT", "SUP") AND updated >= "2026/11/15 19:28" ORDER BY created ASC'
    )


def test_incremental_jql_given_overlap_crossing_midnight_rolls_the_date_back() -> None:
    cursor = at(2026, 1, 1, 0, 1)
    assert '"2025/12/31 23:56"' in incremental_jql(["ENT"], cursor - timedelta(minutes=5), UTC_ZONE)


def test_incremental_jql_given_jql_scope_wraps_condition_and_keeps_its_order_by() -> None:
    scope = "project = ENT OR labels = okr ORDER BY key DESC"
    assert (
        incremental_jql(scope, at(2026, 11, 15, 14, 7), UTC_ZONE)
        == '(project = ENT OR labels = okr) AND updated >= "2026/11/15 14:07" ORDER BY key DESC'
    )


def test_incremental_jql_given_order_by_inside_quotes_does_not_split_there() -> None:
    scope = 'summary ~ "order by me" AND project = ENT'
    assert (
        incremental_jql(scope, None, UTC_ZONE)
        == '(summary ~ "order by me" AND project = ENT) ORDER BY created ASC'
    )


def test_incremental_jql_given_cursor_in_other_zone_uses_the_instant_not_the_wall_time() -> None:
    # 03:02 EDT on the spring-forward day is 07:02 UTC; minus 5 minutes is
    # 06:57 UTC (01:57 EST). Wall-clock arithmetic would land in the gap.
    cursor = datetime(2026, 3, 8, 3, 2, tzinfo=NEW_YORK)
    since = cursor.astimezone(UTC) - timedelta(minutes=5)
    jql = incremental_jql(["ENT"], since, UTC_ZONE)
    assert '"2026/03/08 06:57"' in jql
    assert '"2026/03/08 01:57"' in incremental_jql(["ENT"], since, NEW_YORK)


def test_jql_datetime_literal_given_ambiguous_fall_back_hour_moves_back_before_it() -> None:
    # 05:30 UTC is 01:30 EDT; "01:30" could also be read as 01:30 EST (06:30
    # UTC), which would skip an hour of updates, so the literal goes back.
    assert jql_datetime_literal(at(2026, 11, 1, 5, 30), NEW_YORK) == '"2026/11/01 00:30"'


def test_jql_datetime_literal_given_second_pass_of_fall_back_hour_keeps_it() -> None:
    # 06:30 UTC is 01:30 EST: both readings of "01:30" are at or before it.
    assert jql_datetime_literal(at(2026, 11, 1, 6, 30), NEW_YORK) == '"2026/11/01 01:30"'


def test_jql_datetime_literal_given_spring_forward_uses_the_new_offset() -> None:
    assert jql_datetime_literal(at(2026, 3, 8, 6, 59), NEW_YORK) == '"2026/03/08 01:59"'
    assert jql_datetime_literal(at(2026, 3, 8, 7, 0), NEW_YORK) == '"2026/03/08 03:00"'


@settings(max_examples=examples(300), deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(
        [NEW_YORK, KOLKATA, UTC_ZONE, ZoneInfo("Europe/London"), ZoneInfo("Australia/Lord_Howe")]
    ),
)
def test_jql_datetime_literal_given_any_instant_is_never_later_and_at_most_an_hour_early(
    instant: datetime, zone: ZoneInfo
) -> None:
    literal = jql_datetime_literal(instant, zone)
    wall = datetime.strptime(literal.strip('"'), "%Y/%m/%d %H:%M")
    readings = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    assert max(readings) <= instant
    assert instant - min(readings) < timedelta(hours=1, minutes=1)


def test_incremental_jql_given_naive_cursor_raises() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        incremental_jql(["ENT"], datetime(2026, 1, 1), UTC_ZONE)


def test_incremental_jql_given_no_scope_raises_instead_of_unbounded_query() -> None:
    with pytest.raises(ValueError):
        incremental_jql([], None, UTC_ZONE)
    with pytest.raises(ValueError):
        incremental_jql("ORDER BY key", None, UTC_ZONE)


def test_jql_string_given_quotes_and_backslashes_escapes_them() -> None:
    assert jql_string('a "b" \\c') == '"a \\"b\\" \\\\c"'


def test_projects_jql_given_blank_entries_skips_them() -> None:
    assert projects_jql(["ENT", " ", "SUP "]) == 'project in ("ENT", "SUP")'


def test_split_order_by_given_single_quoted_value_splits_only_at_the_clause() -> None:
    assert split_order_by("summary ~ 'order by' order  by rank") == (
        "summary ~ 'order by'",
        "order  by rank",
    )
