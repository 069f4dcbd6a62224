"""Slack rendering: golden payloads, Block Kit validity and limits, escaping, summaries."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.delivery.render import (
    SlackPayload,
    escape_mrkdwn,
    render_slack_change_note,
    render_slack_checkin_reminder,
    render_slack_digest,
    render_slack_scorecard,
)
from okr_sync.sync.delivery.render.common import text_units
from okr_sync.sync.delivery.render.slack_blocks import mrkdwn_text
from support import strategies
from support.golden import assert_matches_golden
from support.hypothesis_profile import examples
from support.scorecards import (
    HOSTILE_TITLE,
    JIRA,
    hostile_scorecard,
    key_result,
    large_scorecard,
    objective,
    previous_week,
    realistic_scorecard,
)

GOLDEN = Path(__file__).parent / "golden"
ESCAPED_HOSTILE = "&lt;!channel&gt; &amp; &lt;b&gt;"
#: The only ``<...>`` sequences allowed in mrkdwn: our links and our date token.
OUR_TOKEN = re.compile(r"<(https?://[^<>|\s]+\|[^<>|]+|!date\^\d+\^[^<>|]+\|[^<>|]+)>")

Renderer = Callable[[Scorecard], SlackPayload | None]
RENDERERS: dict[str, Renderer] = {
    "scorecard": lambda s: render_slack_scorecard(s, jira_base_url=JIRA),
    "change_note": render_slack_change_note,
    "digest": lambda s: render_slack_digest(s, previous_week(s)),
    "checkin_reminder": render_slack_checkin_reminder,
}


def _render(name: str, scorecard: Scorecard) -> SlackPayload:
    payload = RENDERERS[name](scorecard)
    assert payload is not None
    return payload


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    for block in blocks:
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        for obj in objects:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                yield str(obj["text"])


def assert_valid_slack(payload: SlackPayload) -> None:
    """slack_sdk's models accept every block unchanged, and Slack's limits hold."""
    message = payload.to_json()
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    total = 0
    for block in blocks:
        parsed = Block.parse(copy.deepcopy(block))
        assert parsed is not None
        # to_dict() runs every validator (SlackObjectFormationError on a limit) and a
        # round trip equal to the input proves no key was unknown to the model.
        assert parsed.to_dict() == block
        if block["type"] == "header":
            assert text_units(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert text_units(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(text_units(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
    for text in mrkdwn_texts(blocks):
        total += text_units(text)
        assert "<" not in OUR_TOKEN.sub("", text) and ">" not in OUR_TOKEN.sub("", text)
    assert total <= 12_000
    assert 0 < text_units(message["text"]) <= 3000
    assert "<" not in message["text"] and ">" not in message["text"]


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_render_slack_given_realistic_scorecard_matches_golden(name: str) -> None:
    payload = _render(name, realistic_scorecard())
    assert_valid_slack(payload)
    assert_matches_golden(GOLDEN / f"slack_{name}.json", payload.to_json())


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize("title_length", [20, 300])
def test_render_slack_given_60_krs_stays_within_limits(name: str, title_length: int) -> None:
    scorecard = large_scorecard(key_results=60, title_length=title_length)
    assert_valid_slack(_render(name, scorecard))


def test_render_slack_scorecard_given_60_long_krs_summarises_instead_of_dropping_silently() -> None:
    payload = render_slack_scorecard(large_scorecard(key_results=60, title_length=300))
    text = "\n".join(mrkdwn_texts(payload.to_json()["blocks"]))
    assert "more key result" in text or "key results:" in text
    assert "O11" in text  # the last objective is still there, summarised


def test_render_slack_scorecard_given_many_objectives_says_and_n_more() -> None:
    many = tuple(
        objective(id=f"O{i}", key_results=(key_result(id=f"O{i}.KR1"),)) for i in range(80)
    )
    payload = render_slack_scorecard(replace(realistic_scorecard(), objectives=many))
    assert_valid_slack(payload)
    context = [t for t in mrkdwn_texts(payload.to_json()["blocks"]) if "more objective" in t]
    assert len(context) == 1
    shown = sum(1 for t in mrkdwn_texts(payload.to_json()["blocks"]) if t.startswith("*O"))
    assert context[0] == f"…and {80 - shown} more objectives"


def test_render_slack_scorecard_given_big_objective_packs_krs_and_counts_the_rest() -> None:
    krs = tuple(key_result(id=f"CO-1.KR{i}", title="x" * 150) for i in range(40))
    scorecard = replace(realistic_scorecard(), objectives=(objective(key_results=krs),))
    payload = render_slack_scorecard(scorecard, jira_base_url=JIRA)
    assert_valid_slack(payload)
    section = next(t for t in mrkdwn_texts(list(payload.blocks)) if t.startswith("*CO-1 "))
    listed = section.count("\n• ")
    assert section.endswith(f"…and {40 - listed} more key results")


def test_render_slack_scorecard_given_300_char_title_truncates_header() -> None:
    payload = render_slack_scorecard(realistic_scorecard(), title="T" * 300)
    header = payload.blocks[0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    assert_valid_slack(payload)


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_render_slack_given_hostile_title_shows_it_escaped_literally(name: str) -> None:
    payload = _render(name, hostile_scorecard())
    assert_valid_slack(payload)
    texts = [*mrkdwn_texts(payload.to_json()["blocks"]), payload.text]
    assert any(ESCAPED_HOSTILE in text for text in texts)
    assert not any("<!channel>" in text or "<b>" in text for text in texts)
    assert "&lt;!channel&gt;" in payload.text  # titles may be cut short in the fallback


def test_render_slack_scorecard_given_hostile_title_in_header_keeps_plain_text() -> None:
    payload = render_slack_scorecard(realistic_scorecard(), title=HOSTILE_TITLE)
    # plain_text is never parsed as mrkdwn: shown literally, nothing to escape
    assert payload.blocks[0]["text"] == {"type": "plain_text", "text": HOSTILE_TITLE, "emoji": True}
    assert payload.text.startswith(ESCAPED_HOSTILE)


def test_render_slack_given_mrkdwn_text_marks_it_verbatim() -> None:
    payload = render_slack_scorecard(realistic_scorecard())
    objects = [
        obj
        for block in payload.to_json()["blocks"]
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        if isinstance(obj, dict) and obj["type"] == "mrkdwn"
    ]
    assert objects and all(obj["verbatim"] is True for obj in objects)


def test_mrkdwn_text_given_ampersands_never_splits_an_entity() -> None:
    cut = mrkdwn_text("&" * 100, 23)
    assert text_units(cut) <= 23
    assert cut == "&amp;" * 4 + "…"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> & <b>", ESCAPED_HOSTILE),
        ("a*b_c~d`e", "a*b_c~d`e"),
        ("&amp;", "&amp;amp;"),
        ("<https://evil|click>", "&lt;https://evil|click&gt;"),
    ],
)
def test_escape_mrkdwn_given_text_escapes_only_amp_lt_gt(raw: str, escaped: str) -> None:
    assert escape_mrkdwn(raw) == escaped


def test_render_slack_change_note_given_changes_lists_exactly_changed_krs_with_reasons() -> None:
    scorecard = realistic_scorecard()
    payload = render_slack_change_note(scorecard)
    assert payload is not None
    assert_valid_slack(payload)
    body = "\n".join(mrkdwn_texts(payload.to_json()["blocks"]))
    listed = re.findall(r"^• \*([^*]+)\*", body, flags=re.MULTILINE)
    assert listed == ["CO-1.KR1", "IP-1.KR1", "LG-1.KR2"]
    assert "30% → 42% (+12 pp)" in body
    assert "_+2 done, +1 added to scope_" in body
    # Mid-cycle the band move is left out: confidence and pace say how the KR is doing.
    assert "band missed" not in body and "off track → at risk" in body
    assert "expected 49% by now" in body
    assert "_ENT-310 reopened_" in body and "0% (score unchanged)" in body
    assert ":memo: check-in 2026-11-14: SSO beta live with 3 customers" in body


def test_render_slack_change_note_given_explicit_changes_uses_only_those() -> None:
    scorecard = realistic_scorecard()
    payload = render_slack_change_note(scorecard, scorecard.changes[1:2])
    assert payload is not None
    assert re.findall(r"^• \*([^*]+)\*", payload.blocks[1]["text"]["text"], re.MULTILINE) == [
        "IP-1.KR1"
    ]


def test_render_slack_change_note_given_no_changes_returns_none() -> None:
    scorecard = realistic_scorecard()
    assert render_slack_change_note(scorecard, []) is None
    assert render_slack_change_note(replace(scorecard, changes=())) is None


def test_render_slack_change_note_given_unknown_kr_shows_its_id() -> None:
    scorecard = realistic_scorecard()
    gone = replace(scorecard.changes[0], kr="OLD.KR9")
    payload = render_slack_change_note(scorecard, [gone])
    assert payload is not None
    assert "• *OLD.KR9*: 30% → 42% (+12 pp)" in payload.blocks[1]["text"]["text"]


def test_render_slack_checkin_reminder_given_manual_krs_gives_each_its_command() -> None:
    payload = render_slack_checkin_reminder(realistic_scorecard())
    assert payload is not None
    body = payload.blocks[1]["text"]["text"]
    for kr_id in ("CO-1.KR3", "CO-1.KR4", "LG-1.KR1"):
        assert f"`okr-sync checkin {kr_id} --value V`" in body
    assert "CO-1.KR1" not in body
    assert "now 4 / 10" in body


def test_render_slack_checkin_reminder_given_no_manual_krs_returns_none() -> None:
    scorecard = realistic_scorecard()
    assert render_slack_checkin_reminder(scorecard, []) is None
    measured = replace(scorecard, objectives=(objective(),))
    assert render_slack_checkin_reminder(measured) is None


def test_render_slack_checkin_reminder_given_odd_kr_id_quotes_it_for_the_shell() -> None:
    kr = key_result(id="CO 1;rm", measure_kind="manual")
    payload = render_slack_checkin_reminder(realistic_scorecard(), [kr])
    assert payload is not None
    assert "`okr-sync checkin 'CO 1;rm' --value V`" in payload.blocks[1]["text"]["text"]


def test_render_slack_digest_given_no_previous_omits_week_over_week() -> None:
    payload = render_slack_digest(realistic_scorecard())
    body = "\n".join(mrkdwn_texts(payload.to_json()["blocks"]))
    assert "this week" not in body
    assert "*Needs attention*" in body
    assert_valid_slack(payload)


@settings(
    max_examples=examples(40),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scorecard=strategies.scorecards, previous=st.none() | strategies.scorecards)
def test_render_slack_given_any_scorecard_stays_valid_and_inert(
    scorecard: Scorecard, previous: Scorecard | None
) -> None:
    payloads = [
        render_slack_scorecard(scorecard, title="Route", jira_base_url=JIRA),
        render_slack_change_note(scorecard),
        render_slack_digest(scorecard, previous),
        render_slack_checkin_reminder(scorecard),
    ]
    for payload in payloads:
        if payload is not None:
            assert_valid_slack(payload)


@given(text=st.text())
def test_escape_mrkdwn_given_any_text_is_reversible_and_has_no_angle_brackets(text: str) -> None:
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


def test_render_slack_scorecard_given_issue_key_links_needs_base_url_to_link_them() -> None:
    without = "\n".join(mrkdwn_texts(list(render_slack_scorecard(realistic_scorecard()).blocks)))
    with_base = render_slack_scorecard(realistic_scorecard(), jira_base_url=JIRA)
    linked = "\n".join(mrkdwn_texts(list(with_base.blocks)))
    assert f"<{JIRA}/browse/SUP-30|SUP-30>" in linked
    assert "SUP-30" not in without
    assert f"<{JIRA}/browse/SUP-17|SUP-17>" in without


def test_render_slack_scorecard_given_link_with_query_escapes_ampersand_in_target() -> None:
    kr = key_result(links=(f"{JIRA}/issues/?jql=a&filter=2",))
    scorecard = replace(realistic_scorecard(), objectives=(objective(key_results=(kr,)),))
    text = "\n".join(mrkdwn_texts(list(render_slack_scorecard(scorecard).blocks)))
    assert f"<{JIRA}/issues/?jql=a&amp;filter=2|Jira filter>" in text


def _freshness_scorecard() -> Scorecard:
    as_of = realistic_scorecard().cycle.as_of
    stale = key_result(stale=True, measured_at=as_of - timedelta(hours=3))
    never = key_result(id="CO-1.KR2", title="Cut P1 bugs", value=None, score=None, band=None,
                       confidence=None, items=None, links=())
    return replace(realistic_scorecard(), objectives=(objective(key_results=(stale, never)),))


def test_render_slack_scorecard_given_stale_and_never_measured_krs_says_so() -> None:
    text = json.dumps(render_slack_scorecard(_freshness_scorecard()).blocks, ensure_ascii=False)
    assert "stale · measured 3h ago" in text
    line = next(part for part in text.split("\\n") if "Cut P1 bugs" in part)
    assert "not measured" in line
    assert "%" not in line and "missed" not in line
    assert "▰" not in line and "▱" not in line
