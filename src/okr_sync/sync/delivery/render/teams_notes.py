"""Teams cards besides the standing scorecard: change card, weekly digest, check-in reminder."""

from __future__ import annotations

from collections.abc import Sequence

from okr_sync.scoring.scorecard import Change, KeyResultScore, Scorecard
from okr_sync.sync.delivery.render.common import (
    Contacts,
    change_views,
    confidence_counts,
    confidence_label,
    delta_points,
    format_number,
    kr_pace_text,
    kr_value_text,
    manual_key_results,
    objectives_in_tree_order,
    owner_text,
    pace_suffix,
    percent,
    plural,
    progress_bar,
    short_id,
    truncate,
)
from okr_sync.sync.delivery.render.layout import (
    MAX_ATTENTION,
    MAX_CHANGES,
    MAX_REMINDER_KRS,
    DetailLevel,
    movers,
    needs_attention,
    previous_objective_score,
)
from okr_sync.sync.delivery.render.slack_notes import CHECKIN_HINT, checkin_command
from okr_sync.sync.delivery.render.teams import (
    CONFIDENCE_COLOR,
    KPI_EMOJI,
    Card,
    confidence_badge,
    confidence_summary,
    cycle_block,
    fallback,
    fit_card,
    footer,
)
from okr_sync.sync.delivery.render.teams_checkin import checkin_form as form_for
from okr_sync.sync.delivery.render.teams_elements import (
    TEAMS_CARD_BUDGET,
    Element,
    adaptive_card,
    container,
    mention,
    rich_text,
    text_block,
    text_run,
)

FORM_HINT = "Check in sets a value, a confidence and a note; the next change note shows it."


def _heading(text: str) -> Element:
    return rich_text([text_run(truncate(text, 150), size="large", weight="bolder")])


def _more(count: int, noun: str) -> Element:
    return text_block(f"…and {plural(count, 'more ' + noun)}", subtle=True, spacing="small")


def owner_element(
    kr: KeyResultScore | None, contacts: Contacts | None
) -> tuple[Element | None, Element | None]:
    """The owner line of a KR in a change or reminder card, and its mention entity.

    An owner the plan maps to a Teams id is mentioned (``<at>``, with the entity the
    card must declare); any other owner is named as plain text.
    """
    if kr is None:
        return None, None
    contact = (contacts or {}).get(kr.id)
    if contact is not None and contact.teams is not None:
        text, entity = mention(contact.name, contact.teams)
        return text_block(f"owner {text}", subtle=True, size="small", spacing="none"), entity
    owner = owner_text(kr.owner)
    if owner is None:
        return None, None
    return rich_text([text_run(truncate(owner, 120), subtle=True)], spacing="none"), None


def render_teams_change_card(
    scorecard: Scorecard,
    changes: Sequence[Change] | None = None,
    *,
    budget: int = TEAMS_CARD_BUDGET,
    contacts: Contacts | None = None,
    checkin_form: bool = False,
) -> Card | None:
    """News only, as a card: each changed KR with its move, confidence, pace, reasons,
    check-in note and owner (mentioned when ``contacts`` has their Teams id).

    ``changes`` defaults to ``scorecard.changes``; returns None when there is none.
    ``checkin_form`` (bot cards, when serve answers them) adds each KR's check-in form.
    """
    chosen = list(scorecard.changes if changes is None else changes)
    if not chosen:
        return None
    views = change_views(scorecard, chosen)
    cycle = scorecard.cycle
    title = f"{plural(len(chosen), 'key result')} changed · {scorecard.cycle.name}"

    def build(level: DetailLevel) -> Card:
        limit = min(MAX_CHANGES, level.max_items)
        body: list[Element] = [_heading(title), cycle_block(scorecard)]
        mentions: list[Element] = []
        for view in views[:limit]:
            color = CONFIDENCE_COLOR.get(view.change.to_confidence or "")
            runs = [
                text_run(f"{short_id(view.change.kr)} ", weight="bolder"),
                text_run(truncate(view.title, level.kr_title_limit)),
                text_run(f": {view.score_text()}", weight="bolder", color=color),
            ]
            for part in view.transitions(cycle):
                runs.append(text_run(f" · {truncate(part, 120)}", subtle=True))
            pace = None if view.kr is None else kr_pace_text(view.kr, cycle.elapsed)
            if pace is not None:
                runs.append(text_run(f" · {pace}", subtle=True))
            items = [rich_text(runs)]
            if view.change.reasons:
                reasons = truncate(", ".join(view.change.reasons), 300)
                items.append(
                    rich_text([text_run(reasons, italic=True, subtle=True)], spacing="none")
                )
            note = view.note_text()
            if note is not None:
                items.append(rich_text([text_run("📝 " + truncate(note, 300), subtle=True)],
                                       spacing="none"))
            owner, entity = owner_element(view.kr, contacts)
            if owner is not None:
                items.append(owner)
            if entity is not None:
                mentions.append(entity)
            if checkin_form and view.kr is not None:
                items.append(form_for(view.kr.id, view.kr.title,
                                      manual=view.kr.measure_kind == "manual"))
            body.append(container(items, separator=True, spacing="small"))
        if len(views) > limit:
            body.append(_more(len(views) - limit, "change"))
        body.append(footer(scorecard))
        return adaptive_card(
            body,
            fallback_text=fallback(
                title,
                [
                    f"{short_id(v.change.kr)} {truncate(v.title, 40)}: {v.score_text()}"
                    for v in views
                ],
            ),
            mentions=mentions,
        )

    return fit_card(build, budget)


def change_summary(scorecard: Scorecard, changes: Sequence[Change] | None = None) -> str:
    """The notification text of a change card: how many moved, and the first moves."""
    views = change_views(scorecard, list(scorecard.changes if changes is None else changes))
    head = f"{plural(len(views), 'key result')} changed"
    return head + ": " + "; ".join(view.summary() for view in views[:3]) if views else head


def render_teams_digest_card(
    scorecard: Scorecard,
    previous: Scorecard | None = None,
    *,
    title: str | None = None,
    budget: int = TEAMS_CARD_BUDGET,
) -> Card:
    """The weekly digest card; ``previous`` (a week-old scorecard) adds week-over-week moves."""
    heading = title if title is not None else f"Weekly OKR digest · {scorecard.cycle.name}"
    krs = scorecard.key_results()
    ordered = objectives_in_tree_order(scorecard.objectives)
    attention = needs_attention(scorecard)
    moved = movers(scorecard, previous)
    off_kpis = [kpi for kpi in scorecard.kpis if kpi.status != "green"]

    def build(level: DetailLevel) -> Card:
        body: list[Element] = [
            _heading(heading),
            cycle_block(scorecard),
            text_block(
                f"{plural(len(scorecard.objectives), 'objective')} · {confidence_summary(krs)}",
                spacing="small",
            ),
        ]
        limit = len(ordered) if level.max_objectives is None else level.max_objectives
        rows: list[Element] = [text_block("Objectives", weight="bolder", heading=True)]
        for depth, objective in ordered[:limit]:
            before = previous_objective_score(objective, previous)
            moved_text = (
                f" ({delta_points(before, objective.score)} this week)"
                if before is not None
                else ""
            )
            rows.append(
                rich_text(
                    [
                        text_run(f"{'↳ ' * min(depth, 3)}{progress_bar(objective.score)} "),
                        text_run(
                            percent(objective.score),
                            weight="bolder",
                            color=CONFIDENCE_COLOR.get(objective.confidence or ""),
                        ),
                        text_run(
                            f" {short_id(objective.id)} "
                            + truncate(objective.title, level.objective_title_limit)
                        ),
                        text_run(moved_text, subtle=True),
                    ],
                    spacing="small",
                )
            )
        if len(ordered) > limit:
            rows.append(_more(len(ordered) - limit, "objective"))
        body.append(container(rows, separator=True))
        if attention:
            shown = attention[: min(MAX_ATTENTION, level.max_items)]
            rows = [text_block("Needs attention", weight="bolder", heading=True)]
            rows += [
                rich_text(
                    [
                        text_run(f"{confidence_badge(kr.confidence)} "),
                        text_run(f"{short_id(kr.id)} ", weight="bolder"),
                        text_run(truncate(kr.title, level.kr_title_limit)),
                        text_run(
                            f" — {percent(kr.score)}{pace_suffix(kr, scorecard.cycle.elapsed)}"
                            f" · {truncate(kr_value_text(kr), 120)}"
                            + (f" · {truncate(owner, 120)}"
                               if (owner := owner_text(kr.owner)) else ""),
                            subtle=True,
                        ),
                    ],
                    spacing="small",
                )
                for kr in shown
            ]
            if len(attention) > len(shown):
                rows.append(_more(len(attention) - len(shown), "key result"))
            body.append(container(rows, separator=True))
        if moved:
            rows = [text_block("Biggest moves this week", weight="bolder", heading=True)]
            rows += [
                rich_text(
                    [
                        text_run(f"{short_id(m.kr.id)} ", weight="bolder"),
                        text_run(truncate(m.kr.title, level.kr_title_limit)),
                        text_run(
                            f": {percent(m.before)} → {percent(m.kr.score)} "
                            f"({delta_points(m.before, m.kr.score)})",
                            weight="bolder",
                        ),
                    ],
                    spacing="small",
                )
                for m in moved
            ]
            body.append(container(rows, separator=True))
        if off_kpis:
            rows = [text_block("KPIs off target", weight="bolder", heading=True)]
            rows += [
                rich_text(
                    [
                        text_run(
                            f"{KPI_EMOJI.get(k.status, KPI_EMOJI[None])} {short_id(k.id)} ",
                            weight="bolder",
                        ),
                        text_run(truncate(k.title, 80)),
                        text_run(f": {format_number(k.value)}"),
                    ],
                    spacing="small",
                )
                for k in off_kpis[: level.max_facts]
            ]
            if len(off_kpis) > level.max_facts:
                rows.append(_more(len(off_kpis) - level.max_facts, "KPI"))
            body.append(container(rows, separator=True))
        body.append(footer(scorecard))
        return adaptive_card(
            body,
            fallback_text=fallback(
                f"{heading}: {confidence_summary(krs)}",
                [
                    f"{short_id(o.id)} {truncate(o.title, 40)}: {percent(o.score)}"
                    for _, o in ordered
                ],
            ),
        )

    return fit_card(build, budget)


def render_teams_checkin_reminder_card(
    scorecard: Scorecard,
    manual_krs: Sequence[KeyResultScore] | None = None,
    *,
    budget: int = TEAMS_CARD_BUDGET,
    contacts: Contacts | None = None,
    checkin_form: bool = False,
) -> Card | None:
    """Ask for fresh values of manual KRs (default: every ``manual`` KR), mentioning
    their owners when ``contacts`` has their Teams ids.

    Returns None when there is none, so that nothing is posted. ``checkin_form`` (bot
    cards, when serve answers them) puts each KR's check-in form where the command is.
    """
    chosen = list(manual_key_results(scorecard) if manual_krs is None else manual_krs)
    if not chosen:
        return None
    title = f"Check-in time · {plural(len(chosen), 'manual key result')} need a fresh value"

    def build(level: DetailLevel) -> Card:
        shown = chosen[: min(MAX_REMINDER_KRS, level.max_items)]
        body: list[Element] = [_heading(title), cycle_block(scorecard)]
        mentions: list[Element] = []
        for kr in shown:
            owner, entity = owner_element(kr, contacts)
            if entity is not None:
                mentions.append(entity)
            body.append(
                container(
                    [
                        rich_text(
                            [
                                text_run(f"{short_id(kr.id)} ", weight="bolder"),
                                text_run(truncate(kr.title, level.kr_title_limit)),
                                text_run(
                                    f" — now {truncate(kr_value_text(kr), 120)} · "
                                    f"{confidence_badge(kr.confidence)}",
                                    subtle=True,
                                ),
                            ]
                        ),
                        *([owner] if owner is not None else []),
                        form_for(kr.id, kr.title, manual=True) if checkin_form else rich_text(
                            [text_run(truncate(checkin_command(kr), 300), monospace=True)],
                            spacing="none",
                        ),
                    ],
                    separator=True,
                    spacing="small",
                )
            )
        if len(chosen) > len(shown):
            body.append(_more(len(chosen) - len(shown), "key result"))
        hint = FORM_HINT if checkin_form else CHECKIN_HINT.replace("`", "")
        body.append(rich_text([text_run(hint, subtle=True)], spacing="medium"))
        return adaptive_card(
            body,
            fallback_text=fallback(
                title,
                [
                    f"{short_id(kr.id)} {truncate(kr.title, 40)} — now {kr_value_text(kr)}"
                    for kr in chosen
                ],
            ),
            mentions=mentions,
        )

    return fit_card(build, budget)


def teams_summary(kind: str, scorecard: Scorecard) -> str:
    """The plain-text ``summary`` of a Teams message of ``kind``, for notifications."""
    counts = ", ".join(
        f"{count} {confidence_label(name)}"
        for name, count in confidence_counts(scorecard.key_results()).items()
    )
    cycle = scorecard.cycle.name
    if kind == "change_note":
        return change_summary(scorecard)
    if kind == "reminder":
        manual = len(manual_key_results(scorecard))
        return f"Check-in time · {cycle}: {plural(manual, 'manual key result')} need a fresh value"
    if kind == "digest":
        return f"Weekly OKR digest · {cycle}: {counts or 'no key results'}"
    return f"OKR scorecard · {cycle}: {counts or 'no key results'}"
