"""The plan's cycle (DESIGN.md A1, A3) and the strict base of every plan model.

Kept apart from :mod:`okr_sync.config.plan` (which re-exports both) so that each
module stays small.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Cycle dates are kept within these years: every pass adds a day to the end and
#: turns dates into instants in the cycle's time zone, which overflows near year 9999.
FIRST_CYCLE_YEAR, LAST_CYCLE_YEAR = 1970, 2200
MAX_CYCLE_DAYS = 5 * 366

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Cycle(StrictModel):
    name: str = Field(min_length=1)
    start: date
    end: date
    timezone: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_not_datetime(cls, value: object) -> object:
        # The cycle runs from `start` 00:00 to the end of `end` in its time zone; a
        # time of day would be silently dropped, so it is refused.
        if isinstance(value, datetime) or (
            isinstance(value, str) and not _ISO_DATE.match(value)
        ):
            raise ValueError(
                "give a date (YYYY-MM-DD), not a datetime: the cycle runs from the start"
                " of `start` to the end of `end` in the cycle's time zone"
            )
        return value

    @field_validator("start", "end")
    @classmethod
    def _representable(cls, value: date) -> date:
        if not FIRST_CYCLE_YEAR <= value.year <= LAST_CYCLE_YEAR:
            raise ValueError(
                f"{value.isoformat()} is out of range: cycle dates must be in the years"
                f" {FIRST_CYCLE_YEAR} to {LAST_CYCLE_YEAR}"
            )
        return value

    @model_validator(mode="after")
    def _bounded_length(self) -> Cycle:
        days = (self.end - self.start).days
        if days > MAX_CYCLE_DAYS:
            raise ValueError(
                f"the cycle lasts {days} days; a cycle may last at most 5 years"
                f" ({MAX_CYCLE_DAYS} days)"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
