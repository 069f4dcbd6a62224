"""Adaptive Card 1.5 building blocks, text safety, envelopes and size accounting for Teams.

Text safety: a TextBlock (and a Fact's title and value, and ``fallbackText``)
is parsed as a markdown subset, so a plan or Jira title could inject links or
formatting there. Untrusted text therefore goes into ``TextRun`` inlines of a
``RichTextBlock`` wherever possible: the 1.5 schema states that a TextRun does
not support markdown, so it shows text literally with no escaping at all. Where
markdown-parsed fields are the only choice (FactSet, ``fallbackText``),
:func:`escape_teams_markdown` backslash-escapes every markdown control character
(CommonMark escapes), so ``[x](https://evil)`` cannot become a link. Links are
made by us only, as ``Action.OpenUrl`` on a TextRun, with http(s) targets.
Teams shows ``<at>`` mentions only when the card declares a mention entity
(``msteams.entities``): we declare one only for an owner the plan maps to a Teams
(Entra) id, in change notes and reminders, and plan or Jira text never reaches a
TextBlock unescaped, so ``<at>``/``<!channel>``-style text in it pings nobody.
"""

from __future__ import annotations

import json
import re
from typing import Any

from okr_sync.sync.delivery.render.common import Link, truncate

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
#: Teams refuses messages above about 28 KB.
TEAMS_MAX_BYTES = 28_000
#: What a rendered envelope may weigh, leaving room for fields a sender adds.
TEAMS_CARD_BUDGET = 26_000
FALLBACK_TEXT_LIMIT = 600

Element = dict[str, Any]

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~\[\](){}<>#|!])")
_BULLET_START = re.compile(r"^(\s*)([-+])(?=\s)")
_NUMBER_START = re.compile(r"^(\s*\d+)\.(?=\s)")


def escape_teams_markdown(text: str) -> str:
    """Backslash-escape markdown control characters, and a leading list marker."""
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", text)
    escaped = _BULLET_START.sub(r"\1\\\2", escaped)
    return _NUMBER_START.sub(r"\1\\.", escaped)


def safe_markdown(text: str, limit: int) -> str:
    """Untrusted text for a markdown-parsed field: truncated first, then escaped."""
    return escape_teams_markdown(truncate(text, limit))


def text_run(
    text: str,
    *,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    italic: bool = False,
    monospace: bool = False,
    link: Link | None = None,
) -> Element:
    """A literal run of text (no markdown), optionally a hyperlink opening ``link``."""
    run: Element = {"type": "TextRun", "text": text}
    if weight is not None:
        run["weight"] = weight
    if size is not None:
        run["size"] = size
    if color is not None:
        run["color"] = color
    if subtle:
        run["isSubtle"] = True
    if italic:
        run["italic"] = True
    if monospace:
        run["fontType"] = "monospace"
    if link is not None:
        run["selectAction"] = {"type": "Action.OpenUrl", "url": link.url, "title": link.label}
    return run


def rich_text(
    runs: list[Element], *, spacing: str | None = None, separator: bool = False
) -> Element:
    block: Element = {"type": "RichTextBlock", "inlines": runs}
    if spacing is not None:
        block["spacing"] = spacing
    if separator:
        block["separator"] = True
    return block


def text_block(
    text: str,
    *,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    spacing: str | None = None,
    heading: bool = False,
) -> Element:
    """A TextBlock for text we compose ourselves (markdown-parsed: never pass raw plan text)."""
    block: Element = {"type": "TextBlock", "text": text, "wrap": True}
    if heading:
        block["style"] = "heading"
    for key, value in (("weight", weight), ("size", size), ("color", color), ("spacing", spacing)):
        if value is not None:
            block[key] = value
    if subtle:
        block["isSubtle"] = True
    return block


def fact_set(facts: list[tuple[str, str]]) -> Element:
    """Facts given as already-safe (escaped or self-composed) title/value pairs."""
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}


def container(
    items: list[Element], *, separator: bool = False, spacing: str | None = None
) -> Element:
    block: Element = {"type": "Container", "items": items}
    if separator:
        block["separator"] = True
    if spacing is not None:
        block["spacing"] = spacing
    return block


def columns(main: list[Element], side: list[Element]) -> Element:
    return {
        "type": "ColumnSet",
        "columns": [
            {"type": "Column", "width": "stretch", "items": main},
            {"type": "Column", "width": "auto", "items": side},
        ],
    }


def mention(name: str, teams_id: str, limit: int = 80) -> tuple[str, Element]:
    """The ``<at>name</at>`` text to put in a TextBlock and its mention entity.

    The entity's ``text`` must equal the text in the card, so both use the same
    escaped name; ``teams_id`` is the person's Entra object id (checked by the plan).
    """
    text = f"<at>{safe_markdown(name, limit)}</at>"
    return text, {"type": "mention", "text": text,
                  "mentioned": {"id": teams_id, "name": truncate(name, limit)}}


def adaptive_card(
    body: list[Element], *, fallback_text: str, actions: list[Element] | None = None,
    mentions: list[Element] | None = None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "fallbackText": fallback_text,
    }
    if actions:
        card["actions"] = actions
    if mentions:
        # Teams' extension of the card (outside the 1.5 schema, which Teams strips).
        unique = {(m["text"], m["mentioned"]["id"]): m for m in mentions}
        card["msteams"] = {"entities": list(unique.values())}
    return card


def _attachment(card: dict[str, Any], *, with_content_url: bool) -> dict[str, Any]:
    attachment: dict[str, Any] = {"contentType": CARD_CONTENT_TYPE}
    if with_content_url:
        attachment["contentUrl"] = None
    attachment["content"] = card
    return attachment


def teams_message_envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The body a Teams Workflows webhook expects: one message with the card attached."""
    return {"type": "message", "attachments": [_attachment(card, with_content_url=True)]}


#: Bot Framework activity ``summary``: what a notification or the activity feed shows
#: for a card (instead of "sent a card").
SUMMARY_LIMIT = 200


def teams_bot_activity(card: dict[str, Any], summary: str | None = None) -> dict[str, Any]:
    """A Bot Framework message activity carrying the card (to post, or to PUT as an update).

    ``summary`` (plain text, cut to :data:`SUMMARY_LIMIT`) is the activity's
    ``summary``, the text Teams notifications show for it.
    """
    activity: dict[str, Any] = {"type": "message"}
    if summary:
        activity["summary"] = truncate(summary, SUMMARY_LIMIT)
    activity["attachments"] = [_attachment(card, with_content_url=False)]
    return activity


def payload_bytes(payload: dict[str, Any]) -> int:
    """Size on the wire, the larger of ASCII-escaped JSON (``requests``' ``json=``) and UTF-8."""
    as_ascii = len(json.dumps(payload).encode("utf-8"))
    as_utf8 = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    return max(as_ascii, as_utf8)


def card_fits(card: dict[str, Any], budget: int = TEAMS_CARD_BUDGET) -> bool:
    return payload_bytes(teams_message_envelope(card)) <= budget
