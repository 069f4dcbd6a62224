"""Check-ins: the rules shared by every way in (``okr-sync checkin``, Slack, Teams).

What a check-in may hold (a finite value within the plan's number range, on manual KRs
only; a known confidence; a note) and who may make one from a chat (a KR's owners, or
the plan's ``checkins.allowed``). The CLI and the chat endpoints call the same code, so
a value refused by one is refused by the other, with the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from okr_sync.config.plan import MAX_PLAN_NUMBER, KeyResult, Plan
from okr_sync.scoring.scorecard import CONFIDENCE_ORDER, Confidence

#: A note longer than this is refused (a chat modal allows 3000 characters).
MAX_NOTE_CHARS = 3000

#: How the CLI names each field in its messages (its options).
CLI_FIELDS: Mapping[str, str] = MappingProxyType(
    {"value": "--value", "confidence": "--confidence", "note": "--note"})
#: How a chat names them (the modal's inputs, the slash command's words).
CHAT_FIELDS: Mapping[str, str] = MappingProxyType(
    {"value": "value", "confidence": "confidence", "note": "note"})


class CheckinError(ValueError):
    """A check-in that is refused; ``field`` names the input at fault (None: the whole)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ValidCheckin:
    """A check-in that passed the rules, ready for ``Store.add_checkin``."""

    kr: KeyResult
    value: float | None
    confidence: Confidence | None
    note: str | None
    #: Why the value looks like a typo (it is stored all the same).
    warnings: tuple[str, ...] = field(default=())


def parse_confidence(text: str | None, names: Mapping[str, str] = CLI_FIELDS
                     ) -> Confidence | None:
    if text is None:
        return None
    for option in CONFIDENCE_ORDER:
        if option == text:
            return option
    raise CheckinError(f"{names['confidence']} must be one of {', '.join(CONFIDENCE_ORDER)}",
                       field="confidence")


def validate_checkin(
    kr: KeyResult, *, value: float | None, confidence: str | None, note: str | None,
    names: Mapping[str, str] = CLI_FIELDS,
) -> ValidCheckin:
    """The check-in of ``kr``, or CheckinError naming the field (as ``names`` calls it)."""
    if value is None and confidence is None and note is None:
        raise CheckinError(f"give at least one of {', '.join(names.values())}")
    if value is not None and kr.measure.kind != "manual":
        raise CheckinError(f"{kr.id} is measured from Jira ({kr.measure.kind}); "
                           f"only manual KRs take {names['value']}", field="value")
    if value is not None and not (math.isfinite(value) and abs(value) <= MAX_PLAN_NUMBER):
        # inf would make every later pass fail; NaN would be stored as NULL.
        raise CheckinError(f"{names['value']} must be a finite number within "
                           f"+-{MAX_PLAN_NUMBER:g}, not {value}", field="value")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise CheckinError(f"{names['note']} is longer than {MAX_NOTE_CHARS} characters",
                           field="note")
    chosen = parse_confidence(confidence, names)
    warnings: tuple[str, ...] = ()
    if value is not None:
        warnings = tuple(checkin_warnings(kr.effective_baseline, kr.effective_target, value,
                                          names["value"]))
    return ValidCheckin(kr, value, chosen, note, warnings)


def checkin_warnings(baseline: float, target: float | None, value: float,
                     label: str = "--value") -> list[str]:
    """Why a checked-in value looks like a typo (it is stored all the same): far outside
    baseline..target (by more than their distance), or negative on a KR that starts and
    ends at or above zero."""
    if target is None:
        return []
    start = baseline
    low, high = min(start, target), max(start, target)
    span = high - low
    warnings = []
    if low >= 0 > value:
        warnings.append(f"{label} {value:g} is negative; baseline and target are not")
    elif not low - span <= value <= high + span:
        warnings.append(f"{label} {value:g} is far outside baseline {start:g} .. target "
                        f"{target:g} (accepted: {low - span:g} .. {high + span:g})")
    return warnings


def kr_owner(plan: Plan, kr_id: str) -> str | None:
    """Who answers for a KR: its ``owner``, else its objective's."""
    for objective, kr in plan.key_results():
        if kr.id == kr_id:
            return kr.owner or objective.owner
    return None


def person_of_slack_user(plan: Plan, user_id: str) -> str | None:
    """The ``people`` key whose ``slack`` id is ``user_id``, if any."""
    for key, person in plan.people.items():
        if person.slack is not None and person.slack == user_id:
            return key
    return None


def may_check_in(plan: Plan, kr_id: str, person: str | None) -> bool:
    """Whether ``person`` (a ``people`` key, None for someone the plan does not know) may
    check in ``kr_id`` from a chat: its owners, ``checkins.allowed``, or anyone."""
    if plan.checkins.allows_anyone():
        return True
    if person is None:
        return False
    return person == kr_owner(plan, kr_id) or person in plan.checkins.allowed
