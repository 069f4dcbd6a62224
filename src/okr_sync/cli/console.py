"""Human-readable output of a scorecard (Rich tables), separate from JSON output."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from okr_sync.cli.common import inert
from okr_sync.scoring.display import percent
from okr_sync.scoring.forecast_record import forecast_text
from okr_sync.scoring.scorecard import Scorecard, TargetRange

_CONFIDENCE_STYLE = {
    "on_track": "green",
    "at_risk": "yellow",
    "off_track": "red",
    "blocked": "bold red",
}
_KPI_STYLE = {"green": "green", "yellow": "yellow", "red": "red"}


def _text(value: str, style: str = "") -> Text:
    """A cell or line of outside text: control characters gone, never markup or emoji."""
    return Text(inert(value), style=style)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def _target(target: float | TargetRange) -> str:
    if isinstance(target, TargetRange):
        return f"{_number(target.min)}..{_number(target.max)}"
    return _number(target)


def _confidence(confidence: str | None) -> Text:
    if confidence is None:
        return Text("-")
    return Text(confidence, style=_CONFIDENCE_STYLE[confidence])


def _percent(score: float | None) -> str:
    return percent(score, missing="-")


def print_scorecard(scorecard: Scorecard, console: Console) -> None:
    cycle = scorecard.cycle
    console.print(
        Text.assemble(
            _text(cycle.name, "bold"),
            f"  {cycle.start} .. {cycle.end}  as of {cycle.as_of.isoformat()}"
            f"  ({percent(cycle.elapsed)} elapsed)",
        )
    )
    table = Table(show_lines=False, header_style="bold")
    for column in ("Id", "Title", "Value", "Target", "Score", "Band", "Confidence", "Owner"):
        table.add_column(
            column,
            justify="right" if column in {"Value", "Target", "Score"} else "left",
            no_wrap=column in {"Id", "Score", "Band", "Confidence"},
        )
    # Imported here: the renderers are not needed for --help, --version or validate.
    from okr_sync.sync.delivery.render.common import freshness_text, kr_value_text

    depth = _depths(scorecard)
    for objective in scorecard.objectives:
        indent = "  " * depth[objective.id]
        table.add_row(
            _text(indent + objective.id, "bold"),
            _text(objective.title, "bold"),
            "",
            "",
            _percent(objective.score),
            _text(objective.band or "not measured"),
            _confidence(objective.confidence),
            _text(objective.owner or ""),
        )
        for kr in objective.key_results:
            flags = " (too easy)" if kr.too_easy else ""
            worded = kr.value is not None and (
                kr.unit is not None or kr.measure_kind in ("done_ratio", "milestone"))
            freshness = freshness_text(kr, scorecard.cycle.as_of)
            if freshness is not None:
                flags += f" ({freshness})"
            if kr.forecast is not None:
                flags += f" · {forecast_text(kr.forecast)}"
            table.add_row(
                _text(indent + "  " + kr.id),
                _text(kr.title + flags),
                # In the KR's own terms: "65 of 144 pts done", "12 of 28 items done",
                # "140 of 150 pts" (with its target), not a 0..1 ratio.
                _text(kr_value_text(kr)) if worded else _number(kr.value),
                "" if worded else _target(kr.target),
                _percent(kr.score),
                _text(kr.band or "not measured"),
                _confidence(kr.confidence),
                _text(kr.owner if kr.owner and kr.owner != objective.owner else ""),
            )
    console.print(table)
    scored = [p for p in scorecard.perspectives if p.score is not None]
    if scored:
        perspectives = Table("Perspective", "Score", "Band", header_style="bold")
        for p in scorecard.perspectives:
            perspectives.add_row(_text(p.title), _percent(p.score), _text(p.band or "-"))
        console.print(perspectives)
    if scorecard.kpis:
        from okr_sync.sync.delivery.render.common import kpi_trend_text

        kpis = Table("KPI", "Title", "Value", "Status", "Trend", header_style="bold")
        for kpi in scorecard.kpis:
            status = kpi.status or "-"
            kpis.add_row(_text(kpi.id), _text(kpi.title), _number(kpi.value),
                         Text(status, style=_KPI_STYLE.get(status, "")),
                         _text(kpi_trend_text(kpi) or "-"))
        console.print(kpis)
    for change in scorecard.changes:
        reasons = f" ({', '.join(change.reasons)})" if change.reasons else ""
        console.print(
            _text(
                f"changed {change.kr}: {_percent(change.from_score)} -> "
                f"{_percent(change.to_score)}{reasons}"
            )
        )
    for delivery in scorecard.deliveries:
        reason = f" ({delivery.reason})" if delivery.reason else ""
        console.print(
            _text(f"{delivery.status}: {delivery.action} {delivery.target} "
                  f"(route {delivery.route}){reason}")
        )
    for warning in scorecard.warnings:
        where = f"{warning.kr}: " if warning.kr else ""
        console.print(Text.assemble(("warning ", "yellow"), _text(where + warning.message)))


def _depths(scorecard: Scorecard) -> dict[str, int]:
    parents = {o.id: o.parent for o in scorecard.objectives}
    depths: dict[str, int] = {}
    for objective_id in parents:
        depth, current = 0, parents[objective_id]
        while current is not None and depth < len(parents):
            depth += 1
            current = parents.get(current)
        depths[objective_id] = depth
    return depths
