"""The check-in form on the bot's cards (``Action.Execute``) and the cards that answer it.

Each KR of a reminder or change note delivered by the bot gets a "Check in"
button (``Action.ShowCard``) that opens a form: the value (manual KRs only, as
on the command line), the confidence and a note, sent with ``Action.Execute``
(verb :data:`CHECKIN_VERB`, ``data.kr`` the KR id) to the bot's messaging
endpoint, which answers with one of the cards below. Input ids carry the KR id
(``value.CO-1.KR3``) because ids must be unique across a card that holds several
forms; :func:`form_field` reads them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from okr_sync.sync.delivery.render.common import format_number, short_id, truncate
from okr_sync.sync.delivery.render.teams_elements import (
    Element,
    adaptive_card,
    container,
    rich_text,
    text_block,
    text_run,
)

CHECKIN_VERB = "okr.checkin"
CHECKIN_FIELDS = ("value", "confidence", "note")
CONFIDENCE_CHOICES = (
    ("On track", "on_track"),
    ("At risk", "at_risk"),
    ("Off track", "off_track"),
    ("Blocked", "blocked"),
)
NOTE_MAX_LENGTH = 500

Card = dict[str, Any]


def input_id(field: str, kr_id: str) -> str:
    return f"{field}.{kr_id}"


def form_field(data: Mapping[str, Any], field: str, kr_id: str) -> str | None:
    """A form's input as Teams sends it back in ``action.data`` (stripped; None when empty)."""
    raw = data.get(input_id(field, kr_id), data.get(field))
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def checkin_form(kr_id: str, title: str, *, manual: bool) -> Element:
    """An ActionSet whose "Check in" button opens the KR's check-in form."""
    inputs: list[Element] = []
    if manual:
        inputs.append({"type": "Input.Number", "id": input_id("value", kr_id),
                       "label": "New value", "placeholder": "the KR's current value"})
    inputs.append({
        "type": "Input.ChoiceSet", "id": input_id("confidence", kr_id), "label": "Confidence",
        "style": "compact", "placeholder": "unchanged",
        "choices": [{"title": t, "value": v} for t, v in CONFIDENCE_CHOICES],
    })
    inputs.append({"type": "Input.Text", "id": input_id("note", kr_id), "label": "Note",
                   "isMultiline": True, "maxLength": NOTE_MAX_LENGTH,
                   "placeholder": "the story behind the number"})
    form = {
        "type": "AdaptiveCard",
        "body": [
            rich_text([text_run(f"Check in {short_id(kr_id)} ", weight="bolder"),
                       text_run(truncate(title, 120), subtle=True)]),
            *inputs,
        ],
        "actions": [{"type": "Action.Execute", "title": "Save check-in", "verb": CHECKIN_VERB,
                     "data": {"kr": kr_id}, "associatedInputs": "auto"}],
    }
    return {"type": "ActionSet", "spacing": "small",
            "actions": [{"type": "Action.ShowCard", "title": "Check in", "card": form}]}


def checkin_saved_card(
    kr_id: str, title: str, *, author: str, value: float | None, confidence: str | None,
    note: str | None, manual: bool, warnings: list[str],
) -> Card:
    """The refreshed card after a check-in is stored: what was recorded, by whom."""
    parts = []
    if value is not None:
        parts.append(f"value {format_number(value)}")
    if confidence is not None:
        parts.append(confidence.replace("_", " "))
    body: list[Element] = [
        rich_text([text_run(f"✅ Checked in {short_id(kr_id)} ", weight="bolder"),
                   text_run(truncate(title, 150))]),
        rich_text([text_run(truncate(f"by {author}: " + (", ".join(parts) or "a note"), 300),
                            subtle=True)], spacing="none"),
    ]
    if note is not None:
        body.append(rich_text([text_run("📝 " + truncate(note, 300), subtle=True)],
                              spacing="none"))
    body += [rich_text([text_run("⚠️ " + truncate(w, 300), color="warning")], spacing="none")
             for w in warnings]
    body.append(text_block("The next sync scores it; a change note tells the channel.",
                           subtle=True, size="small"))
    body.append(checkin_form(kr_id, title, manual=manual))
    return adaptive_card(body, fallback_text=f"Checked in {kr_id}")


def checkin_refused_card(message: str, *, kr_id: str | None = None, title: str | None = None,
                         manual: bool = False) -> Card:
    """The answer to a check-in that was not stored: why (and the form again, to fix it)."""
    items: list[Element] = [
        rich_text([text_run("Check-in not saved", weight="bolder", color="attention")]),
        rich_text([text_run(truncate(message, 500))], spacing="none"),
    ]
    if kr_id is not None:
        items.append(checkin_form(kr_id, title or kr_id, manual=manual))
    return adaptive_card([container(items)], fallback_text="Check-in not saved")


def checkin_repeated_card() -> Card:
    """The answer to a request already answered (the same activity sent again)."""
    return adaptive_card(
        [rich_text([text_run("This check-in was already received; it is stored once.",
                             subtle=True)])],
        fallback_text="Check-in already received")
