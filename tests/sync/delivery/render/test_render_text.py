"""Outside text on chat surfaces: bidi controls closed, cuts between grapheme clusters."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.delivery.render import (
    render_slack_change_note,
    render_slack_scorecard,
    render_teams_change_card,
    render_teams_scorecard_card,
)
from okr_sync.sync.delivery.render.common import ELLIPSIS, graphemes, text_units, truncate
from okr_sync.sync.delivery.render.report import render_html_report
from okr_sync.sync.delivery.render.slack_blocks import mrkdwn_text
from support.reports import report_data
from support.scorecards import key_result, objective, realistic_scorecard

RLO, PDF, LRI, PDI = "\u202e", "\u202c", "\u2066", "\u2069"
_OPENERS = {"\u202a", "\u202b", "\u202d", "\u202e"}
_ISOLATES = {"\u2066", "\u2067", "\u2068"}

FAMILY = "👩\u200d👩\u200d👧\u200d👦"  # one ZWJ sequence of seven code points
FLAG = "🇫🇷"
THUMB = "👍🏽"  # with a skin tone
ACCENTED = "e\u0301\u0327"  # e + two combining marks


def _balanced(text: str) -> bool:
    """Every embedding/override closed by PDF and isolate by PDI, in order."""
    stack: list[str] = []
    for char in text:
        if char in _OPENERS:
            stack.append(PDF)
        elif char in _ISOLATES:
            stack.append(PDI)
        elif char in (PDF, PDI) and (not stack or stack.pop() != char):
            return False
    return not stack


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)


def test_truncate_given_unclosed_override_closes_it_at_the_end_of_the_field() -> None:
    assert truncate(f"Ship {RLO}SSO", 100) == f"Ship {RLO}SSO{PDF}"
    assert truncate(f"a{LRI}b{RLO}c", 100) == f"a{LRI}b{RLO}c{PDF}{PDI}"


def test_truncate_given_stray_closer_drops_it() -> None:
    # A PDF with nothing open in the title would close the surface's own embedding.
    assert truncate(f"Ship{PDF} SSO{PDI}", 100) == "Ship SSO"


def test_truncate_given_cut_inside_override_closes_it_before_the_ellipsis() -> None:
    cut = truncate(f"x{RLO}abcdefghijklmnop", 8)
    assert cut.endswith(PDF + ELLIPSIS) and _balanced(cut)
    assert text_units(cut) <= 8


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB, ACCENTED])
def test_truncate_given_grapheme_clusters_never_splits_one(cluster: str) -> None:
    text = cluster * 10
    for limit in range(1, text_units(text)):
        cut = truncate(text, limit)
        assert text_units(cut) <= limit
        kept = cut.removesuffix(ELLIPSIS)
        assert kept == cluster * (len(kept) // len(cluster)), (limit, cut)


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB])
def test_mrkdwn_text_given_grapheme_clusters_never_splits_one(cluster: str) -> None:
    pieces = ["&amp;", cluster] * 6
    whole = {"".join(pieces[:n]) for n in range(len(pieces) + 1)}
    for limit in range(1, text_units("".join(pieces)) + 2):
        cut = mrkdwn_text(("&" + cluster) * 6, limit)
        assert text_units(cut) <= max(limit, 1)
        # Only whole escaped pieces are kept: never half an entity or an emoji.
        assert cut.removesuffix(ELLIPSIS).rstrip() in whole, (limit, cut)


_pieces = st.sampled_from([FAMILY, FLAG, THUMB, ACCENTED, "a", "&", " ", RLO, PDF, LRI, PDI])


@given(st.lists(_pieces, max_size=30), st.integers(min_value=1, max_value=40))
def test_truncate_given_any_mix_stays_balanced_whole_and_within_limit(
    pieces: list[str], limit: int
) -> None:
    cut = truncate("".join(pieces), limit)
    assert text_units(cut) <= max(limit, text_units(ELLIPSIS))
    assert _balanced(cut)
    for cluster in graphemes(cut):
        if any(c in cluster for c in "\u200d\U0001f3fd\u0301"):
            assert cluster in (FAMILY, THUMB, ACCENTED, "e\u0301")  # never a piece of one


def _rlo_scorecard() -> Scorecard:
    card = realistic_scorecard()
    kr = key_result(title=f"Ship {RLO}SSO for all plans")
    return Scorecard(
        cycle=card.cycle,
        objectives=(objective(title=f"Win {RLO}enterprise", key_results=(kr,)),),
        changes=card.changes[:1],
    )


def test_renderers_given_unclosed_override_in_titles_keep_every_text_balanced() -> None:
    card = _rlo_scorecard()
    payloads = [
        render_slack_scorecard(card).to_json(),
        render_teams_scorecard_card(card),
        render_teams_change_card(card),
    ]
    note = render_slack_change_note(card)
    assert note is not None
    payloads.append(note.to_json())
    texts = [text for payload in payloads for text in _strings(payload)]
    assert any(RLO in text for text in texts)  # the title is shown, not stripped
    unbalanced = [text for text in texts if not _balanced(text)]
    assert unbalanced == []
    slack = json.dumps(payloads[0], ensure_ascii=False)
    assert f"Ship {RLO}SSO for all plans{PDF}" in slack


def test_render_html_report_given_unclosed_override_closes_it_in_place() -> None:
    card = _rlo_scorecard()
    html = render_html_report(report_data(scorecard=card, explanations={}, history={},
                                          checkins={}))
    assert f"Ship {RLO}SSO for all plans{PDF}" in html
    assert _balanced(html)
