"""``people:`` in the plan: who an ``owner:`` names, and their chat ids for mentions."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A Slack member id (``U...``; ``W...`` on Enterprise Grid), as in ``<@U123ABC>``.
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
#: A Microsoft Entra (AAD) object id: a GUID.
_AAD_OBJECT_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class Person(BaseModel):
    """Someone an ``owner:`` may name (by the key of ``people``), with the ids that
    let change notes and reminders mention them."""

    # As plan.StrictModel (not imported: plan imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The name people read; default: the key.
    name: str | None = Field(default=None, min_length=1, max_length=200)
    #: Slack member id (profile -> ⋮ -> "Copy member ID"), e.g. ``U012AB3CD``.
    slack: str | None = Field(default=None,
                              json_schema_extra={"pattern": _SLACK_USER_ID.pattern})
    #: Teams: the person's Microsoft Entra object id (a GUID).
    teams: str | None = Field(default=None,
                              json_schema_extra={"pattern": _AAD_OBJECT_ID.pattern})

    @field_validator("slack")
    @classmethod
    def _slack_id(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_USER_ID.match(value):
            raise ValueError(f"{value!r} is not a Slack member id (U or W and capitals or "
                             "digits, e.g. U012AB3CD; not a @name or an e-mail)")
        return value

    @field_validator("teams")
    @classmethod
    def _teams_id(cls, value: str | None) -> str | None:
        if value is not None and not _AAD_OBJECT_ID.match(value):
            raise ValueError(f"{value!r} is not a Microsoft Entra object id (a GUID such as "
                             "00000000-0000-0000-0000-000000000000)")
        return value


#: In ``checkins.allowed``: every member of the Slack workspace (or Teams tenant) whose
#: request the chat platform signed may check in any KR.
ANYONE = "anyone"


class CheckinPolicy(BaseModel):
    """``checkins:`` in the plan: who may check in a KR from Slack or Teams.

    A KR's owners (its ``owner``, else its objective's) always may. ``allowed`` adds
    people (keys of ``people``) who may check in every KR, or ``anyone``. The CLI is
    not limited: whoever can run it holds the store's credentials anyway.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: list[str] = Field(
        default_factory=list, max_length=1000,
        description="keys of `people` who may check in any KR besides its owners, or "
                    "`anyone` (every member of the workspace)",
    )

    def allows_anyone(self) -> bool:
        return ANYONE in self.allowed


def checkin_policy_problems(
    policy: CheckinPolicy, people: dict[str, Person]
) -> list[tuple[int, str]]:
    """``checkins.allowed`` entries that name nobody: (index, message)."""
    problems = []
    for index, entry in enumerate(policy.allowed):
        if entry == ANYONE or entry in people:
            continue
        problems.append((index, f"unknown person {entry!r}: `checkins.allowed` takes keys of "
                                f"`people` or {ANYONE!r}"))
    return problems
