"""Slack's check-in surfaces: the "Check in" buttons, the check-in modal, and the
answers of ``/okr status``, ``/okr explain`` and ``/okr help``.

Pure, like the rest of :mod:`okr_sync.sync.delivery.render`: the service's Slack
endpoint (:mod:`okr_sync.sync.service.slack_interactions`) sends what these return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from okr_sync.scoring.scorecard import CONFIDENCE_ORDER, KeyResultScore, Scorecard
from okr_sync.sync.delivery.render.common import (
    confidence_label,
    format_as_of,
    freshness_text,
    kr_value_text,
    percent,
)
from okr_sync.sync.delivery.render.slack_blocks import (
    Block,
    context_block,
    mrkdwn_id,
    mrkdwn_text,
    section_block,
)
from okr_sync.sync.store.records import Checkin

#: ``action_id`` of a "Check in" button: this prefix, then the KR id (its ``value`` too).
CHECKIN_ACTION = "okr_checkin"
#: ``callback_id`` of the check-in modal; its ``private_metadata`` is the KR id.
CHECKIN_VIEW = "okr_checkin_view"
#: The modal's inputs: (block_id, action_id).
VALUE_INPUT = ("value", "value_input")
CONFIDENCE_INPUT = ("confidence", "confidence_select")
NOTE_INPUT = ("note", "note_input")
#: Slack's limits: button text 75, action_id 255, value 2000; at most 25 per actions block.
BUTTON_TEXT_LIMIT = 75
ACTIONS_MAX_ELEMENTS = 25
BUTTON_HINT = ("Press *Check in* to record a value, a confidence or a note, or type "
               "`/okr checkin KR VALUE \"note\"`.")
HELP_TEXT = "\n".join([
    "*okr-sync in Slack*",
    "`/okr checkin KR [VALUE] [on_track|at_risk|off_track|blocked] [\"note\"]`: record a "
    "check-in (a value on manual KRs only)",
    "`/okr status`: the latest scorecard (only you see it)",
    "`/okr explain KR`: how a key result's score was reached",
    "`/okr help`: this text",
])


def checkin_button(kr_id: str) -> Block:
    label = f"Check in {kr_id}"
    if len(label) > BUTTON_TEXT_LIMIT:
        label = label[: BUTTON_TEXT_LIMIT - 1] + "…"
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": False},
            "action_id": f"{CHECKIN_ACTION}:{kr_id}"[:255], "value": kr_id[:2000]}


def checkin_actions(kr_ids: Sequence[str]) -> list[Block]:
    """``actions`` blocks of "Check in" buttons, 25 to a block, for ``kr_ids``."""
    return [
        {"type": "actions", "block_id": f"{CHECKIN_ACTION}_{n}",
         "elements": [checkin_button(k) for k in kr_ids[start:start + ACTIONS_MAX_ELEMENTS]]}
        for n, start in enumerate(range(0, len(kr_ids), ACTIONS_MAX_ELEMENTS))
    ]


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[:limit - 1] + "…"}


def checkin_modal(kr_id: str, title: str, *, manual: bool, now_text: str) -> dict[str, Any]:
    """The modal ``views.open`` shows for a "Check in" button: a value (manual KRs only),
    a confidence and a note."""
    options = [{"text": _plain(confidence_label(c), 75), "value": c} for c in CONFIDENCE_ORDER]
    blocks: list[Block] = [
        section_block(f"*{mrkdwn_id(kr_id)}* {mrkdwn_text(title, 200)}\nnow "
                      f"{mrkdwn_text(now_text, 200)}"),
    ]
    if manual:
        blocks.append({
            "type": "input", "block_id": VALUE_INPUT[0], "optional": True,
            "label": _plain("Value", 2000),
            "element": {"type": "plain_text_input", "action_id": VALUE_INPUT[1],
                        "placeholder": _plain("e.g. 4", 150)},
        })
    blocks += [
        {
            "type": "input", "block_id": CONFIDENCE_INPUT[0], "optional": True,
            "label": _plain("Confidence", 2000),
            "element": {"type": "static_select", "action_id": CONFIDENCE_INPUT[1],
                        "options": options},
        },
        {
            "type": "input", "block_id": NOTE_INPUT[0], "optional": True,
            "label": _plain("Note", 2000),
            "element": {"type": "plain_text_input", "action_id": NOTE_INPUT[1],
                        "multiline": True, "max_length": 3000},
        },
    ]
    return {
        "type": "modal", "callback_id": CHECKIN_VIEW, "private_metadata": kr_id[:3000],
        "title": _plain("Check in", 24), "submit": _plain("Check in", 24),
        "close": _plain("Cancel", 24), "blocks": blocks,
    }


def kr_status_line(kr: KeyResultScore, now: datetime) -> str:
    """``*CO-1.KR1* Title: 42% · on track · 4 / 10`` with its stale marker, if any."""
    line = (f"*{mrkdwn_id(kr.id)}* {mrkdwn_text(kr.title, 120)}: {percent(kr.score)} · "
            f"{confidence_label(kr.confidence)} · {mrkdwn_text(kr_value_text(kr), 200)}")
    fresh = freshness_text(kr, now)
    return line + (f" · _{fresh}_" if fresh else "")


def explain_blocks(kr: KeyResultScore, scorecard: Scorecard, checkins: Sequence[Checkin],
                   reasons: Sequence[str], now: datetime,
                   authors: dict[str, str]) -> list[Block]:
    """``/okr explain KR``: the KR's standing in the latest scorecard, why it last moved,
    and its latest check-ins with who made them."""
    lines = [kr_status_line(kr, now),
             f"measured by `{mrkdwn_text(kr.measure_kind, 40)}`"
             + (f" · owner {mrkdwn_text(kr.owner, 120)}" if kr.owner else "")]
    if reasons:
        lines.append(f"last change: _{mrkdwn_text(', '.join(reasons), 400)}_")
    for c in checkins[:5]:
        parts = [c.at.date().isoformat()]
        if c.author:
            parts.append(mrkdwn_text(authors.get(c.author, c.author), 80))
        if c.value is not None:
            parts.append(f"value {c.value:g}")
        if c.confidence is not None:
            parts.append(confidence_label(c.confidence))
        if c.note:
            parts.append(f"“{mrkdwn_text(c.note, 300)}”")
        lines.append("• check-in " + " · ".join(parts))
    return [section_block("\n".join(lines)[:3000]),
            context_block([f"Scorecard as of {format_as_of(scorecard.cycle.as_of)} · "
                           f"`okr-sync explain {mrkdwn_id(kr.id)}` shows the arithmetic"])]
