"""Block Kit building blocks: mrkdwn escaping, Slack's limits, and blocks that respect them.

Every text that comes from Jira or the plan goes through :func:`mrkdwn_text`
(escape ``&``, ``<`` and ``>``, and nothing else, as Slack specifies), so
``<!channel>`` in an issue title is shown literally and pings nobody. mrkdwn text
objects also carry ``verbatim: true``, which stops Slack from auto-linking bare
``@channel``, ``#channel`` names and URLs typed in a title.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from okr_sync.sync.delivery.render.common import (
    ELLIPSIS,
    ID_LIMIT,
    Link,
    balance_bidi,
    cut_graphemes,
    plural,
    text_units,
    truncate,
)

SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT_LIMIT = 3000
SLACK_HEADER_LIMIT = 150
SLACK_MAX_FIELDS = 10
SLACK_FIELD_LIMIT = 2000
SLACK_CONTEXT_MAX_ELEMENTS = 10
SLACK_CONTEXT_TEXT_LIMIT = 2000
#: Slack refuses messages with ``msg_blocks_too_long`` from about 13k characters of
#: block text even when every block is within its own limit; stay well below.
SLACK_TOTAL_TEXT_BUDGET = 11_000
#: The notification/fallback ``text``; Slack accepts far more, people read far less.
SLACK_FALLBACK_TEXT_LIMIT = 3000

Block = dict[str, Any]

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def escape_mrkdwn(text: str) -> str:
    """Escape text for Slack mrkdwn: only ``&``, ``<`` and ``>``, as Slack requires."""
    return text.translate(_ESCAPE_TABLE)


def mrkdwn_text(text: str, limit: int) -> str:
    """Escape ``text`` and cut it so the *escaped* result is at most ``limit`` units.

    Cutting after escaping could split an entity (``&am…``); cutting before could
    overflow the limit, since one ``&`` becomes five characters. So the cut is
    made on whole escaped grapheme clusters (never inside an emoji sequence), and
    bidi controls the text opens are closed at its end. Whitespace runs collapse
    to one space.
    """
    flat = balance_bidi(" ".join(text.split()))
    escaped = escape_mrkdwn(flat)
    if text_units(escaped) <= limit:
        return escaped
    return cut_graphemes(flat, limit, escape_mrkdwn)


def mrkdwn_id(value: str) -> str:
    """An escaped plan id (objective, KR, KPI), cut to :data:`ID_LIMIT` units."""
    return mrkdwn_text(value, ID_LIMIT)


def mrkdwn_link(link: Link) -> str:
    """``<url|label>``: the URL is already percent-encoded for ``|``/``>``; ``&`` is escaped."""
    return f"<{escape_mrkdwn(link.url)}|{escape_mrkdwn(link.label)}>"


def _mrkdwn_object(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def header_block(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(text, SLACK_HEADER_LIMIT), "emoji": True},
    }


def section_block(text: str, fields: Sequence[str] = ()) -> Block:
    """A section of already-escaped mrkdwn, which the caller composed within the limits."""
    if text_units(text) > SLACK_SECTION_TEXT_LIMIT or len(fields) > SLACK_MAX_FIELDS:
        raise ValueError("section composed beyond Slack's limits")
    if any(text_units(field) > SLACK_FIELD_LIMIT for field in fields):
        raise ValueError("section field composed beyond Slack's limit")
    block: Block = {"type": "section"}
    if text:
        block["text"] = _mrkdwn_object(text)
    if fields:
        block["fields"] = [_mrkdwn_object(field) for field in fields]
    return block


def context_block(elements: Sequence[str]) -> Block:
    """A context of already-escaped mrkdwn elements (at most ten, each within the limit)."""
    if not elements or len(elements) > SLACK_CONTEXT_MAX_ELEMENTS:
        raise ValueError("a context block holds 1 to 10 elements")
    if any(text_units(element) > SLACK_CONTEXT_TEXT_LIMIT for element in elements):
        raise ValueError("context element composed beyond the limit")
    return {"type": "context", "elements": [_mrkdwn_object(element) for element in elements]}


def divider_block() -> Block:
    return {"type": "divider"}


@dataclass(frozen=True)
class Packed:
    """Lines joined into one text within a limit, and how many did not fit."""

    text: str
    shown: int
    omitted: int


def pack_lines(
    lines: Sequence[str],
    limit: int,
    noun: str,
    *,
    heading: str = "",
    already_omitted: int = 0,
) -> Packed:
    """Join whole lines (never cut one) under ``heading``, adding "…and N more <noun>s".

    ``already_omitted`` counts items the caller left out before packing, so the
    closing line reports the true total. Lines are assumed short (titles are
    truncated), so at least the heading and the closing line always fit.
    """
    kept: list[str] = [heading] if heading else []

    def closing(count: int) -> str:
        return f"{ELLIPSIS}and {plural(count, 'more ' + noun)}"

    def total(extra: Iterable[str]) -> int:
        return text_units("\n".join([*kept, *extra]))

    shown = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index - 1 + already_omitted
        tail = [closing(rest)] if rest else []
        if total([line, *tail]) > limit:
            break
        kept.append(line)
        shown += 1
    omitted = len(lines) - shown + already_omitted
    if omitted:
        kept.append(closing(omitted))
    return Packed(text="\n".join(kept), shown=shown, omitted=omitted)


def spread_lines(
    lines: Sequence[str],
    noun: str,
    *,
    budget: int,
    max_blocks: int,
    already_omitted: int = 0,
) -> list[Block]:
    """Whole lines over as many sections as needed, then "…and N more <noun>s" if any are left.

    At most ``max_blocks`` blocks and about ``budget`` units of text in all (the
    closing context is small and reserved for). ``already_omitted`` counts items
    the caller left out before, so the closing line reports the true total.
    """
    closing_reserve = 40
    blocks: list[Block] = []
    used = 0
    index = 0
    while index < len(lines) and len(blocks) < max_blocks - 1:
        room = min(SLACK_SECTION_TEXT_LIMIT, budget - used - closing_reserve)
        kept: list[str] = []
        while index < len(lines) and text_units("\n".join([*kept, lines[index]])) <= room:
            kept.append(lines[index])
            index += 1
        if not kept:
            break
        text = "\n".join(kept)
        blocks.append(section_block(text))
        used += text_units(text)
    omitted = len(lines) - index + already_omitted
    if omitted:
        blocks.append(context_block([f"{ELLIPSIS}and {plural(omitted, 'more ' + noun)}"]))
    return blocks


def block_text_units(blocks: Iterable[Block]) -> int:
    """Total length of the text Slack counts towards ``msg_blocks_too_long``."""
    total = 0
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            total += text_units(str(text.get("text", "")))
        for item in [*block.get("fields", []), *block.get("elements", [])]:
            if isinstance(item, dict):
                total += text_units(str(item.get("text", "")))
    return total


@dataclass(frozen=True)
class SlackPayload:
    """One Slack message: the ``text`` fallback (already escaped) and its Block Kit ``blocks``.

    The sender adds ``channel`` (and ``ts`` to edit, or ``thread_ts`` for a reply).
    """

    text: str
    blocks: tuple[Block, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``text`` and ``blocks`` arguments of ``chat.postMessage`` / ``chat.update``."""
        return {"text": self.text, "blocks": copy.deepcopy(list(self.blocks))}

    def fits(self) -> bool:
        return (
            len(self.blocks) <= SLACK_MAX_BLOCKS
            and block_text_units(self.blocks) <= SLACK_TOTAL_TEXT_BUDGET
            and text_units(self.text) <= SLACK_FALLBACK_TEXT_LIMIT
        )


def fallback_text(head: str, items: Sequence[str], noun: str) -> str:
    """The plain ``text`` of a message: an escaped head and as many items as fit."""
    packed = pack_lines(
        [f"• {item}" for item in items], SLACK_FALLBACK_TEXT_LIMIT, noun, heading=head
    )
    return packed.text
