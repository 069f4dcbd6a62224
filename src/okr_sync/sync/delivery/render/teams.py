"""The standing Teams scorecard card (Adaptive Card 1.5; posted, then updated by the bot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from okr_sync.scoring.scorecard import CycleInfo, KeyResultScore, ObjectiveScore, Scorecard
from okr_sync.sync.delivery.render.common import (
    ID_LIMIT,
    NOT_MEASURED,
    JiraBase,
    band_shown,
    confidence_counts,
    confidence_label,
    cycle_line,
    format_as_of,
    format_number,
    freshness_text,
    kpi_trend_text,
    kr_links,
    kr_pace_text,
    kr_value_text,
    objectives_in_tree_order,
    owner_text,
    pace_text,
    percent,
    plural,
    progress_bar,
    short_id,
    truncate,
)
from okr_sync.sync.delivery.render.layout import (
    DETAIL_LEVELS,
    DetailLevel,
)
from okr_sync.sync.delivery.render.teams_elements import (
    FALLBACK_TEXT_LIMIT,
    TEAMS_CARD_BUDGET,
    Element,
    adaptive_card,
    card_fits,
    columns,
    container,
    fact_set,
    rich_text,
    safe_markdown,
    text_block,
    text_run,
)

CONFIDENCE_EMOJI: dict[str, str] = {
    "on_track": "🟢",
    "at_risk": "🟡",
    "off_track": "🔴",
    "blocked": "⛔",
}
CONFIDENCE_COLOR: dict[str, str] = {
    "on_track": "good",
    "at_risk": "warning",
    "off_track": "attention",
    "blocked": "attention",
}
KPI_EMOJI: dict[str | None, str] = {"green": "🟢", "yellow": "🟡", "red": "🔴", None: "⚪"}

Card = dict[str, Any]


def confidence_badge(confidence: str | None) -> str:
    return f"{CONFIDENCE_EMOJI.get(confidence or '', '⚪')} {confidence_label(confidence)}"


def confidence_summary(krs: list[KeyResultScore]) -> str:
    counts = confidence_counts(krs)
    parts = [
        f"{CONFIDENCE_EMOJI.get(n, '⚪')} {c} {confidence_label(n)}" for n, c in counts.items()
    ]
    return f"{plural(len(krs), 'key result')}: " + " · ".join(parts) if parts else "no key results"


def fit_card(build: Callable[[DetailLevel], Card], budget: int) -> Card:
    """The most detailed card whose message envelope fits ``budget`` bytes (else the coarsest)."""
    for level in DETAIL_LEVELS[:-1]:
        card = build(level)
        if card_fits(card, budget):
            return card
    return build(DETAIL_LEVELS[-1])


def footer(scorecard: Scorecard) -> Element:
    return text_block(
        f"Updated {format_as_of(scorecard.cycle.as_of)} · okr-sync", subtle=True, size="small"
    )


def cycle_block(scorecard: Scorecard) -> Element:
    return rich_text(
        [text_run(truncate(cycle_line(scorecard.cycle), 300), subtle=True)], spacing="none"
    )


def kr_row(
    kr: KeyResultScore, level: DetailLevel, jira_base_url: JiraBase, cycle: CycleInfo,
    objective_owner: str | None = None,
) -> Element:
    if kr.score is None:
        # Unmeasured is not zero: no bar, no score, no band to misread.
        return rich_text([
            text_run(f"{short_id(kr.id)} {truncate(kr.title, level.kr_title_limit)}"),
            text_run(f" — {NOT_MEASURED}", subtle=True, italic=True),
        ], spacing="small")
    runs = [
        text_run(
            f"{percent(kr.score)} ", weight="bolder",
            color=CONFIDENCE_COLOR.get(kr.confidence or ""),
        ),
        text_run(f"{short_id(kr.id)} {truncate(kr.title, level.kr_title_limit)}"),
    ]
    # Confidence and pace first: they say whether the KR is fine (see band_shown).
    detail = [confidence_badge(kr.confidence)]
    pace = kr_pace_text(kr, cycle.elapsed)
    if pace is not None:
        detail.append(pace)
    detail.append(truncate(kr_value_text(kr), 120))
    band = band_shown(kr.band, cycle)
    if band is not None:
        detail.append(truncate(band, 40))
    if level.kr_bar:
        detail.insert(0, progress_bar(kr.score))
    freshness = freshness_text(kr, cycle.as_of)
    if freshness is not None:
        detail.append(f"⏳ {freshness}")
    owner = owner_text(kr.owner) if kr.owner != objective_owner else None
    if owner is not None:
        detail.append(truncate(owner, 120))
    if kr.weight == 0:
        detail.append("weight 0, not counted")
    if kr.too_easy:
        detail.append("⚡ too easy, raise the target")
    runs.append(text_run(" — " + " · ".join(detail), subtle=True))
    links = kr_links(kr, jira_base_url)[: level.max_links]
    for link in links:
        runs.append(text_run(" "))
        runs.append(text_run(link.label, link=link))
    return rich_text(runs, spacing="small")


def objective_status(objective: ObjectiveScore, cycle: CycleInfo) -> list[str]:
    """Bar, confidence, pace, (final band) and owner of an objective, as plain text."""
    if objective.score is None or objective.band is None:
        status = [NOT_MEASURED]
    else:
        status = [progress_bar(objective.score), confidence_badge(objective.confidence)]
        pace = pace_text(objective.score, cycle.elapsed)
        if pace is not None:
            status.append(pace)
        band = band_shown(objective.band, cycle)
        if band is not None:
            status.append(truncate(band, 40))
    owner = owner_text(objective.owner)
    if owner is not None:
        status.append(truncate(owner, 120))
    return status


def objective_container(
    depth: int, objective: ObjectiveScore, level: DetailLevel, jira_base_url: JiraBase,
    cycle: CycleInfo,
) -> Element:
    title = truncate(objective.title, level.objective_title_limit)
    name = f"{'↳ ' * min(depth, 3)}{short_id(objective.id)} · {title}"
    status = objective_status(objective, cycle)
    if depth > 0 and objective.parent is not None:
        status.append(f"contributes to {truncate(objective.parent, 60)}")
    if objective.weight == 0:
        status.append("weight 0, not counted")
    items: list[Element] = [
        columns(
            [rich_text([text_run(name, weight="bolder")])],
            [
                text_block(
                    percent(objective.score),
                    weight="bolder",
                    color=CONFIDENCE_COLOR.get(objective.confidence or ""),
                )
            ],
        ),
        rich_text([text_run(" · ".join(status), subtle=True)], spacing="none"),
    ]
    krs = list(objective.key_results)
    if level.max_krs == 0:
        if krs:
            items.append(text_block(confidence_summary(krs), subtle=True, spacing="small"))
    else:
        listed = krs if level.max_krs is None else krs[: level.max_krs]
        items += [kr_row(kr, level, jira_base_url, cycle, objective.owner) for kr in listed]
        if len(listed) < len(krs):
            more = plural(len(krs) - len(listed), "more key result")
            items.append(text_block(f"…and {more}", subtle=True, spacing="small"))
    return container(items, separator=True, spacing="medium")


def perspectives_section(scorecard: Scorecard, level: DetailLevel) -> list[Element]:
    shown = scorecard.perspectives[: level.max_facts]
    if not shown:
        return []
    facts = [
        (
            safe_markdown(p.title, min(80, level.objective_title_limit)),
            f"{progress_bar(p.score)} {percent(p.score)}"
            + (" · no objectives" if p.band is None
               else f" · {safe_markdown(p.band, 40)}" if band_shown(p.band, scorecard.cycle)
               else ""),
        )
        for p in shown
    ]
    more = len(scorecard.perspectives) - len(shown)
    elements = [
        text_block("Balanced scorecard", weight="bolder", spacing="medium", heading=True),
        fact_set(facts),
    ]
    if more:
        elements.append(text_block(f"…and {plural(more, 'more perspective')}", subtle=True))
    return elements


def kpis_section(scorecard: Scorecard, level: DetailLevel) -> list[Element]:
    shown = scorecard.kpis[: level.max_facts]
    if not shown:
        return []
    name_limit = min(80, level.objective_title_limit)
    facts = [
        (
            f"{KPI_EMOJI.get(k.status, KPI_EMOJI[None])} "
            f"{safe_markdown(k.id, ID_LIMIT)} · {safe_markdown(k.title, name_limit)}",
            f"{format_number(k.value)} · {k.status or 'no value'}"
            + (f" · {trend}" if (trend := kpi_trend_text(k)) else ""),
        )
        for k in shown
    ]
    elements = [
        text_block("KPIs", weight="bolder", spacing="medium", heading=True),
        fact_set(facts),
    ]
    more = len(scorecard.kpis) - len(shown)
    if more:
        elements.append(text_block(f"…and {plural(more, 'more KPI')}", subtle=True))
    return [container(elements, separator=True)]


def warnings_section(scorecard: Scorecard, level: DetailLevel) -> list[Element]:
    if not scorecard.warnings or not level.max_warnings:
        return []
    lines = [
        "⚠️ " + truncate((f"{short_id(w.kr)}: " if w.kr is not None else "") + w.message, 300)
        for w in scorecard.warnings[: level.max_warnings]
    ]
    more = len(scorecard.warnings) - level.max_warnings
    if more > 0:
        lines.append(f"…and {plural(more, 'more warning')}")
    blocks = [rich_text([text_run(line, color="warning")], spacing="small") for line in lines]
    return [container(blocks, separator=True, spacing="medium")]


def fallback(head: str, items: list[str]) -> str:
    """``fallbackText`` (markdown-parsed by old clients): escaped, within its limit."""
    text = safe_markdown(head, 200)
    for index, item in enumerate(items):
        line = "; " + safe_markdown(item, 120)
        if len(text) + len(line) > FALLBACK_TEXT_LIMIT - 40:
            return text + f"; …and {len(items) - index} more"
        text += line
    return text


def render_teams_scorecard_card(
    scorecard: Scorecard,
    *,
    title: str | None = None,
    jira_base_url: JiraBase = None,
    budget: int = TEAMS_CARD_BUDGET,
) -> Card:
    """The standing scorecard as an Adaptive Card 1.5 whose envelope stays within ``budget`` bytes.

    ``title`` heads the card (default "OKR scorecard · <cycle>"); ``jira_base_url``
    resolves KR links given as issue keys or site paths. A big plan is
    summarised ("…and N more key results/objectives") to fit.
    """
    heading = title if title is not None else f"OKR scorecard · {scorecard.cycle.name}"
    ordered = objectives_in_tree_order(scorecard.objectives)
    all_krs = scorecard.key_results()
    fallback_text = fallback(
        f"{heading}: {confidence_summary(all_krs)}",
        [
            f"{short_id(o.id)} {truncate(o.title, 40)}: "
            f"{percent(o.score)}, {confidence_label(o.confidence)}"
            for _, o in ordered
        ],
    )

    def build(level: DetailLevel) -> Card:
        body: list[Element] = [
            rich_text([text_run(truncate(heading, 150), size="large", weight="bolder")]),
            cycle_block(scorecard),
            text_block(confidence_summary(all_krs), spacing="small"),
        ]
        body += perspectives_section(scorecard, level)
        limit = len(ordered) if level.max_objectives is None else level.max_objectives
        body += [objective_container(d, o, level, jira_base_url, scorecard.cycle)
                 for d, o in ordered[:limit]]
        if len(ordered) > limit:
            body.append(
                text_block(f"…and {plural(len(ordered) - limit, 'more objective')}", subtle=True)
            )
        body += kpis_section(scorecard, level)
        body += warnings_section(scorecard, level)
        body.append(footer(scorecard))
        return adaptive_card(body, fallback_text=fallback_text)

    return fit_card(build, budget)
