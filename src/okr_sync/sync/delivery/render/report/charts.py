"""Inline SVG for the report: a KR's burn-up chart and the strategy map's cascade.

Pure functions returning markup; every text from the plan or Jira is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from html import escape as html_escape

from okr_sync.scoring.display import percent
from okr_sync.scoring.scorecard import CycleInfo, ObjectiveScore, PerspectiveScore
from okr_sync.sync.delivery.render.report.data import HistoryPoint
from okr_sync.sync.delivery.render.text import balance_bidi

BURNUP_W, BURNUP_H, PAD = 320, 120, 24
DASH = "\u2013"


def escape(text: str, quote: bool = True) -> str:
    """HTML-escape outside text and close the bidi controls it opens, so an unclosed
    RIGHT-TO-LEFT OVERRIDE in a title cannot reverse the rest of the report's line."""
    return html_escape(balance_bidi(text), quote=quote)


def _instant(day: date, like: datetime) -> datetime:
    return datetime.combine(day, time(), like.tzinfo or UTC)


def _fraction(moment: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, min(1.0, (moment - start).total_seconds() / span))


def pct(score: float | None) -> str:
    """The one rounding rule of every surface (half up: 32.5 % -> "33%")."""
    return percent(score, missing=DASH)


def burnup_svg(dom_id: str, label: str, cycle: CycleInfo, points: Sequence[HistoryPoint],
               colour: str, milestones: Sequence[tuple[date, float]] = ()) -> str:
    """The KR's score over the cycle (one marker per history row) against the even
    pace from 0 at the start to 1 at the end, or, for a phased KR, against the path
    through its ``milestones`` (due date, score expected then)."""
    start = _instant(cycle.start, cycle.as_of)
    end = _instant(cycle.end + timedelta(days=1), cycle.as_of)
    inner_w, inner_h = BURNUP_W - 2 * PAD, BURNUP_H - 2 * PAD

    def xy(moment: datetime, score: float) -> tuple[float, float]:
        x = PAD + _fraction(moment, start, end) * inner_w
        y = PAD + (1 - max(0.0, min(1.0, score))) * inner_h
        return round(x, 1), round(y, 1)

    # A row without a score (never measured then) has no height to plot; it still
    # counts as a row, drawn at 0 so the chart keeps one point per stored row.
    coords = [xy(p.as_of, p.score if p.score is not None else 0.0) for p in points]
    joined = " ".join(f"{x},{y}" for x, y in coords)
    now_x = xy(cycle.as_of, 0)[0]
    last = points[-1].score if points else None
    desc = (f"{len(points)} measurements; latest score {pct(last)}; "
            f"{pct(cycle.elapsed)} of the cycle elapsed")
    title_id, desc_id = f"{dom_id}-t", f"{dom_id}-d"
    if milestones:
        corners = [(start, 0.0)]
        corners += [(_instant(day + timedelta(days=1), cycle.as_of), score)
                    for day, score in milestones]
        corners.append((end, 1.0))
        path = " ".join(f"{x},{y}" for x, y in (xy(t, s) for t, s in corners))
        pace = (f'<polyline class="pace" points="{path}" fill="none" stroke="#475569" '
                f'stroke-dasharray="4 3"/>')
    else:
        pace = (f'<line class="pace" x1="{PAD}" y1="{PAD + inner_h}" x2="{PAD + inner_w}" '
                f'y2="{PAD}" stroke="#475569" stroke-dasharray="4 3"/>')
    markers = "".join(f'<circle class="pt" cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>'
                      for x, y in coords)
    return (
        f'<svg class="burnup" viewBox="0 0 {BURNUP_W} {BURNUP_H}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" data-points="{len(points)}">'
        f'<title id="{title_id}">Burn-up of {escape(label)}</title>'
        f'<desc id="{desc_id}">{escape(desc)}</desc>'
        f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="#f8fafc" '
        f'stroke="#cbd5e1"/>'
        f"{pace}"
        f'<line x1="{now_x}" y1="{PAD}" x2="{now_x}" y2="{PAD + inner_h}" stroke="#94a3b8"/>'
        f'<polyline class="actual" points="{joined}" fill="none" stroke="{colour}" '
        f'stroke-width="2"/>{markers}'
        f'<text x="{PAD}" y="{BURNUP_H - 6}" font-size="10" fill="#334155">'
        f"{cycle.start.isoformat()}</text>"
        f'<text x="{PAD + inner_w}" y="{BURNUP_H - 6}" font-size="10" fill="#334155" '
        f'text-anchor="end">{cycle.end.isoformat()}</text>'
        f'<text x="{PAD - 4}" y="{PAD + 4}" font-size="10" fill="#334155" '
        f'text-anchor="end">1</text>'
        f'<text x="{PAD - 4}" y="{PAD + inner_h}" font-size="10" fill="#334155" '
        f'text-anchor="end">0</text>'
        "</svg>"
    )


MAP_W, LABEL_W, ROW_H, BOX_H, GAP = 1000, 170, 120, 64, 12


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cascade_svg(perspectives: Sequence[PerspectiveScore],
                objectives: Sequence[ObjectiveScore], colour_of: dict[str, str]) -> str:
    """The strategy map: one row per perspective (the plan's first at the top, so
    Financial sits above Learning & Growth), objectives placed in their row, and an
    arrow from each objective to the one it contributes to (``parent``)."""
    rows: list[tuple[str, str, list[ObjectiveScore]]] = [
        (p.id, p.title, [o for o in objectives if o.perspective == p.id]) for p in perspectives
    ]
    known = {p.id for p in perspectives}
    loose = [o for o in objectives if o.perspective not in known]
    if loose:
        rows.append(("", "No perspective", loose))
    boxes: dict[str, tuple[float, float, float]] = {}
    parts: list[str] = []
    for index, (_pid, title, members) in enumerate(rows):
        top = index * ROW_H
        shade = "#f1f5f9" if index % 2 == 0 else "#e2e8f0"
        parts.append(f'<rect x="0" y="{top}" width="{MAP_W}" height="{ROW_H}" fill="{shade}"/>'
                     f'<text x="12" y="{top + ROW_H / 2 + 5}" font-size="15" font-weight="600" '
                     f'fill="#0f172a">{escape(_short(title, 20))}</text>')
        if not members:
            continue
        width = min(240.0, (MAP_W - LABEL_W - GAP * (len(members) + 1)) / len(members))
        for n, objective in enumerate(members):
            x = LABEL_W + GAP + n * (width + GAP)
            y = top + (ROW_H - BOX_H) / 2
            boxes[objective.id] = (x, y, width)
            colour = colour_of.get(objective.band or "", "#475569")
            chars = max(6, int(width / 8))
            parts.append(
                f'<g class="node" data-objective="{escape(objective.id)}">'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{BOX_H}" rx="6" '
                f'fill="#ffffff" stroke="{colour}" stroke-width="3"/>'
                f'<text x="{x + 8:.1f}" y="{y + 22:.1f}" font-size="13" font-weight="600" '
                f'fill="#0f172a">{escape(_short(objective.id, chars))} · '
                f"{pct(objective.score)}</text>"
                f'<text x="{x + 8:.1f}" y="{y + 44:.1f}" font-size="12" fill="#1e293b">'
                f"{escape(_short(objective.title, chars))}</text></g>"
            )
    arrows: list[str] = []
    for objective in objectives:
        if objective.parent is None or objective.parent not in boxes:
            continue
        cx, cy, cw = boxes[objective.id]
        px, py, pw = boxes[objective.parent]
        x1, x2 = cx + cw / 2, px + pw / 2
        # From the edge of the child facing the parent to the facing edge of the parent.
        y1, y2 = (cy, py + BOX_H) if py < cy else (cy + BOX_H, py) if py > cy else (cy, py)
        # An arrow spanning rows bows sideways so it does not run through the boxes
        # between (a cubic bows by 3/4 of its control offset); one within a row arcs
        # above the row's boxes.
        rows_apart = round(abs(py - cy) / ROW_H)
        bow = 0.0 if rows_apart <= 1 else (min(cw, pw) / 2 + 16 * rows_apart) * 4 / 3
        lift = 40.0 if rows_apart == 0 else 0.0
        c1, c2 = (x1 + bow, y1 - lift), (x2 + bow, y2 - lift)
        arrows.append(f'<path class="cascade" data-from="{escape(objective.id)}" '
                      f'data-to="{escape(objective.parent)}" '
                      f'd="M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} '
                      f'{x2:.1f},{y2:.1f}" fill="none" stroke="#1e293b" stroke-width="2" '
                      f'marker-end="url(#arrow)"/>')
    height = max(1, len(rows)) * ROW_H
    return (
        f'<svg class="map" viewBox="0 0 {MAP_W} {height}" role="img" '
        f'aria-labelledby="map-t map-d"><title id="map-t">Strategy map</title>'
        f'<desc id="map-d">{len(objectives)} objectives in {len(rows)} perspectives; '
        f"{len(arrows)} arrows show which objective each contributes to.</desc>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#1e293b"/></marker></defs>'
        f'{"".join(parts)}{"".join(arrows)}</svg>'
    )
