"""Reading what Slack sends serve: slash command text and interaction payloads.

Pure parsing, no I/O: :mod:`okr_sync.sync.service.slack_interactions` verifies the
request first and acts on what these return.
"""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okr_sync.config.plan import Plan
from okr_sync.scoring.scorecard import CONFIDENCE_ORDER
from okr_sync.sync.delivery.render.slack_checkin import (
    CONFIDENCE_INPUT,
    NOTE_INPUT,
    VALUE_INPUT,
)

#: Quotes a phone or Slack's editor may turn ``"`` and ``'`` into.
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'",
                               "\u2019": "'"})


class SlackRequestError(ValueError):
    """What Slack sent cannot be read (the message is shown to the person)."""


@dataclass(frozen=True)
class SlashCommand:
    """``/okr <subcommand> <args>`` with who typed it and where to answer."""

    subcommand: str
    args: tuple[str, ...]
    user_id: str
    response_url: str | None


@dataclass(frozen=True)
class CheckinWords:
    """``checkin KR [VALUE] [CONFIDENCE] [note...]`` read into its parts (not validated)."""

    kr_id: str
    value: float | None
    confidence: str | None
    note: str | None


def parse_slash_command(form: Mapping[str, str]) -> SlashCommand:
    text = (form.get("text") or "").translate(_SMART_QUOTES)
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise SlackRequestError(f"could not read the command: {error}") from None
    user = form.get("user_id") or ""
    subcommand = words[0].lower() if words else "help"
    return SlashCommand(subcommand, tuple(words[1:]), user, form.get("response_url") or None)


def _number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def parse_checkin_words(args: tuple[str, ...]) -> CheckinWords:
    """``CO-1.KR1 4 at_risk "signed two more"``: the value is the first word after the KR
    when it is a number (``nan`` and ``inf`` are numbers here, refused by validation);
    a confidence name may follow; every other word is the note."""
    if not args:
        raise SlackRequestError("give the key result: /okr checkin KR [VALUE] "
                                "[on_track|at_risk|off_track|blocked] [\"note\"]")
    kr_id, rest = args[0], list(args[1:])
    value = _number(rest[0]) if rest else None
    if value is not None:
        rest.pop(0)
    confidence = None
    if rest and rest[0].lower() in CONFIDENCE_ORDER:
        confidence = rest.pop(0).lower()
    note = " ".join(rest).strip() or None
    return CheckinWords(kr_id, value, confidence, note)


def unknown_kr_message(plan: Plan, kr_id: str) -> str | None:
    """None when ``kr_id`` is a KR of the plan, else what to tell the person."""
    ids = [kr.id for _, kr in plan.key_results()]
    if kr_id in ids:
        return None
    close = difflib.get_close_matches(kr_id, ids, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else ""
    return f"unknown key result {kr_id!r}{hint}"


def interaction_payload(form: Mapping[str, str]) -> dict[str, Any]:
    """The JSON ``payload`` field of an interaction request."""
    try:
        payload = json.loads(form.get("payload") or "")
    except ValueError:
        raise SlackRequestError("the interaction payload is not JSON") from None
    if not isinstance(payload, dict):
        raise SlackRequestError("the interaction payload is not an object")
    return payload


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def user_id(payload: Mapping[str, Any]) -> str:
    return str(_object(payload.get("user")).get("id") or "")


@dataclass(frozen=True)
class ModalValues:
    """The check-in modal's inputs as typed (the value still text)."""

    value_text: str | None
    confidence: str | None
    note: str | None


def modal_values(view: Mapping[str, Any]) -> ModalValues:
    values = _object(_object(view.get("state")).get("values"))

    def field(block_action: tuple[str, str]) -> dict[str, Any]:
        return _object(_object(values.get(block_action[0])).get(block_action[1]))

    value = field(VALUE_INPUT).get("value")
    option = _object(field(CONFIDENCE_INPUT).get("selected_option")).get("value")
    note = field(NOTE_INPUT).get("value")

    def text(raw: Any) -> str | None:
        return raw.strip() or None if isinstance(raw, str) else None

    return ModalValues(text(value), text(option), text(note))


def parse_modal_value(text: str | None) -> float | None:
    """The modal's value, or SlackRequestError when it is not a number."""
    if text is None:
        return None
    number = _number(text)
    if number is None:
        raise SlackRequestError(f"{text!r} is not a number (e.g. 4 or 12.5)")
    return number
