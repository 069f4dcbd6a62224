"""Slack messages besides the standing scorecard: change note, weekly digest, check-in reminder."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from okr_sync.scoring.scorecard import Change, KeyResultScore, Scorecard
from okr_sync.sync.delivery.render.common import (
    Contacts,
    change_views,
    cycle_line,
    delta_points,
    format_as_of,
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
    text_units,
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
from okr_sync.sync.delivery.render.slack import (
    KPI_EMOJI,
    confidence_badge,
    confidence_summary,
    fit_slack,
    updated_footer,
)
from okr_sync.sync.delivery.render.slack_blocks import (
    SLACK_MAX_BLOCKS,
    SLACK_TOTAL_TEXT_BUDGET,
    Block,
    SlackPayload,
    context_block,
    fallback_text,
    header_block,
    mrkdwn_id,
    mrkdwn_text,
    section_block,
    spread_lines,
)
from okr_sync.sync.delivery.render.slack_checkin import (
    ACTIONS_MAX_ELEMENTS,
    BUTTON_HINT,
    checkin_actions,
)

CHECKIN_HINT = (
    "Add `--confidence on_track|at_risk|off_track|blocked` or `--note TEXT` "
    "to tell the story behind the number."
)


def slack_owner(kr: KeyResultScore | None, contacts: Contacts | None) -> str | None:
    """``owner <@U123>`` when the plan gives the owner's Slack id, else ``owner Name``.

    Only change notes and reminders call this with ``contacts``: the standing message
    is edited on every sync and must not ping anyone each time.
    """
    if kr is None:
        return None
    contact = (contacts or {}).get(kr.id)
    if contact is not None and contact.slack is not None:
        # The id was checked by the plan loader (U/W and capitals or digits only).
        return f"owner <@{contact.slack}>"
    owner = owner_text(kr.owner)
    return None if owner is None else mrkdwn_text(owner, 120)


def render_slack_change_note(
    scorecard: Scorecard, changes: Sequence[Change] | None = None, *,
    contacts: Contacts | None = None, checkin_buttons: bool = False,
) -> SlackPayload | None:
    """News only: each changed KR with its move, confidence, pace, reasons and check-in note.

    Meant as a thread reply under the standing message (the sender sets
    ``thread_ts``). ``changes`` defaults to ``scorecard.changes``; ``contacts`` (KR id
    -> owner's contact) turns owners into mentions. Returns None when there is no
    change, so that nothing is posted. ``checkin_buttons`` (serve answers Slack's
    interactivity) adds a "Check in" button per changed KR, up to 25.
    """
    chosen = list(scorecard.changes if changes is None else changes)
    if not chosen:
        return None
    views = change_views(scorecard, chosen)
    cycle = scorecard.cycle
    lines: list[str] = []
    for view in views[:MAX_CHANGES]:
        line = f"• *{mrkdwn_id(view.change.kr)}*"
        if view.title:
            line += f" {mrkdwn_text(view.title, 120)}"
        line += f": {view.score_text()}"
        for part in view.transitions(cycle):
            line += f" · {mrkdwn_text(part, 120)}"
        pace = None if view.kr is None else kr_pace_text(view.kr, cycle.elapsed)
        if pace is not None:
            line += f" · {pace}"
        owner = slack_owner(view.kr, contacts)
        if owner is not None:
            line += f" · {owner}"
        if view.change.reasons:
            line += f"\n      _{mrkdwn_text(', '.join(view.change.reasons), 300)}_"
        note = view.note_text()
        if note is not None:
            line += f"\n      :memo: {mrkdwn_text(note, 300)}"
        lines.append(line)
    heading = (
        f"*{plural(len(chosen), 'key result')} changed* · "
        f"{mrkdwn_text(scorecard.cycle.name, 80)} · as of {format_as_of(scorecard.cycle.as_of)}"
    )
    buttons = checkin_actions([v.change.kr for v in views[:ACTIONS_MAX_ELEMENTS]]
                              if checkin_buttons else [])
    blocks = [section_block(heading)]
    blocks += spread_lines(
        lines,
        "change",
        budget=SLACK_TOTAL_TEXT_BUDGET - text_units(heading) - (1000 if buttons else 0),
        max_blocks=SLACK_MAX_BLOCKS - 1 - len(buttons),
        already_omitted=len(chosen) - len(lines),
    )
    blocks += buttons
    items = [
        " ".join(filter(None, [mrkdwn_id(v.change.kr), mrkdwn_text(v.title, 60)]))
        + f": {v.score_text()}"
        for v in views
    ]
    text = fallback_text(f"{plural(len(chosen), 'key result')} changed:", items, "change")
    return SlackPayload(text=text, blocks=tuple(blocks))


def _digest_objective_lines(
    scorecard: Scorecard, previous: Scorecard | None, level: DetailLevel
) -> tuple[list[str], int]:
    ordered = objectives_in_tree_order(scorecard.objectives)
    limit = len(ordered) if level.max_objectives is None else level.max_objectives
    lines = ["*Objectives*"]
    for depth, objective in ordered[:limit]:
        before = previous_objective_score(objective, previous)
        moved = (
            f" ({delta_points(before, objective.score)} this week)" if before is not None else ""
        )
        lines.append(
            f"{'↳ ' * min(depth, 3)}{progress_bar(objective.score)} *{percent(objective.score)}* "
            f"{mrkdwn_id(objective.id)} "
            f"{mrkdwn_text(objective.title, level.objective_title_limit)}{moved}"
        )
    return lines, len(ordered) - min(limit, len(ordered))


def render_slack_digest(
    scorecard: Scorecard, previous: Scorecard | None = None, *, title: str | None = None
) -> SlackPayload:
    """The weekly digest: where every objective stands, what needs attention, what moved.

    ``previous`` is the scorecard published about a week earlier (from the
    state store's history); without it, the week-over-week parts are left out.
    """
    heading = title if title is not None else f"Weekly OKR digest · {scorecard.cycle.name}"
    krs = scorecard.key_results()
    attention = needs_attention(scorecard)
    moved = movers(scorecard, previous)
    off_kpis = [kpi for kpi in scorecard.kpis if kpi.status != "green"]
    text = fallback_text(
        f"{mrkdwn_text(heading, 150)}: " + mrkdwn_text(confidence_summary(krs), 300),
        [
            f"{mrkdwn_id(o.id)} {mrkdwn_text(o.title, 80)}: {percent(o.score)}"
            for _, o in objectives_in_tree_order(scorecard.objectives)
        ],
        "objective",
    )

    def build(level: DetailLevel) -> SlackPayload:
        blocks: list[Block] = [
            header_block(heading),
            context_block([mrkdwn_text(cycle_line(scorecard.cycle), 300)]),
            section_block(
                f"*{plural(len(scorecard.objectives), 'objective')}* · "
                + mrkdwn_text(confidence_summary(krs), 400)
            ),
        ]
        objective_lines, hidden = _digest_objective_lines(scorecard, previous, level)
        groups: list[tuple[list[str], str, int]] = [(objective_lines, "objective", hidden)]
        if attention:
            lines = ["*Needs attention*"] + [
                f"• {confidence_badge(kr.confidence)} *{mrkdwn_id(kr.id)}* "
                f"{mrkdwn_text(kr.title, level.kr_title_limit)} — {percent(kr.score)}"
                f"{pace_suffix(kr, scorecard.cycle.elapsed)} · "
                f"{mrkdwn_text(kr_value_text(kr), 120)}"
                + (f" · {mrkdwn_text(owner, 120)}" if (owner := owner_text(kr.owner)) else "")
                for kr in attention[: min(MAX_ATTENTION, level.max_items)]
            ]
            groups.append((lines, "key result", len(attention) + 1 - len(lines)))
        if moved:
            lines = ["*Biggest moves this week*"] + [
                f"• *{mrkdwn_id(m.kr.id)}* {mrkdwn_text(m.kr.title, level.kr_title_limit)}: "
                f"{percent(m.before)} → {percent(m.kr.score)} "
                f"({delta_points(m.before, m.kr.score)})"
                for m in moved
            ]
            groups.append((lines, "move", 0))
        if off_kpis:
            lines = ["*KPIs off target*"] + [
                f"• {KPI_EMOJI.get(k.status, KPI_EMOJI[None])} *{mrkdwn_id(k.id)}* "
                f"{mrkdwn_text(k.title, 80)}: {format_number(k.value)}"
                for k in off_kpis[: level.max_facts]
            ]
            groups.append((lines, "KPI", len(off_kpis) - level.max_facts))
        for lines, noun, omitted in groups:
            blocks += spread_lines(
                lines, noun, budget=3000, max_blocks=6, already_omitted=max(0, omitted)
            )
        blocks.append(context_block([updated_footer(scorecard)]))
        return SlackPayload(text=text, blocks=tuple(blocks))

    return fit_slack(build)


def checkin_command(kr: KeyResultScore) -> str:
    return f"okr-sync checkin {shlex.quote(kr.id)} --value V"


def render_slack_checkin_reminder(
    scorecard: Scorecard, manual_krs: Sequence[KeyResultScore] | None = None, *,
    contacts: Contacts | None = None, checkin_buttons: bool = False,
) -> SlackPayload | None:
    """Ask for fresh values of manual KRs, each with its current value and check-in command.

    ``manual_krs`` defaults to every KR of the scorecard whose measure is
    ``manual``; ``contacts`` mentions their owners. Returns None when there is none,
    so that nothing is posted. ``checkin_buttons`` (serve answers Slack's
    interactivity) puts a "Check in" button per KR in place of the CLI command.
    """
    chosen = list(manual_key_results(scorecard) if manual_krs is None else manual_krs)
    if not chosen:
        return None
    heading = (
        f"*:memo: Check-in time* · {plural(len(chosen), 'manual key result')} in "
        f"{mrkdwn_text(scorecard.cycle.name, 80)} need a fresh value"
    )
    lines = []
    for kr in chosen[:MAX_REMINDER_KRS]:
        owner = slack_owner(kr, contacts)
        lines.append(
            f"• *{mrkdwn_id(kr.id)}* {mrkdwn_text(kr.title, 120)} — now "
            f"{mrkdwn_text(kr_value_text(kr), 120)} · {confidence_badge(kr.confidence)}"
            + (f" · {owner}" if owner is not None else "")
            + ("" if checkin_buttons else f"\n      `{mrkdwn_text(checkin_command(kr), 300)}`")
        )
    # MAX_REMINDER_KRS is 25: one actions block holds every button.
    buttons = checkin_actions([kr.id for kr in chosen[:MAX_REMINDER_KRS]]
                              if checkin_buttons else [])
    blocks = [section_block(heading)]
    blocks += spread_lines(
        lines,
        "key result",
        budget=SLACK_TOTAL_TEXT_BUDGET - 1000 - (1000 if buttons else 0),
        max_blocks=SLACK_MAX_BLOCKS - 3 - len(buttons),
        already_omitted=len(chosen) - len(lines),
    )
    blocks += buttons
    blocks.append(context_block([BUTTON_HINT if buttons else CHECKIN_HINT]))
    text = fallback_text(
        f"Check-in time: {plural(len(chosen), 'manual key result')} need a fresh value:",
        [
            f"{mrkdwn_id(kr.id)} {mrkdwn_text(kr.title, 80)} "
            f"— now {mrkdwn_text(kr_value_text(kr), 120)}"
            for kr in chosen
        ],
        "key result",
    )
    return SlackPayload(text=text, blocks=tuple(blocks))
