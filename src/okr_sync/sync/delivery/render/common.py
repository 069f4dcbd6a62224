"""Formatting shared by the Slack and Teams renderers: numbers, bars, labels, links.

Everything here returns *raw* text (not escaped for any chat markup): each
renderer escapes at the last moment, with the rules of its own surface.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urljoin, urlsplit

from okr_sync.scoring.scorecard import (
    CONFIDENCE_ORDER,
    Change,
    CycleInfo,
    KeyResultScore,
    ObjectiveScore,
    Scorecard,
    TargetRange,
)

ELLIPSIS = "…"
BAR_WIDTH = 10
BAR_FULL = "▰"
BAR_EMPTY = "▱"

CONFIDENCE_LABELS: dict[str, str] = {
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "blocked": "blocked",
}

_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$")
_ISSUE_PATH = re.compile(r"/browse/([A-Z][A-Z0-9_]+-[1-9][0-9]*)/?$")
#: Characters percent-encoded in a link target. Chat link syntaxes end a URL at
#: `|`, `>` or `)`, so leaving them raw would let a URL smuggle in its own label.
_URL_UNSAFE = "".join(chr(c) for c in range(0x21)) + "\x7f <>|()\"'`[]{}\\^"


def text_units(text: str) -> int:
    """Length as counted by a JavaScript/UTF-16 backend: never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-16 units, ending in an ellipsis if cut.

    Whitespace runs (including newlines) collapse to one space first: titles
    are shown on one line and a newline in a plan title must not break layout.
    """
    flat = " ".join(text.split())
    if text_units(flat) <= limit:
        return flat
    kept: list[str] = []
    used = text_units(ELLIPSIS)
    for char in flat:
        size = text_units(char)
        if used + size > limit:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + ELLIPSIS


ID_LIMIT = 40
MAX_URL_LENGTH = 1000


def short_id(value: str) -> str:
    """Plan ids are short in practice; a long one must not blow a message's limits."""
    return truncate(value, ID_LIMIT)


#: What a KR or objective with no measured value shows instead of a score.
NOT_MEASURED = "not measured"


def percent(score: float | None) -> str:
    """``0.5333`` -> ``"53%"`` (half up, so 0.005 steps never flap with banker's rounding)."""
    if score is None:
        return "—"
    return f"{math.floor(score * 100 + 0.5)}%"


def delta_points(before: float, after: float | None) -> str:
    """Signed difference in percentage points, e.g. ``"+12 pp"`` (not story points)."""
    if after is None:
        return NOT_MEASURED
    points = math.floor(after * 100 + 0.5) - math.floor(before * 100 + 0.5)
    return f"{points:+d} pp"


def progress_bar(score: float | None, width: int = BAR_WIDTH) -> str:
    """A text bar; filled cells round down so only a complete score shows a full bar."""
    if score is None:
        return BAR_EMPTY * width
    clamped = min(1.0, max(0.0, score))
    filled = math.floor(clamped * width + 1e-9)
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def format_number(value: float | None) -> str:
    """Human-readable number: thousands separators, at most two decimals, no trailing zeros."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def confidence_label(confidence: str | None) -> str:
    if confidence is None:
        return "—"
    return CONFIDENCE_LABELS.get(confidence, confidence.replace("_", " "))


def measured_ago(measured_at: datetime, now: datetime) -> str:
    """``3h ago``, ``25m ago``, or the date for anything two days old or more."""
    age = now - measured_at
    if age >= timedelta(days=2):
        return measured_at.date().isoformat()
    if age >= timedelta(hours=1):
        return f"{int(age.total_seconds() // 3600)}h ago"
    return f"{max(0, int(age.total_seconds() // 60))}m ago"


def freshness_text(kr: KeyResultScore, now: datetime) -> str | None:
    """The stale marker of a KR (``stale · measured 3h ago``), or None when it is fresh."""
    if not kr.stale:
        return None
    if kr.measured_at is None:
        return "stale"
    return f"stale · measured {measured_ago(kr.measured_at, now)}"


def kr_value_text(kr: KeyResultScore) -> str:
    """What the KR measures now, against its target, in the KR's own terms."""
    if kr.value is None:
        return NOT_MEASURED
    items = ""
    if kr.items is not None:
        items = f"{format_number(kr.items.done)} of {format_number(kr.items.selected)} items"
    if isinstance(kr.target, TargetRange):
        shown = percent if kr.measure_kind == "done_ratio" else format_number
        span = f"{shown(kr.target.min)} to {shown(kr.target.max)}"
        return f"{shown(kr.value)} (stay within {span})"
    if kr.measure_kind == "done_ratio":
        main = f"{percent(kr.value)} done"
        main = f"{main} ({items})" if items else main
        if kr.expected is not None:
            main += f", {percent(kr.expected)} expected by now"
        return main
    if kr.measure_kind == "milestone":
        main = "reached" if kr.value >= 1 else "not reached"
        return f"{main} ({items} done)" if items else main
    if kr.direction == "at_least":
        return f"{format_number(kr.value)} (target ≥ {format_number(kr.target)})"
    if kr.direction == "at_most":
        return f"{format_number(kr.value)} (target ≤ {format_number(kr.target)})"
    if kr.baseline is not None and kr.baseline != 0:
        span = f"{format_number(kr.baseline)} → {format_number(kr.target)}"
        return f"{format_number(kr.value)} ({span}){_expected(kr)}"
    return f"{format_number(kr.value)} / {format_number(kr.target)}{_expected(kr)}"


def _expected(kr: KeyResultScore) -> str:
    """A phased KR's milestone path: what it should be at by now."""
    if kr.expected is None:
        return ""
    return f", {format_number(kr.expected)} expected by now"


def format_as_of(moment: datetime) -> str:
    """``2026-11-15 00:00 UTC``; a naive datetime is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    zone = aware.tzname() or "UTC"
    return f"{aware:%Y-%m-%d %H:%M} {zone}"


def epoch_seconds(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def cycle_line(cycle: CycleInfo) -> str:
    return (
        f"{truncate(cycle.name, 80)} · {cycle.start.isoformat()} → {cycle.end.isoformat()}"
        f" · {percent(cycle.elapsed)} of the cycle elapsed"
    )


@dataclass(frozen=True)
class Link:
    url: str
    label: str


def safe_url(url: str) -> str:
    """Percent-encode the characters that would end or break a chat link target."""
    return quote(url, safe="".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in _URL_UNSAFE))


def resolve_link(link: str, jira_base_url: str | None) -> Link | None:
    """An http(s) link to show for ``link``, or None when it is not one.

    ``link`` may be an absolute URL, a path on the Jira site, or a bare issue key
    (the last two need ``jira_base_url``). Other schemes (``javascript:``...) are dropped.
    """
    candidate = link.strip()
    if _ISSUE_KEY.match(candidate):
        if jira_base_url is None:
            return None
        candidate = urljoin(jira_base_url.rstrip("/") + "/", f"browse/{candidate}")
    elif candidate.startswith("/") and not candidate.startswith("//"):
        if jira_base_url is None:
            return None
        candidate = urljoin(jira_base_url.rstrip("/") + "/", candidate.lstrip("/"))
    parts = urlsplit(candidate)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    url = safe_url(candidate)
    if len(url) > MAX_URL_LENGTH:  # cutting a URL would break it; better no link
        return None
    issue = _ISSUE_PATH.search(parts.path)
    if issue is not None:
        label = issue.group(1)
    elif "jql" in parts.query or "filter" in parts.query or "/issues" in parts.path:
        label = "Jira filter"
    else:
        label = "Jira"
    return Link(url=url, label=label)


def kr_links(kr: KeyResultScore, jira_base_url: str | None) -> list[Link]:
    links: list[Link] = []
    seen: set[str] = set()
    for raw in kr.links:
        link = resolve_link(raw, jira_base_url)
        if link is not None and link.url not in seen:
            seen.add(link.url)
            links.append(link)
    return links


def objectives_in_tree_order(
    objectives: Sequence[ObjectiveScore],
) -> list[tuple[int, ObjectiveScore]]:
    """Objectives with their depth, each child right after its parent, plan order kept.

    An objective whose parent is absent from ``objectives`` is shown as a root.
    The walk is bounded: every objective is visited at most once, so a parent
    cycle (refused by the plan loader anyway) cannot loop.
    """
    ids = {objective.id for objective in objectives}
    children: dict[str, list[ObjectiveScore]] = {}
    roots: list[ObjectiveScore] = []
    for objective in objectives:
        if objective.parent is not None and objective.parent in ids:
            children.setdefault(objective.parent, []).append(objective)
        else:
            roots.append(objective)
    ordered: list[tuple[int, ObjectiveScore]] = []
    visited: set[str] = set()

    def visit(objective: ObjectiveScore, depth: int) -> None:
        if objective.id in visited:
            return
        visited.add(objective.id)
        ordered.append((depth, objective))
        for child in children.get(objective.id, []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    for objective in objectives:  # members of a parent cycle have no root
        visit(objective, 0)
    return ordered


def worst_first(krs: Iterable[KeyResultScore]) -> list[KeyResultScore]:
    """KRs ordered by confidence (blocked first), then by score, then by id."""
    rank = {name: index for index, name in enumerate(CONFIDENCE_ORDER)}
    # Unmeasured KRs go last: nothing about them is known to be bad.
    return sorted(krs, key=lambda kr: (
        kr.score is None,
        rank.get(kr.confidence, 0) if kr.confidence else 0,
        kr.score or 0.0, kr.id))


def confidence_counts(krs: Iterable[KeyResultScore]) -> dict[str, int]:
    """How many KRs are at each confidence, best first, zeros omitted."""
    counts = {name: 0 for name in reversed(CONFIDENCE_ORDER)}
    for kr in krs:
        if kr.confidence is not None:
            counts[kr.confidence] = counts.get(kr.confidence, 0) + 1
    return {name: count for name, count in counts.items() if count}


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


@dataclass(frozen=True)
class ChangeView:
    """A change joined with its KR, as the change notes show it."""

    change: Change
    kr: KeyResultScore | None

    @property
    def title(self) -> str:
        return self.kr.title if self.kr is not None else ""

    def score_text(self) -> str:
        change = self.change
        if change.from_score is None:
            return f"new, {percent(change.to_score)}"
        if percent(change.from_score) == percent(change.to_score):
            return f"{percent(change.to_score)} (score unchanged)"
        moved = delta_points(change.from_score, change.to_score)
        return f"{percent(change.from_score)} → {percent(change.to_score)} ({moved})"

    def transitions(self) -> list[str]:
        change = self.change
        parts: list[str] = []
        if None not in (change.from_band, change.to_band) and change.from_band != change.to_band:
            parts.append(f"band {change.from_band} → {change.to_band}")
        if (
            None not in (change.from_confidence, change.to_confidence)
            and change.from_confidence != change.to_confidence
        ):
            before = confidence_label(change.from_confidence)
            after = confidence_label(change.to_confidence)
            parts.append(f"{before} → {after}")
        return parts


def change_views(scorecard: Scorecard, changes: Iterable[Change]) -> list[ChangeView]:
    by_id = {kr.id: kr for kr in scorecard.key_results()}
    return [ChangeView(change=change, kr=by_id.get(change.kr)) for change in changes]


def manual_key_results(scorecard: Scorecard) -> list[KeyResultScore]:
    return [kr for kr in scorecard.key_results() if kr.measure_kind == "manual"]
