"""Formatting shared by the Slack and Teams renderers."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from okr_sync.scoring.scorecard import Change, ItemCounts
from okr_sync.sync.delivery.render import render_slack_change_note, render_slack_scorecard
from okr_sync.sync.delivery.render.common import (
    ChangeView,
    Contact,
    band_shown,
    delta_points,
    format_number,
    kr_pace_text,
    kr_value_text,
    objectives_in_tree_order,
    percent,
    progress_bar,
    resolve_link,
    text_units,
    truncate,
)
from okr_sync.sync.delivery.render.layout import DETAIL_LEVELS, movers, needs_attention
from support.scorecards import (
    JIRA,
    cycle,
    key_result,
    objective,
    previous_week,
    realistic_scorecard,
)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.5333, "53%"), (0.005, "1%"), (0.125, "13%"), (0.0, "0%"), (1.0, "100%"), (None, "—")],
)
def test_percent_given_score_rounds_half_up(score: float | None, expected: str) -> None:
    assert percent(score) == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.53, "▰▰▰▰▰▱▱▱▱▱"),
        (0.99, "▰▰▰▰▰▰▰▰▰▱"),
        (1.0, "▰▰▰▰▰▰▰▰▰▰"),
        (1.7, "▰▰▰▰▰▰▰▰▰▰"),
        (-0.2, "▱▱▱▱▱▱▱▱▱▱"),
        (None, "▱▱▱▱▱▱▱▱▱▱"),
        (0.3, "▰▰▰▱▱▱▱▱▱▱"),
    ],
)
def test_progress_bar_given_score_fills_whole_cells_only(
    score: float | None, expected: str
) -> None:
    assert progress_bar(score) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4, "4"), (4.0, "4"), (0.42, "0.42"), (78.5, "78.5"), (12345.678, "12,345.68"), (None, "—")],
)
def test_format_number_given_value_is_short_and_readable(
    value: float | None, expected: str
) -> None:
    assert format_number(value) == expected


def test_delta_points_given_move_is_signed() -> None:
    assert delta_points(0.30, 0.42) == "+12 pp"
    assert delta_points(0.42, 0.30) == "-12 pp"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "5 of 12 items done"),
        ({"unit": "story_points", "items": ItemCounts(12, 5, 65, 144)}, "65 of 144 pts done"),
        ({"unit": "story_points", "items": ItemCounts(12, 5)}, "42% of points done"),
        ({"measure_kind": "sum", "unit": "story_points", "value": 78.5, "target": 120,
          "items": ItemCounts(30, 19)}, "78.5 of 120 pts"),
        ({"measure_kind": "milestone", "value": 0}, "not reached (5 of 12 items done)"),
        ({"measure_kind": "count", "value": 12, "baseline": 40, "target": 5}, "12 (40 → 5)"),
        ({"measure_kind": "manual", "value": 4, "target": 10, "items": None}, "4 / 10"),
        (
            {"measure_kind": "manual", "value": 1, "target": 2, "direction": "at_most"},
            "1 (target ≤ 2)",
        ),
        (
            {"measure_kind": "sum", "value": 3, "target": 8, "direction": "at_least"},
            "3 (target ≥ 8)",
        ),
    ],
)
def test_kr_value_text_given_measure_kind_speaks_its_terms(
    overrides: dict[str, object], expected: str
) -> None:
    assert kr_value_text(key_result(**overrides)) == expected


def test_truncate_given_long_text_cuts_with_ellipsis_within_utf16_units() -> None:
    text = "🚀" * 100
    cut = truncate(text, 11)
    assert cut.endswith("…")
    assert text_units(cut) <= 11


def test_truncate_given_newlines_flattens_to_one_line() -> None:
    assert truncate("Ship\n\nSSO   now", 100) == "Ship SSO now"


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        (f"{JIRA}/browse/ENT-1", None, (f"{JIRA}/browse/ENT-1", "ENT-1")),
        ("ENT-7", JIRA, (f"{JIRA}/browse/ENT-7", "ENT-7")),
        ("/issues/?filter=1", JIRA + "/", (f"{JIRA}/issues/?filter=1", "Jira filter")),
        ("ENT-7", None, None),
        ("javascript:alert(1)", JIRA, None),
        ("//evil.example/x", JIRA, None),
        (
            f"{JIRA}/browse/ENT-1|<!channel>",
            None,
            (f"{JIRA}/browse/ENT-1%7C%3C!channel%3E", "Jira"),
        ),
    ],
)
def test_resolve_link_given_link_keeps_only_safe_http_targets(
    link: str, base: str | None, expected: tuple[str, str] | None
) -> None:
    resolved = resolve_link(link, base)
    assert (None if resolved is None else (resolved.url, resolved.label)) == expected


def test_objectives_in_tree_order_given_cascade_puts_children_after_parent() -> None:
    objectives = [
        objective(id="B", parent="A"),
        objective(id="C"),
        objective(id="A"),
        objective(id="D", parent="missing"),
        objective(id="E", parent="B"),
    ]
    ordered = [(depth, o.id) for depth, o in objectives_in_tree_order(objectives)]
    assert ordered == [(0, "C"), (0, "A"), (1, "B"), (2, "E"), (0, "D")]


def test_objectives_in_tree_order_given_parent_cycle_lists_each_once() -> None:
    objectives = [objective(id="A", parent="B"), objective(id="B", parent="A")]
    assert sorted(o.id for _, o in objectives_in_tree_order(objectives)) == ["A", "B"]


def test_change_view_given_transitions_lists_band_and_confidence_moves() -> None:
    change = Change("K", 0.3, 0.42, (), "missed", "progress", "off_track", "at_risk")
    view = ChangeView(change=change, kr=None)
    assert view.score_text() == "30% → 42% (+12 pp)"
    assert view.transitions() == ["band missed → progress", "off track → at risk"]
    # Mid-cycle a band move is no news of its own; at the end it is the grade.
    assert view.transitions(cycle(elapsed=0.5)) == ["off track → at risk"]
    assert view.transitions(cycle(elapsed=1.0))[0] == "band missed → progress"


def test_change_view_given_new_kr_says_new() -> None:
    assert ChangeView(Change("K", None, 1.0), None).score_text() == "new, 100%"


def test_needs_attention_given_scorecard_orders_worst_first() -> None:
    ids = [kr.id for kr in needs_attention(realistic_scorecard())]
    assert ids == ["LG-1.KR1", "IP-1.KR1", "CO-1.KR3", "CO-1.KR1"]


def test_movers_given_previous_week_ranks_biggest_moves_first() -> None:
    scorecard = realistic_scorecard()
    earlier = previous_week(scorecard)
    bumped = replace(earlier.objectives[1].key_results[1], score=0.5)
    earlier = replace(
        earlier,
        objectives=(
            earlier.objectives[0],
            replace(
                earlier.objectives[1], key_results=(earlier.objectives[1].key_results[0], bumped)
            ),
            *earlier.objectives[2:],
        ),
    )
    assert [m.kr.id for m in movers(scorecard, earlier)][:2] == ["CO-1.KR2", "CO-1.KR1"]
    assert movers(scorecard, None) == []


def test_detail_levels_given_order_only_ever_reduce_detail() -> None:
    for finer, coarser in itertools.pairwise(DETAIL_LEVELS):
        assert coarser.kr_title_limit <= finer.kr_title_limit
        assert coarser.max_items <= finer.max_items
        assert coarser.max_links <= finer.max_links


def test_kr_value_text_given_items_without_done_shows_counts() -> None:
    kr = key_result(items=ItemCounts(selected=3, done=0))
    assert kr_value_text(kr) == "0 of 3 items done"


@pytest.mark.parametrize(
    ("overrides", "elapsed", "expected"),
    [
        ({}, 0.67, "expected 67% by now"),
        ({}, 1.0, None),  # the cycle is over: the band is the grade now
        ({}, 0.0, None),
        ({"score": 1.0}, 0.5, "target reached"),
        ({"score": None}, 0.5, None),
        ({"measure_kind": "milestone"}, 0.5, None),
        ({"direction": "at_most"}, 0.5, None),
    ],
)
def test_kr_pace_text_given_kr_and_elapsed_says_where_it_should_be(
    overrides: dict[str, object], elapsed: float, expected: str | None
) -> None:
    assert kr_pace_text(key_result(**overrides), elapsed) == expected


def test_band_shown_given_cycle_running_hides_the_band_until_the_end() -> None:
    assert band_shown("missed", cycle(elapsed=0.5)) is None
    assert band_shown("missed", cycle(elapsed=1.0)) == "missed"


def test_render_slack_scorecard_given_failed_band_mid_cycle_leads_with_confidence() -> None:
    kr = key_result(score=0.3, value=0.3, band="missed", confidence="on_track")
    card = replace(realistic_scorecard(), objectives=(objective(key_results=(kr,)),),
                   cycle=cycle(elapsed=0.45))
    text = json.dumps(render_slack_scorecard(card).to_json(), ensure_ascii=False)
    assert "missed" not in text
    assert ":large_green_circle: on track · expected 45% by now" in text
    ended = replace(card, cycle=cycle(elapsed=1.0))
    assert "missed" in json.dumps(render_slack_scorecard(ended).to_json())


def test_render_slack_change_note_given_contacts_mentions_owner_by_id() -> None:
    scorecard = realistic_scorecard()
    note = render_slack_change_note(
        scorecard, contacts={"CO-1.KR1": Contact("Alice Ng", slack="U0ALICE01")})
    assert note is not None
    body = json.dumps(note.to_json())
    assert "owner <@U0ALICE01>" in body
    plain = render_slack_change_note(scorecard)
    assert plain is not None and "<@" not in json.dumps(plain.to_json())
    assert "owner Alice Ng" in json.dumps(plain.to_json())
