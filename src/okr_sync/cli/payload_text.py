"""Plain-text renderings of what was posted: Slack Block Kit blocks and Adaptive Cards.

``okr-sync demo`` shows what the Slack message and the Teams card look like on a
terminal. These functions read the payloads as they were sent (recorded by the
sandboxes), so the text shows exactly what a channel received; they are pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

INDENT = "  "
DIVIDER = "-" * 40
# Slack mrkdwn links are <url|label>; a bare <url> shows the url.
_SLACK_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>|<([^<>|]+)>")
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
# CommonMark backslash escapes, as the Teams renderer writes them into markdown fields.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _slack_text(text: str) -> str:
    shown = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(3), text)
    for entity, char in _SLACK_ENTITIES:
        shown = shown.replace(entity, char)
    return shown


def _text_object(value: Any) -> str:
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return str(value.get("alt_text", ""))
        return _slack_text(str(value.get("text", "")))
    return ""


def _lines(text: str, depth: int) -> list[str]:
    return [INDENT * depth + line for line in text.splitlines() if line.strip()]


def slack_blocks_as_text(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Block Kit blocks as text lines: headers, sections (fields indented), contexts,
    dividers; a block type without text shows nothing."""
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "divider":
            out.append(DIVIDER)
        elif kind in ("header", "section"):
            out.extend(_lines(_text_object(block.get("text")), 0))
            for field in block.get("fields") or ():
                out.extend(_lines(_text_object(field), 1))
        elif kind == "context":
            parts = [_text_object(e) for e in block.get("elements") or ()]
            out.extend(_lines("  ".join(p for p in parts if p), 0))
    return out


def _markdown(text: Any) -> str:
    return _MARKDOWN_ESCAPE.sub(r"\1", str(text))


def _card_elements(elements: Iterable[Mapping[str, Any]], depth: int) -> list[str]:
    out: list[str] = []
    for element in elements:
        kind = element.get("type")
        if kind == "TextBlock":
            out.extend(_lines(_markdown(element.get("text", "")), depth))
        elif kind == "RichTextBlock":
            runs = element.get("inlines") or ()
            out.extend(_lines("".join(
                r if isinstance(r, str) else str(r.get("text", "")) for r in runs), depth))
        elif kind == "FactSet":
            for fact in element.get("facts") or ():
                out.extend(_lines(f"{_markdown(fact.get('title', ''))}: "
                                  f"{_markdown(fact.get('value', ''))}", depth))
        elif kind in ("Container", "Column"):
            out.extend(_card_elements(element.get("items") or (), depth + 1))
        elif kind == "ColumnSet":
            for column in element.get("columns") or ():
                out.extend(_card_elements(column.get("items") or (), depth))
        elif kind == "ActionSet":
            titles = [str(a.get("title", "")) for a in element.get("actions") or ()]
            out.extend(_lines(" ".join(f"[{t}]" for t in titles if t), depth))
    return out


def adaptive_card_as_text(card: Mapping[str, Any]) -> list[str]:
    """An Adaptive Card's text (TextBlocks, RichTextBlocks, facts, actions) as lines, each
    container nesting level indented once more."""
    lines = _card_elements(card.get("body") or (), 0)
    titles = [str(a.get("title", "")) for a in card.get("actions") or ()]
    if any(titles):
        lines.append(" ".join(f"[{t}]" for t in titles if t))
    return lines
