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

from okr_sync.scoring import display
from okr_sync.scoring.forecast import forecast_text
from okr_sync.scoring.kpi_trend import trend_text
from okr_sync.scoring.scorecard import (
    CONFIDENCE_ORDER,
    Change,
    CycleInfo,
    KeyResultScore,
    KpiScore,
    ObjectiveScore,
    Scorecard,
    TargetRange,
)

# Re-exported: the renderers (and their tests) take every text helper from here.
from okr_sync.sync.delivery.addressing import Contact as Contact
from okr_sync.sync.delivery.addressing import Contacts as Contacts
from okr_sync.sync.delivery.addressing import JiraBase as JiraBase
from okr_sync.sync.delivery.addressing import JiraSites as JiraSites
from okr_sync.sync.delivery.addressing import site_for as site_for
from okr_sync.sync.delivery.render.text import ELLIPSIS as ELLIPSIS
from okr_sync.sync.delivery.render.text import balance_bidi as balance_bidi
from okr_sync.sync.delivery.render.text import cut_graphemes as cut_graphemes
from okr_sync.sync.delivery.render.text import graphemes as graphemes
from okr_sync.sync.delivery.render.text import text_units as text_units
from okr_sync.sync.delivery.render.text import truncate as truncate

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
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in _URL_UNSAFE)


ID_LIMIT = 40
MAX_URL_LENGTH = 1000


def short_id(value: str) -> str:
    """Plan ids are short in practice; a long one must not blow a message's limits."""
    return truncate(value, ID_LIMIT)


#: What a KR or objective with no measured value shows instead of a score.
NOT_MEASURED = "not measured"


def percent(score: float | None) -> str:
    """``0.5333`` -> ``"53%"``: the one rounding rule (half up) of every surface."""
    return display.percent(score)


def delta_points(before: float, after: float | None) -> str:
    """Signed difference in percentage points, e.g. ``"+12 pp"`` (not story points)."""
    if after is None:
        return NOT_MEASURED
    return f"{display.delta_points(before, after):+d} pp"


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


STORY_POINTS_UNIT = "story_points"


def points_text(done: float, total: float) -> str:
    """``"65 of 144 pts"``: story points, never called items."""
    return f"{format_number(done)} of {format_number(total)} pts"


def _counted_text(kr: KeyResultScore) -> str | None:
    """What a KR's items add up to: points for a KR in story points, else items."""
    items = kr.items
    if kr.unit == STORY_POINTS_UNIT:
        if items is not None and items.points_done is not None and items.points_total is not None:
            return points_text(items.points_done, items.points_total)
        return None  # stored before points were kept: the items would be the wrong unit
    if items is None:
        return None
    return f"{format_number(items.done)} of {format_number(items.selected)} items"


def kr_value_text(kr: KeyResultScore) -> str:
    """What the KR measures now, against its target, in the KR's own terms."""
    if kr.value is None:
        return NOT_MEASURED
    counted = _counted_text(kr)
    points = " pts" if kr.unit == STORY_POINTS_UNIT else ""
    if isinstance(kr.target, TargetRange):
        shown = percent if kr.measure_kind == "done_ratio" else format_number
        span = f"{shown(kr.target.min)} to {shown(kr.target.max)}"
        return f"{shown(kr.value)} (stay within {span})"
    if kr.measure_kind == "done_ratio":
        if counted is not None:
            return f"{counted} done"
        return f"{percent(kr.value)} of {'points' if points else 'items'} done"
    if kr.measure_kind == "milestone":
        main = "reached" if kr.value >= 1 else "not reached"
        return f"{main} ({counted} done)" if counted else main
    value = format_number(kr.value)
    if kr.direction == "at_least":
        return f"{value}{points} (target ≥ {format_number(kr.target)}{points})"
    if kr.direction == "at_most":
        return f"{value}{points} (target ≤ {format_number(kr.target)}{points})"
    if kr.baseline is not None and kr.baseline != 0:
        span = f"{format_number(kr.baseline)} → {format_number(kr.target)}{points}"
        return f"{value}{points} ({span})"
    if points:
        return points_text(kr.value, kr.target)
    return f"{value} / {format_number(kr.target)}"


def pace_text(score: float | None, elapsed: float, *, binary: bool = False) -> str | None:
    """Where the score should be by now on an even pace: ``"expected 67% by now"``.

    None when there is no pace to tell: nothing measured, a yes/no KR (a milestone,
    a stay-above/below target), the cycle not started or over. "target reached"
    once the score is complete.
    """
    if score is None or binary or elapsed >= 1:
        return None
    if score >= 1:
        return "target reached"
    if elapsed <= 0:
        return None  # before the cycle starts nothing is expected yet
    return f"expected {percent(elapsed)} by now"


def kr_pace_text(kr: KeyResultScore, elapsed: float) -> str | None:
    """A KR's pace, or its forecast when its confidence comes from one ("likely to land
    at 80% (p10-p90 62-95%)", ``scoring.confidence: forecast``)."""
    if kr.forecast is not None:
        return forecast_text(kr.forecast)
    binary = kr.measure_kind == "milestone" or kr.direction is not None
    return pace_text(kr.score, expected_fraction(kr, elapsed), binary=binary)


def expected_fraction(kr: KeyResultScore, elapsed: float) -> float:
    """The score expected by now: a phased KR's milestone path (the score of its
    ``expected`` value), else the elapsed fraction of the even pace."""
    if kr.expected is None or kr.baseline is None or isinstance(kr.target, TargetRange):
        return elapsed
    span = kr.target - kr.baseline  # A3's linear score, either direction
    return max(0.0, min(1.0, (kr.expected - kr.baseline) / span)) if span else elapsed


def pace_suffix(kr: KeyResultScore, elapsed: float) -> str:
    """``", expected 49% by now"`` to put after a score, or nothing without a pace."""
    pace = kr_pace_text(kr, elapsed)
    return "" if pace is None else f", {pace}"


def kpi_trend_text(kpi: KpiScore) -> str | None:
    """``▲ +2 since last measured, ▼ -1 in a week``, or None without earlier values."""
    return trend_text(kpi.trend, format_number)


def band_shown(band: str | None, cycle: CycleInfo) -> str | None:
    """The band name, once the cycle is over; None before.

    Mid-cycle a band measures distance from the final target, so the lowest one
    (``missed``) would read "failed" beside a healthy confidence: messages lead with
    confidence and pace instead, and the band becomes the grade at the end.
    """
    return band if cycle.elapsed >= 1 else None


def owner_text(owner: str | None) -> str | None:
    return None if owner is None else f"owner {owner}"


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
    return quote(url, safe=_URL_SAFE)


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


def kr_links(kr: KeyResultScore, jira_base_url: JiraBase) -> list[Link]:
    links: list[Link] = []
    seen: set[str] = set()
    site = site_for(jira_base_url, kr.id)
    for raw in kr.links:
        link = resolve_link(raw, site)
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

    def transitions(self, cycle: CycleInfo | None = None) -> list[str]:
        """Confidence moves, and band moves once the cycle is over (``band_shown``)."""
        change = self.change
        parts: list[str] = []
        if (
            None not in (change.from_band, change.to_band)
            and change.from_band != change.to_band
            and (cycle is None or band_shown(change.to_band, cycle) is not None)
        ):
            parts.append(f"band {change.from_band} → {change.to_band}")
        if (
            None not in (change.from_confidence, change.to_confidence)
            and change.from_confidence != change.to_confidence
        ):
            before = confidence_label(change.from_confidence)
            after = confidence_label(change.to_confidence)
            parts.append(f"{before} → {after}")
        return parts

    def note_text(self) -> str | None:
        """The KR's latest check-in note, dated and signed when its author is known:
        ``check-in 2026-11-14 by Dana Lee: text``."""
        kr = self.kr
        if kr is None or kr.checkin_note is None:
            return None
        when = f" {kr.checkin_note_at.date().isoformat()}" if kr.checkin_note_at else ""
        by = f" by {kr.checkin_note_by}" if kr.checkin_note_by else ""
        return f"check-in{when}{by}: {kr.checkin_note}"

    def summary(self) -> str:
        """One line for a notification: ``CO-1.KR1 Ship SSO: 30% → 42% (+12 pp)``."""
        return f"{self.change.kr} {self.title}".strip() + f": {self.score_text()}"


def change_views(scorecard: Scorecard, changes: Iterable[Change]) -> list[ChangeView]:
    by_id = {kr.id: kr for kr in scorecard.key_results()}
    return [ChangeView(change=change, kr=by_id.get(change.kr)) for change in changes]


def manual_key_results(scorecard: Scorecard) -> list[KeyResultScore]:
    return [kr for kr in scorecard.key_results() if kr.measure_kind == "manual"]
