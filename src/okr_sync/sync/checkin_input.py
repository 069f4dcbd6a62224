"""A check-in as people give it (the CLI, a Teams card, a Slack modal), checked before storing.

One set of rules for every surface: the KR must exist (else a "did you mean"),
only a manual KR takes a value, a value is a finite number within the plan's
bounds (NaN would be stored as NULL, inf would make every later pass fail),
the confidence is one of the four, and something is given at all. A surface
names its own fields in the messages (``--value`` on the command line,
``value`` on a card).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from okr_sync.config.plan import KeyResult, Plan
    from okr_sync.scoring.scorecard import Confidence

#: How many valid ids an unknown-id message lists when nothing is close.
MAX_LISTED_IDS = 10
#: A note longer than this is refused rather than cut (a change note shows 300).
MAX_NOTE_CHARS = 2000


class CheckinInputError(ValueError):
    """A check-in that cannot be stored; the message is for the person who gave it."""


@dataclass(frozen=True)
class FieldNames:
    """How a surface names the check-in's fields in its messages."""

    value: str = "value"
    confidence: str = "confidence"
    note: str = "note"


CLI_FIELDS = FieldNames("--value", "--confidence", "--note")


@dataclass(frozen=True)
class CheckinInput:
    """A checked check-in, ready for ``Store.add_checkin``."""

    kr_id: str
    value: float | None
    confidence: Confidence | None
    note: str | None


def unknown_id_message(what: str, given: str, known: Iterable[str]) -> str:
    """``unknown key result 'X'``, with a "did you mean" or the valid ids (a few)."""
    ids = sorted(known)
    by_folded = {i.casefold(): i for i in ids}
    close = [by_folded[c] for c in difflib.get_close_matches(given.casefold(), by_folded, n=3)]
    if close:
        return f"unknown {what} {given!r}: did you mean {', '.join(close)}?"
    listed = ", ".join(ids[:MAX_LISTED_IDS]) + (", ..." if len(ids) > MAX_LISTED_IDS else "")
    return f"unknown {what} {given!r}; valid ids: {listed or 'none'}"


def find_key_result(plan: Plan, kr_id: str) -> KeyResult:
    """The plan's KR ``kr_id``, or a CheckinInputError with a "did you mean"."""
    known = [kr.id for _, kr in plan.key_results()]
    if kr_id not in known:
        raise CheckinInputError(unknown_id_message("key result", kr_id, known))
    return plan.key_result(kr_id)


def parse_confidence(text: str | None, names: FieldNames = CLI_FIELDS) -> Confidence | None:
    from okr_sync.scoring.scorecard import CONFIDENCE_ORDER

    if text is None:
        return None
    for option in CONFIDENCE_ORDER:
        if option == text:
            return option
    raise CheckinInputError(f"{names.confidence} must be one of {', '.join(CONFIDENCE_ORDER)}")


def parse_value_text(text: str, names: FieldNames) -> float:
    """A number typed into a form (``4``, ``4.5``, `` 1e3 ``), else a CheckinInputError."""
    try:
        return float(text.strip())
    except ValueError:
        raise CheckinInputError(f"{names.value} must be a number, not {text[:40]!r}") from None


def validate_checkin(
    plan: Plan,
    kr_id: str,
    *,
    value: float | None,
    confidence: str | None,
    note: str | None,
    names: FieldNames = CLI_FIELDS,
) -> CheckinInput:
    """The check-in, checked against the plan (see the module docstring)."""
    from okr_sync.config.plan import MAX_PLAN_NUMBER

    kr = find_key_result(plan, kr_id)
    if value is None and confidence is None and note is None:
        raise CheckinInputError(
            f"give at least one of {names.value}, {names.confidence}, {names.note}")
    if value is not None and kr.measure.kind != "manual":
        raise CheckinInputError(f"{kr_id} is measured from Jira ({kr.measure.kind}); "
                                f"only manual KRs take {names.value}")
    if value is not None and not (math.isfinite(value) and abs(value) <= MAX_PLAN_NUMBER):
        # inf would make every later pass fail; NaN would be stored as NULL.
        raise CheckinInputError(f"{names.value} must be a finite number within "
                                f"+-{MAX_PLAN_NUMBER:g}, not {value}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise CheckinInputError(f"{names.note} is longer than {MAX_NOTE_CHARS} characters")
    return CheckinInput(kr_id, value, parse_confidence(confidence, names), note)


def checkin_warnings(baseline: float, target: float | None, value: float,
                     names: FieldNames = CLI_FIELDS) -> list[str]:
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
        warnings.append(f"{names.value} {value:g} is negative; baseline and target are not")
    elif not low - span <= value <= high + span:
        warnings.append(f"{names.value} {value:g} is far outside baseline {start:g} .. target "
                        f"{target:g} (accepted: {low - span:g} .. {high + span:g})")
    return warnings
