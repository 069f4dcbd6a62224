"""``serve:`` in a plan: this plan's own schedule when ``okr-sync serve --plans`` runs it.

Without it a plan follows the command line's ``--interval`` / ``--cron``. A single-plan
``serve --plan FILE`` always takes its schedule from the command line.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from okr_sync.config.cycle import StrictModel

#: "30s", "5m", "1h30m", "1d": bounds (1 s to 7 d) are checked where the schedule is built.
DURATION_PATTERN = r"^([0-9]+[dhms])+$"


class ServeSchedule(StrictModel):
    interval: str | None = Field(
        default=None, pattern=DURATION_PATTERN,
        description="sync every 30s, 5m, 1h, 1d (1 second to 7 days)",
    )
    cron: str | None = Field(
        default=None, min_length=1,
        description="sync on a cron schedule (five fields, or six with seconds), "
                    "in the cycle's time zone",
    )

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if self.interval is not None and self.cron is not None:
            raise ValueError("give either interval or cron, not both")
        if self.cron is not None:
            # Imported here: validating a plan without a cron never loads croniter.
            from croniter import croniter

            expression = " ".join(self.cron.split())
            if len(expression.split()) not in (5, 6) or not croniter.is_valid(expression):
                raise ValueError(f"invalid cron expression {self.cron!r}")
        return self
