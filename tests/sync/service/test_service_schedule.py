"""Schedules of ``okr-sync serve``: --interval durations, --cron expressions, cron slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from okr_sync.sync.service.app import Schedule, ScheduleError, parse_duration
from okr_sync.sync.service.schedule import cron_latest, cron_next

_MONDAY_9 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("90", 90),
     (" 5M ", 300), ("1s", 1)],
)
def test_parse_duration_given_unit_forms_returns_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "0s", "0", "5x", "m5", "1.5m", "5m5m", "-5m", "5 m", "1h 30m"]
)
def test_parse_duration_given_bad_or_too_short_text_raises_schedule_error(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_duration(text)


def test_schedule_parse_given_nothing_defaults_to_five_minutes() -> None:
    schedule = Schedule.parse(None, None)
    assert schedule.interval == timedelta(minutes=5) and schedule.cron is None
    assert schedule.runs_at_start


def test_schedule_parse_given_interval_runs_at_start_every_interval() -> None:
    schedule = Schedule.parse("30s", None)
    assert schedule.next_run(_MONDAY_9) == _MONDAY_9 + timedelta(seconds=30)
    assert schedule.period(_MONDAY_9) == timedelta(seconds=30)
    assert schedule.describe() == "every 30s"


def test_schedule_parse_given_cron_waits_for_its_time() -> None:
    schedule = Schedule.parse(None, "*/15  * * * *")
    assert schedule.cron == "*/15 * * * *" and not schedule.runs_at_start
    assert schedule.next_run(_MONDAY_9 + timedelta(minutes=1)) == _MONDAY_9 + timedelta(minutes=15)
    assert schedule.period(_MONDAY_9 + timedelta(minutes=1)) == timedelta(minutes=15)


def test_schedule_parse_given_both_or_invalid_cron_refuses() -> None:
    with pytest.raises(ScheduleError, match="not both"):
        Schedule.parse("5m", "* * * * *")
    for bad in ("5m", "* * *", "61 * * * *", "not a cron"):
        with pytest.raises(ScheduleError):
            Schedule.parse(None, bad)


def test_schedule_given_neither_interval_nor_cron_refuses() -> None:
    with pytest.raises(ScheduleError):
        Schedule(interval=None, cron=None)


def test_cron_latest_given_time_exactly_on_a_slot_returns_that_slot() -> None:
    assert cron_latest("0 9 * * MON", _MONDAY_9) == _MONDAY_9
    assert cron_latest("0 9 * * MON", _MONDAY_9 - timedelta(seconds=1)) == _MONDAY_9 - timedelta(
        days=7)
    assert cron_latest("0 9 * * MON", _MONDAY_9 + timedelta(hours=3)) == _MONDAY_9


def test_cron_next_given_zone_fires_at_local_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    fire = cron_next("0 9 * * MON", datetime(2026, 11, 1, 12, 0, tzinfo=berlin))
    assert fire == datetime(2026, 11, 2, 9, 0, tzinfo=berlin)
    assert fire.astimezone(UTC).hour == 8


def test_schedule_period_given_weekday_cron_is_the_current_gap() -> None:
    schedule = Schedule.parse(None, "0 9 * * MON-FRI")
    friday_noon = datetime(2026, 11, 6, 12, 0, tzinfo=UTC)
    assert schedule.period(friday_noon) == timedelta(days=3)


@pytest.mark.parametrize("text", ["5", " 300 "])
def test_schedule_parse_given_interval_without_unit_asks_for_one(text: str) -> None:
    with pytest.raises(ScheduleError, match="give a unit: 5s, 5m, 1h"):
        Schedule.parse(text, None)


@pytest.mark.parametrize("text", ["8d", "169h", "99999999d", f"{10**12}s"])
def test_parse_duration_given_more_than_7_days_refuses_naming_the_bound(text: str) -> None:
    with pytest.raises(ScheduleError, match="7d"):
        parse_duration(text)


def test_parse_duration_given_exactly_7_days_accepts() -> None:
    assert parse_duration("7d") == timedelta(days=7)
