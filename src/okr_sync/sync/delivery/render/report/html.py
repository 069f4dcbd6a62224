"""The HTML scorecard (``okr-sync report``, ``serve``'s ``GET /report``): one self-contained
file, inline CSS and SVG, no script, no external asset.

Every text from the plan or Jira is escaped (:func:`html.escape`, quotes included,
so it is safe in attributes too); links go only to the report's Jira sites.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from urllib.parse import quote, urlsplit

from okr_sync.scoring.display import percent_points
from okr_sync.scoring.forecast import forecast_text
from okr_sync.scoring.kpi_trend import trend_text
from okr_sync.scoring.rules import kr_score
from okr_sync.scoring.scorecard import (
    KeyResultScore,
    KpiScore,
    ObjectiveScore,
    PerspectiveScore,
    TargetRange,
)
from okr_sync.sync.delivery.render.common import points_text
from okr_sync.sync.delivery.render.report.charts import (
    DASH,
    burnup_svg,
    cascade_svg,
    escape,
    pct,
)
from okr_sync.sync.delivery.render.report.data import ReportData
from okr_sync.sync.delivery.render.report.style import BAND_COLOURS, CSS, NEUTRAL

CONFIDENCE_LABELS = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track",
                     "blocked": "blocked"}
STATUS_COLOURS = {"green": BAND_COLOURS[2], "yellow": BAND_COLOURS[1], "red": BAND_COLOURS[0]}


def num(value: float | None) -> str:
    if value is None:
        return DASH
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def band_colours(bands: Sequence[str]) -> dict[str, str]:
    """Each band's colour: the lowest red, the highest green, amber between."""
    if len(bands) == 1:
        return {bands[0]: BAND_COLOURS[2]}
    colours = {}
    for index, name in enumerate(bands):
        step = round(index * (len(BAND_COLOURS) - 1) / (len(bands) - 1))
        colours[name] = BAND_COLOURS[step]
    return colours


def safe_link(url: str, sites: Sequence[str]) -> str | None:
    """``url`` when it is http(s) on one of ``sites``, else None (never a link)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    for site in sites:
        base = urlsplit(site)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and parts.path.startswith(
                base.path.rstrip("/") + "/"):
            return url
    return None


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _dom_id(prefix: str, text: str) -> str:
    # Plan ids may hold any character; a DOM id keeps only the safe ones.
    return prefix + "-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _confidence(confidence: str | None) -> str:
    """The confidence as people read it; a KR never measured has none."""
    if confidence is None:
        return "not measured"
    return escape(CONFIDENCE_LABELS.get(confidence, confidence))


def _badge(text: str | None, colour: str) -> str:
    if not text:
        return f'<span class="muted">{DASH}</span>'
    return f'<span class="badge" style="background:{colour}">{escape(text)}</span>'


def _bar(score: float | None, colour: str, label: str) -> str:
    width = 0 if score is None else percent_points(max(0.0, min(1.0, score)))
    return (f'<div class="bar" role="img" aria-label="{_attr(label)}: {pct(score)}">'
            f'<span style="width:{width}%;background:{colour}"></span></div>')


def _missing(value: object) -> bool:
    return value is None


def _when(moment: datetime | None) -> str:
    return DASH if moment is None else escape(moment.isoformat(timespec="minutes"))


class _Renderer:
    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.card = data.scorecard
        self.colours = band_colours(data.bands)
        self.changes = {c.kr: c for c in self.card.changes}

    def colour(self, band: str | None) -> str:
        return self.colours.get(band or "", NEUTRAL)

    # -- strategy map ----------------------------------------------------------------

    def strategy_map(self) -> str:
        kpis_by: dict[str | None, list[KpiScore]] = defaultdict(list)
        for kpi in self.card.kpis:
            kpis_by[kpi.perspective].append(kpi)
        bands = []
        for perspective in self.card.perspectives:
            tiles = "".join(self.kpi_tile(k) for k in kpis_by.pop(perspective.id, []))
            chips = "".join(
                f'<li class="chip" data-objective="{_attr(o.id)}">'
                f'<a href="#{_dom_id("o", o.id)}">{escape(o.id)}</a> {escape(o.title)} · '
                f"{pct(o.score)}"
                + (f' <span class="muted">→ {escape(o.parent)}</span>' if o.parent else "")
                + "</li>"
                for o in self.card.objectives if o.perspective == perspective.id
            )
            bands.append(
                f'<li class="band" data-perspective="{_attr(perspective.id)}" '
                f'style="border-left-color:{self.colour(perspective.band)}"><header>'
                f"<h3>{escape(perspective.title)}</h3>{self.perspective_score(perspective)}"
                "</header>"
                + (f'<ul class="tiles" aria-label="KPIs">{tiles}</ul>' if tiles else "")
                + (f'<ul class="chips" aria-label="Objectives">{chips}</ul>' if chips else "")
                + "</li>"
            )
        loose = [k for group in kpis_by.values() for k in group]
        if loose:
            bands.append('<li class="band"><header><h3>KPIs without a perspective</h3></header>'
                         f'<ul class="tiles">{"".join(self.kpi_tile(k) for k in loose)}</ul></li>')
        svg = cascade_svg(self.card.perspectives, self.card.objectives, self.colours)
        return (f'<section aria-labelledby="map-h"><h2 id="map-h">Strategy map</h2>{svg}'
                f'<ul class="bands">{"".join(bands)}</ul></section>')

    def perspective_score(self, perspective: PerspectiveScore) -> str:
        if perspective.score is None:
            return '<span class="muted">not scored</span>'
        return (f"<span>{pct(perspective.score)}</span>"
                f"{_badge(perspective.band, self.colour(perspective.band))}")

    def kpi_tile(self, kpi: KpiScore) -> str:
        info = self.data.kpis.get(kpi.id)
        unit = f" {escape(info.unit)}" if info and info.unit else ""
        thresholds = ""
        if info is not None and info.green is not None:
            cmp = "≥" if info.direction == "increase" else "≤"
            thresholds = (f"green {cmp} {num(info.green)} · yellow {cmp} {num(info.yellow)}")
        trend = self.kpi_trend(kpi)
        return (
            f'<li class="tile" data-kpi="{_attr(kpi.id)}"><div><strong>{escape(kpi.id)}</strong> '
            f"{escape(kpi.title)}</div><div class=\"v\">{self.kpi_value(kpi, unit)}</div>"
            f'<div class="muted">{thresholds or "no thresholds"}{trend}</div></li>'
        )

    @staticmethod
    def kpi_value(kpi: KpiScore, unit: str) -> str:
        if kpi.value is None:
            return '<span class="muted">not measured</span>'
        status = _badge(kpi.status, STATUS_COLOURS.get(kpi.status or "", NEUTRAL))
        return f"{num(kpi.value)}{unit} {status}"

    def kpi_trend(self, kpi: KpiScore) -> str:
        # The scorecard's trend: against the KPI's previous stored value and a week before.
        text = trend_text(kpi.trend, num)
        return f" · trend {escape(text)}" if text else ""

    # -- cascade tree ----------------------------------------------------------------

    def tree(self) -> str:
        ids = {o.id for o in self.card.objectives}
        children: dict[str | None, list[ObjectiveScore]] = defaultdict(list)
        for o in self.card.objectives:
            children[o.parent if o.parent in ids else None].append(o)
        seen: set[str] = set()

        def branch(parent: str | None) -> str:
            items = []
            for o in children.get(parent, []):
                if o.id in seen:  # a cycle cannot pass validation; never loop on one
                    continue
                seen.add(o.id)
                below = branch(o.id)
                items.append(f"<li>{self.objective(o)}{below}</li>")
            return f'<ul class="tree">{"".join(items)}</ul>' if items else ""

        body = branch(None)
        rest = [o for o in self.card.objectives if o.id not in seen]
        body += "".join(f'<ul class="tree"><li>{self.objective(o)}</li></ul>' for o in rest)
        return (f'<section aria-labelledby="tree-h"><h2 id="tree-h">Objectives and key results'
                f"</h2>{body}</section>")

    def objective(self, o: ObjectiveScore) -> str:
        owner = self.data.objective_owners.get(o.id)
        parent = f" · contributes to {escape(o.parent)}" if o.parent else ""
        return (
            f'<article class="objective" id="{_dom_id("o", o.id)}" data-objective="{_attr(o.id)}">'
            f"<h3>{escape(o.id)} {escape(o.title)}</h3>"
            f"{_bar(o.score, self.colour(o.band), o.id)}"
            f'<p class="meta">{pct(o.score)} {_badge(o.band, self.colour(o.band))} · '
            f"{_confidence(o.confidence)}"
            f"{' · owner ' + escape(owner) if owner else ''}{parent}</p>"
            f'{"".join(self.key_result(kr) for kr in o.key_results)}</article>'
        )

    def value_text(self, kr: KeyResultScore) -> str:
        # Unmeasured is not zero (DESIGN A5): a KR never measured has no value.
        if _missing(kr.value):
            return "not measured yet"
        info = self.data.krs.get(kr.id)
        unit = info.unit if info else None
        entry = self.data.explanations.get(kr.id)
        items = kr.items
        if (kr.measure_kind == "done_ratio" and items is not None
                and items.points_done is not None and items.points_total is not None):
            return f"{points_text(items.points_done, items.points_total)} done"
        if kr.measure_kind == "done_ratio" and unit == "points" and entry and entry.items:
            counted = [i for i in entry.items if i.counted != "excluded_frozen"]
            done = sum(i.points or 0 for i in counted if i.done)
            total = sum(i.points or 0 for i in counted)
            return f"{points_text(done, total)} done"
        if kr.measure_kind == "done_ratio" and kr.items is not None:
            return f"{kr.items.done} of {kr.items.selected} issues done"
        suffix = f" {unit}" if unit else ""
        if isinstance(kr.target, TargetRange):
            return (f"{num(kr.value)}{suffix} (stay within {num(kr.target.min)} to "
                    f"{num(kr.target.max)})")
        if kr.direction == "at_most":
            return f"{num(kr.value)}{suffix} (at most {num(kr.target)})"
        if kr.direction == "at_least":
            return f"{num(kr.value)}{suffix} (at least {num(kr.target)})"
        start = "" if kr.baseline in (None, 0) else f", from {num(kr.baseline)}"
        expected = "" if kr.expected is None else f", {num(kr.expected)} expected by now"
        return f"{num(kr.value)} of {num(kr.target)}{suffix}{start}{expected}"

    def key_result(self, kr: KeyResultScore) -> str:
        info = self.data.krs.get(kr.id)
        colour = self.colour(kr.band)
        measured = kr.measured_at or self.data.scored_at
        stale = kr.stale
        fresh = _when(measured) + (' <span class="stale">stale</span>' if stale else "")
        facts = [("value", escape(self.value_text(kr))), ("score", pct(kr.score)),
                 ("band", _badge(kr.band, colour)),
                 ("confidence", _confidence(kr.confidence)),
                 *([("forecast", escape(forecast_text(kr.forecast)))] if kr.forecast else []),
                 ("owner", escape(info.owner) if info and info.owner else DASH),
                 ("measured", fresh)]
        if kr.too_easy:
            facts.append(("note", "too easy: scored 100% two cycles running"))
        dl = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
        dom = _dom_id("kr", kr.id)
        chart = burnup_svg(dom + "-chart", f"{kr.id} {kr.title}", self.card.cycle,
                           self.data.history.get(kr.id, ()), colour, _milestone_scores(kr))
        return (
            f'<section class="kr" id="{dom}" data-kr="{_attr(kr.id)}">'
            f"<h4>{escape(kr.id)} {escape(kr.title)}</h4>"
            f'<div class="chart">{chart}</div>{_bar(kr.score, colour, kr.id)}'
            f'<dl class="facts">{dl}</dl>{self.items(kr)}{self.notes(kr)}</section>'
        )

    def items(self, kr: KeyResultScore) -> str:
        entry = self.data.explanations.get(kr.id)
        if entry is None:
            return ""
        rows = "".join(
            f"<tr><td>{self.issue_link(i.key, kr.id)}</td><td>{escape(i.summary)}</td>"
            f"<td>{escape(i.status)}</td><td class=\"num\">{num(i.points)}</td>"
            f"<td>{escape(i.counted)}</td></tr>"
            for i in entry.items
        )
        table = ('<table><thead><tr><th scope="col">Issue</th><th scope="col">Summary</th>'
                 '<th scope="col">Status</th><th scope="col" class="num">Points</th>'
                 f'<th scope="col">Counted</th></tr></thead><tbody>{rows}</tbody></table>'
                 if rows else "")
        jql = f'<p class="muted">JQL: <code>{escape(entry.jql)}</code></p>' if entry.jql else ""
        error = f'<p class="stale">not measured: {escape(entry.error)}</p>' if entry.error else ""
        count = f"<p>counted by Jira: {entry.count}</p>" if entry.count is not None else ""
        links = "".join(f'<li><a href="{_attr(url)}">{escape(url)}</a></li>'
                        for url in kr.links if safe_link(url, self.data.jira_sites))
        link_list = f"<ul>{links}</ul>" if links else ""
        return (f"<details><summary>Items behind {escape(kr.id)} ({len(entry.items)})</summary>"
                f"{error}{jql}{count}{table}{link_list}</details>")

    def issue_link(self, key: str, kr_id: str) -> str:
        sites = self.data.jira_sites
        # The site of the source the KR reads (a second source's keys are not main's).
        site = self.data.kr_sites.get(kr_id) or (sites[0] if sites else None)
        if site is None:
            return escape(key)
        url = f"{site.rstrip('/')}/browse/{quote(key, safe='')}"
        if safe_link(url, sites) is None:
            return escape(key)
        return f'<a href="{_attr(url)}">{escape(key)}</a>'

    def notes(self, kr: KeyResultScore) -> str:
        parts = []
        change = self.changes.get(kr.id)
        entry = self.data.explanations.get(kr.id)
        reasons: Iterable[str] = change.reasons if change else (entry.reasons if entry else ())
        reasons = list(reasons)
        if change is not None or reasons:
            moved = (f"{pct(change.from_score)} → {pct(change.to_score)}: "
                     if change is not None else "")
            parts.append(f"<p><strong>Last change</strong> {moved}"
                         f"{escape(', '.join(reasons) or 'no item changes')}</p>")
        checkins = self.data.checkins.get(kr.id, ())
        if checkins:
            items = "".join(
                f"<li>{_when(c.at)}"
                + (f" by {escape(c.author)}" if c.author else "")
                + (f": value {num(c.value)}" if c.value is not None else "")
                + (f", {escape(CONFIDENCE_LABELS.get(c.confidence, c.confidence))}"
                   if c.confidence else "")
                + (f" — {escape(c.note)}" if c.note else "") + "</li>"
                for c in checkins
            )
            parts.append(f"<p><strong>Check-ins</strong></p><ul>{items}</ul>")
        return f'<div class="notes">{"".join(parts)}</div>' if parts else ""

    # -- warnings --------------------------------------------------------------------

    def warnings(self) -> str:
        if not self.card.warnings:
            return ""
        groups: dict[str, list[str]] = defaultdict(list)
        for w in self.card.warnings:
            groups[w.kr or "general"].append(w.message)
        blocks = "".join(
            f"<details><summary>{escape(owner)} ({len(messages)})</summary><ul>"
            + "".join(f"<li>{escape(m)}</li>" for m in messages) + "</ul></details>"
            for owner, messages in groups.items()
        )
        return (f'<section aria-labelledby="warn-h"><h2 id="warn-h">Warnings '
                f"({len(self.card.warnings)})</h2>{blocks}</section>")

    def document(self) -> str:
        cycle = self.card.cycle
        name = escape(cycle.name)
        scored = (f" · scored {_when(self.data.scored_at)}" if self.data.scored_at else "")
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{name} scorecard</title><style>{CSS}</style></head><body>"
            f"<header><h1>{name} scorecard</h1>"
            f'<p class="meta">{cycle.start.isoformat()} {DASH} {cycle.end.isoformat()} · as of '
            f"{_when(cycle.as_of)} · {pct(cycle.elapsed)} of the cycle elapsed{scored}</p>"
            f"</header><main>{self.strategy_map()}{self.tree()}{self.warnings()}</main>"
            '<footer><p class="meta">Generated by okr-sync.</p></footer></body></html>\n'
        )


def _milestone_scores(kr: KeyResultScore) -> list[tuple[date, float]]:
    """A phased KR's milestones as (date, the score reaching them gives)."""
    if not kr.milestones or isinstance(kr.target, TargetRange) or kr.baseline is None:
        return []
    return [(day, kr_score(value, kr.baseline, kr.target)) for day, value in kr.milestones]


def render_html_report(data: ReportData) -> str:
    """The whole report as one HTML document (pure: same data, same text)."""
    return _Renderer(data).document()
