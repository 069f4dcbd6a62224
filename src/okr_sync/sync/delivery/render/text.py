"""Cutting and isolating outside text for chat surfaces: UTF-16 lengths, grapheme-safe
truncation and balanced bidi controls. Everything returns raw text (not escaped).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

ELLIPSIS = "…"


def text_units(text: str) -> int:
    """Length as counted by a JavaScript/UTF-16 backend: never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


#: Bidi controls that open an embedding, override or isolate, and what closes each.
_BIDI_CLOSER_OF = {
    "\u202a": "\u202c", "\u202b": "\u202c", "\u202d": "\u202c", "\u202e": "\u202c",
    "\u2066": "\u2069", "\u2067": "\u2069", "\u2068": "\u2069",
}
_BIDI_CLOSERS = frozenset(_BIDI_CLOSER_OF.values())
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _bidi_step(stack: list[str], char: str) -> bool:
    """Track one character's effect on the open bidi controls; False: drop it."""
    closer = _BIDI_CLOSER_OF.get(char)
    if closer is not None:
        stack.append(closer)
    elif char in _BIDI_CLOSERS:
        if not stack or stack[-1] != char:
            return False  # closes nothing of this text: it would close the surface's own
        stack.pop()
    return True


def balance_bidi(text: str) -> str:
    """``text`` with every bidi embedding, override and isolate it opens closed at its end.

    An unclosed RIGHT-TO-LEFT OVERRIDE (U+202E) in a title would otherwise reverse
    everything after it on the line (the score, the next title); a stray closer is
    dropped, since it could only close something of the message around it.
    """
    if _BIDI_CONTROL.search(text) is None:  # the common case, checked in C
        return text
    stack: list[str] = []
    kept = [char for char in text if _bidi_step(stack, char)]
    return "".join(kept) + "".join(reversed(stack))


@functools.cache
def _grapheme_cluster() -> Any:
    # `regex` is imported on first use: only a cut needs it.
    import regex

    return regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """User-perceived characters: an emoji ZWJ sequence, a flag, a skin tone or a letter
    with its combining marks is one, and is never cut apart."""
    found: list[str] = _grapheme_cluster().findall(text)
    return found


def cut_graphemes(text: str, limit: int, render: Callable[[str], str] = str) -> str:
    """Whole grapheme clusters of ``text`` (each shown as ``render`` makes it) within
    ``limit`` units, an ellipsis, and the closers of any bidi control left open.

    ``render`` never shortens a cluster (it escapes), so at most ``limit`` code points
    are kept; a boundary depends only on the characters around it, so segmenting the
    first ``limit + 1`` of them finds the same clusters as the whole text would.
    """
    head = text[: max(0, limit) + 1]
    pieces: list[str] = []
    stack: list[str] = []
    used = text_units(ELLIPSIS)
    bidi = _BIDI_CONTROL.search(head) is not None
    for cluster in _grapheme_cluster().findall(head):
        trial = stack
        if bidi and _BIDI_CONTROL.search(cluster) is not None:
            trial = list(stack)
            cluster = "".join(c for c in cluster if _bidi_step(trial, c))
        piece = cluster if render is str else render(cluster)
        size = text_units(piece)
        if used + size + len(trial) > limit:
            break
        pieces.append(piece)
        stack = trial
        used += size
    return "".join(pieces).rstrip() + "".join(reversed(stack)) + ELLIPSIS


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-16 units, ending in an ellipsis if cut.

    Whitespace runs (including newlines) collapse to one space first: titles
    are shown on one line and a newline in a plan title must not break layout.
    The cut falls between grapheme clusters, and bidi controls opened in ``text``
    are closed at its end (:func:`balance_bidi`), so that nothing after the field
    is reversed.
    """
    flat = balance_bidi(" ".join(text.split()))
    if text_units(flat) <= limit:
        return flat
    return cut_graphemes(flat, limit)
