"""The standing Slack scorecard message of a route (edited in place on every sync)."""

from __future__ import annotations

from collections.abc import Callable

from okr_sync.scoring.scorecard import CycleInfo, KeyResultScore, ObjectiveScore, Scorecard
from okr_sync.sync.delivery.render.common import (
    NOT_MEASURED,
    JiraBase,
    band_shown,
    confidence_counts,
    confidence_label,
    cycle_line,
    epoch_seconds,
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
)
from okr_sync.sync.delivery.render.layout import (
    DETAIL_LEVELS,
    DetailLevel,
)
from okr_sync.sync.delivery.render.slack_blocks import (
    SLACK_FIELD_LIMIT,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_TEXT_LIMIT,
    Block,
    SlackPayload,
    context_block,
    divider_block,
    fallback_text,
    header_block,
    mrkdwn_id,
    mrkdwn_link,
    mrkdwn_text,
    pack_lines,
    section_block,
)

CONFIDENCE_EMOJI: dict[str, str] = {
    "on_track": ":large_green_circle:",
    "at_risk": ":large_yellow_circle:",
    "off_track": ":red_circle:",
    "blocked": ":no_entry:",
}
KPI_EMOJI: dict[str | None, str] = {
    "green": ":large_green_circle:",
    "yellow": ":large_yellow_circle:",
    "red": ":red_circle:",
    None: ":white_circle:",
}

#: Blocks around the objectives: header, cycle context, perspectives, two dividers,
#: KPIs, warnings, footer, and the "…and N more objectives" line.
_FIXED_BLOCKS = 9


def confidence_badge(confidence: str | None) -> str:
    emoji = CONFIDENCE_EMOJI.get(confidence or "", ":white_circle:")
    return f"{emoji} {confidence_label(confidence)}"


def confidence_summary(krs: list[KeyResultScore]) -> str:
    counts = confidence_counts(krs)
    parts = [
        f"{CONFIDENCE_EMOJI.get(name, '')} {count} {confidence_label(name)}"
        for name, count in counts.items()
    ]
    return f"{plural(len(krs), 'key result')}: " + " · ".join(parts) if parts else "no key results"


def updated_footer(scorecard: Scorecard) -> str:
    """``updated <date>``, shown in each reader's own time zone by Slack's date token."""
    as_of = scorecard.cycle.as_of
    fallback = format_as_of(as_of)
    token = f"<!date^{epoch_seconds(as_of)}^{{date_short_pretty}} {{time}}|{fallback}>"
    return f"updated {token} · okr-sync"


def fit_slack(build: Callable[[DetailLevel], SlackPayload]) -> SlackPayload:
    """The most detailed rendering that fits Slack's limits (the coarsest one otherwise)."""
    for level in DETAIL_LEVELS[:-1]:
        payload = build(level)
        if payload.fits():
            return payload
    return build(DETAIL_LEVELS[-1])


def kr_line(
    kr: KeyResultScore, level: DetailLevel, jira_base_url: JiraBase, cycle: CycleInfo,
    objective_owner: str | None = None,
) -> str:
    title = f"{mrkdwn_id(kr.id)} {mrkdwn_text(kr.title, level.kr_title_limit)}"
    if kr.score is None or kr.band is None or kr.confidence is None:
        # Unmeasured is not zero: no bar, no score, no band to misread.
        return f"• {title} — _{NOT_MEASURED}_"
    parts = [
        f"*{percent(kr.score)}*",
        f"{mrkdwn_id(kr.id)} {mrkdwn_text(kr.title, level.kr_title_limit)}",
    ]
    if level.kr_bar:
        parts.insert(0, progress_bar(kr.score))
    # Confidence and pace first: they say whether the KR is fine (see band_shown).
    detail = [confidence_badge(kr.confidence)]
    pace = kr_pace_text(kr, cycle.elapsed)
    if pace is not None:
        detail.append(pace)
    detail.append(mrkdwn_text(kr_value_text(kr), 120))
    band = band_shown(kr.band, cycle)
    if band is not None:
        detail.append(mrkdwn_text(band, 40))
    freshness = freshness_text(kr, cycle.as_of)
    if freshness is not None:
        detail.append(f":hourglass: {freshness}")
    owner = owner_text(kr.owner) if kr.owner != objective_owner else None
    if owner is not None:
        detail.append(mrkdwn_text(owner, 120))
    if kr.weight == 0:
        detail.append("weight 0, not counted")
    if kr.too_easy:
        detail.append(":zap: too easy, raise the target")
    links = kr_links(kr, jira_base_url)[: level.max_links]
    if links:
        detail.append(" ".join(mrkdwn_link(link) for link in links))
    return "• " + " ".join(parts) + " — " + " · ".join(detail)


def objective_status(objective: ObjectiveScore, cycle: CycleInfo) -> list[str]:
    """Score, confidence, pace, (final band) and owner of an objective, as mrkdwn."""
    if objective.score is None or objective.band is None or objective.confidence is None:
        status = [f"_{NOT_MEASURED}_"]
    else:
        status = [f"{progress_bar(objective.score)} *{percent(objective.score)}*",
                  confidence_badge(objective.confidence)]
        pace = pace_text(objective.score, cycle.elapsed)
        if pace is not None:
            status.append(pace)
        band = band_shown(objective.band, cycle)
        if band is not None:
            status.append(mrkdwn_text(band, 40))
    owner = owner_text(objective.owner)
    if owner is not None:
        status.append(mrkdwn_text(owner, 120))
    return status


def objective_section(
    depth: int, objective: ObjectiveScore, level: DetailLevel, jira_base_url: JiraBase,
    cycle: CycleInfo,
) -> Block:
    indent = "↳ " * min(depth, 3)
    name = mrkdwn_text(objective.title, level.objective_title_limit)
    title = f"{indent}*{mrkdwn_id(objective.id)} · {name}*"
    status = objective_status(objective, cycle)
    if depth > 0 and objective.parent is not None:
        status.append(f"contributes to {mrkdwn_text(objective.parent, 60)}")
    if objective.weight == 0:
        status.append("weight 0, not counted")
    heading = title + "\n" + " · ".join(status)
    krs = list(objective.key_results)
    if level.max_krs == 0:
        if krs:
            heading += "\n" + mrkdwn_text(confidence_summary(krs), 300)
        return section_block(heading)
    listed = krs if level.max_krs is None else krs[: level.max_krs]
    lines = [kr_line(kr, level, jira_base_url, cycle, objective.owner) for kr in listed]
    packed = pack_lines(
        lines,
        SLACK_SECTION_TEXT_LIMIT,
        "key result",
        heading=heading,
        already_omitted=len(krs) - len(listed),
    )
    return section_block(packed.text)


def perspectives_block(scorecard: Scorecard, level: DetailLevel) -> list[Block]:
    shown = scorecard.perspectives[: level.max_facts]
    if not shown:
        return []
    name_limit = min(80, level.objective_title_limit)
    fields = [
        f"*{mrkdwn_text(p.title, name_limit)}*\n{progress_bar(p.score)} {percent(p.score)}"
        + (" · no objectives" if p.band is None
           else f" · {mrkdwn_text(p.band, 40)}" if band_shown(p.band, scorecard.cycle)
           else "")
        for p in shown
    ]
    more = len(scorecard.perspectives) - len(shown)
    text = "*Balanced scorecard*" + (f" (…and {plural(more, 'more perspective')})" if more else "")
    return [section_block(text, fields)]


def kpis_block(scorecard: Scorecard, level: DetailLevel) -> list[Block]:
    shown = scorecard.kpis[: level.max_facts]
    if not shown:
        return []
    name_limit = min(80, level.objective_title_limit)
    fields = [
        f"{KPI_EMOJI.get(kpi.status, KPI_EMOJI[None])} *{mrkdwn_text(kpi.id, 40)}* "
        f"{mrkdwn_text(kpi.title, name_limit)}\n"
        f"{format_number(kpi.value)} · {kpi.status or 'no value'}"
        + (f" · {trend}" if (trend := kpi_trend_text(kpi)) else "")
        for kpi in shown
    ]
    if any(len(field) > SLACK_FIELD_LIMIT for field in fields):
        raise ValueError("KPI field composed beyond Slack's limit")
    more = len(scorecard.kpis) - len(shown)
    text = "*KPIs*" + (f" (…and {plural(more, 'more KPI')})" if more else "")
    return [section_block(text, fields)]


def warnings_block(scorecard: Scorecard, level: DetailLevel) -> list[Block]:
    if not scorecard.warnings or not level.max_warnings:
        return []
    elements = [
        ":warning: "
        + (f"{mrkdwn_id(w.kr)}: " if w.kr is not None else "")
        + mrkdwn_text(w.message, 300)
        for w in scorecard.warnings[: level.max_warnings]
    ]
    more = len(scorecard.warnings) - level.max_warnings
    if more > 0:
        elements.append(f"…and {plural(more, 'more warning')}")
    return [context_block(elements)]


def scorecard_fallback(scorecard: Scorecard, head: str) -> str:
    items = [
        f"{mrkdwn_id(o.id)} {mrkdwn_text(o.title, 80)}: "
        + (f"{percent(o.score)}, {confidence_label(o.confidence)}" if o.score is not None
           else NOT_MEASURED)
        for _, o in objectives_in_tree_order(scorecard.objectives)
    ]
    return fallback_text(head, items, "objective")


def render_slack_scorecard(
    scorecard: Scorecard, *, title: str | None = None, jira_base_url: JiraBase = None
) -> SlackPayload:
    """The standing scorecard message of a route, within Slack's limits.

    ``title`` (plain text, e.g. the route's name) heads the message; by default
    "OKR scorecard · <cycle>". ``jira_base_url`` turns KR links given as issue keys
    or site paths into absolute links. A plan too big to show in full is
    summarised ("…and N more key results/objectives"), never cut mid-text.
    """
    heading = title if title is not None else f"OKR scorecard · {scorecard.cycle.name}"
    ordered = objectives_in_tree_order(scorecard.objectives)
    all_krs = scorecard.key_results()
    named = mrkdwn_text(heading, 150)
    if title is not None:
        named += f" · {mrkdwn_text(scorecard.cycle.name, 80)}"
    text = scorecard_fallback(
        scorecard,
        f"{named} ({percent(scorecard.cycle.elapsed)} of the cycle elapsed, "
        f"as of {format_as_of(scorecard.cycle.as_of)})",
    )

    def build(level: DetailLevel) -> SlackPayload:
        blocks: list[Block] = [
            header_block(heading),
            context_block(
                [
                    mrkdwn_text(cycle_line(scorecard.cycle), 300),
                    mrkdwn_text(confidence_summary(all_krs), 300),
                ]
            ),
        ]
        blocks += perspectives_block(scorecard, level)
        blocks.append(divider_block())
        room = SLACK_MAX_BLOCKS - _FIXED_BLOCKS
        limit = room if level.max_objectives is None else min(room, level.max_objectives)
        blocks += [objective_section(d, o, level, jira_base_url, scorecard.cycle)
                   for d, o in ordered[:limit]]
        if len(ordered) > limit:
            blocks.append(context_block([f"…and {plural(len(ordered) - limit, 'more objective')}"]))
        kpis = kpis_block(scorecard, level)
        if kpis:
            blocks.append(divider_block())
            blocks += kpis
        blocks += warnings_block(scorecard, level)
        blocks.append(context_block([updated_footer(scorecard)]))
        return SlackPayload(text=text, blocks=tuple(blocks))

    return fit_slack(build)
