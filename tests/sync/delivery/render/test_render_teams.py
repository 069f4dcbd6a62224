"""Teams rendering: golden cards, Adaptive Card 1.5 schema, 28 KB, text safety, envelopes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator

from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.delivery.render import (
    TEAMS_MAX_BYTES,
    Contact,
    escape_teams_markdown,
    payload_bytes,
    render_teams_change_card,
    render_teams_checkin_reminder_card,
    render_teams_digest_card,
    render_teams_scorecard_card,
    teams_bot_activity,
    teams_message_envelope,
)
from support import strategies
from support.golden import assert_matches_golden
from support.hypothesis_profile import examples
from support.paths import REPO
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
SCHEMA_PATH = REPO.parent / "shared" / "specs" / "adaptive-card-1.5.schema.json"
INJECTION = "[click](https://evil.example) **bold** _it_ <at>all</at> " + HOSTILE_TITLE
#: A markdown control character not preceded by a backslash.
UNESCAPED = re.compile(r"(?<!\\)[\[\]()*_`~<>#|!]")

Card = dict[str, Any]
Renderer = Callable[[Scorecard], Card | None]
RENDERERS: dict[str, Renderer] = {
    "scorecard": lambda s: render_teams_scorecard_card(s, jira_base_url=JIRA),
    "change_card": render_teams_change_card,
    "digest_card": lambda s: render_teams_digest_card(s, previous_week(s)),
    "checkin_reminder_card": render_teams_checkin_reminder_card,
}
#: The bot's cards with check-in forms (OKR_SYNC_TEAMS_BOT_CHECKINS).
FORM_RENDERERS: dict[str, Renderer] = {
    "change_card": lambda s: render_teams_change_card(s, checkin_form=True),
    "checkin_reminder_card": lambda s: render_teams_checkin_reminder_card(s, checkin_form=True),
}


@cache
def validator() -> Draft6Validator:
    if SCHEMA_PATH.exists():
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    else:  # the sandbox ships the same schema file inside the package
        from importlib import resources

        raw = resources.files("okr_sync.sandbox.teams") / "data"
        schema = json.loads((raw / "adaptive-card-1.5.schema.json").read_text(encoding="utf-8"))
    return Draft6Validator(schema)


def _render(name: str, scorecard: Scorecard) -> Card:
    card = RENDERERS[name](scorecard)
    assert card is not None
    return card


def assert_valid_card(card: Card) -> None:
    errors = sorted(validator().iter_errors(card), key=lambda e: list(e.path))
    assert not errors, errors[0].message[:500]
    assert card["version"] == "1.5"
    for envelope in (teams_message_envelope(card), teams_bot_activity(card)):
        assert payload_bytes(envelope) < TEAMS_MAX_BYTES
        assert len(json.dumps(envelope).encode()) < TEAMS_MAX_BYTES


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def markdown_texts(card: Card) -> Iterator[str]:
    """Every string Teams parses as markdown: TextBlock text, Fact title/value, fallbackText."""
    yield str(card.get("fallbackText", ""))
    for node in walk(card["body"]):
        if node.get("type") == "TextBlock":
            yield str(node["text"])
        if node.get("type") == "FactSet":
            for fact in node["facts"]:
                yield str(fact["title"])
                yield str(fact["value"])


def text_runs(card: Card) -> list[dict[str, Any]]:
    return [node for node in walk(card["body"]) if node.get("type") == "TextRun"]


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_render_teams_given_realistic_scorecard_matches_golden(name: str) -> None:
    card = _render(name, realistic_scorecard())
    assert_valid_card(card)
    assert_matches_golden(GOLDEN / f"teams_{name}.json", card)


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize("title_length", [20, 300])
def test_render_teams_given_60_krs_validates_and_stays_under_28kb(
    name: str, title_length: int
) -> None:
    assert_valid_card(_render(name, large_scorecard(key_results=60, title_length=title_length)))


def test_render_teams_scorecard_given_60_long_krs_summarises_the_rest() -> None:
    card = render_teams_scorecard_card(large_scorecard(key_results=60, title_length=300))
    texts = " ".join(str(n.get("text", "")) for n in walk(card["body"]))
    assert "more key result" in texts or "key results:" in texts
    assert "O11 · " in texts


def test_render_teams_scorecard_given_small_budget_degrades_to_fit() -> None:
    scorecard = large_scorecard(key_results=60, title_length=40)
    card = render_teams_scorecard_card(scorecard, budget=8_000)
    assert payload_bytes(teams_message_envelope(card)) <= 8_000
    assert_valid_card(card)


def test_render_teams_scorecard_given_many_objectives_says_and_n_more() -> None:
    many = tuple(
        objective(id=f"O{i}", key_results=(key_result(id=f"O{i}.KR1"),)) for i in range(90)
    )
    card = render_teams_scorecard_card(replace(realistic_scorecard(), objectives=many))
    assert_valid_card(card)
    more = [n["text"] for n in walk(card["body"]) if "more objective" in str(n.get("text", ""))]
    shown = sum(1 for n in walk(card["body"]) if re.match(r"O\d+ · ", str(n.get("text", ""))))
    assert more == [f"…and {90 - shown} more objectives"]


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_render_teams_given_injection_in_titles_shows_it_literally_and_inertly(name: str) -> None:
    card = _render(name, hostile_scorecard(INJECTION))
    assert_valid_card(card)
    # Literal where markdown is not parsed (TextRun)...
    runs = text_runs(card)
    assert any("[click](https://evil.example) **bold**" in run["text"] for run in runs)
    # ...escaped wherever it is parsed, so no link or formatting can be injected.
    for text in markdown_texts(card):
        assert not UNESCAPED.search(text), text
    # Only our own links are clickable, and only on runs we labelled.
    for node in walk(card):
        if node.get("type") == "Action.OpenUrl":
            assert node["url"].startswith(JIRA + "/")
    for run in runs:
        if "selectAction" in run:
            assert run["text"] == run["selectAction"]["title"]
            assert re.fullmatch(r"[A-Z]+-\d+|Jira filter|Jira", run["text"])


def test_render_teams_scorecard_given_fact_titles_escapes_markdown() -> None:
    card = render_teams_scorecard_card(hostile_scorecard(INJECTION))
    facts = [fact for node in walk(card["body"]) for fact in node.get("facts", [])]
    assert facts and all("\\[click\\]\\(https://evil.example\\)" in f["title"] for f in facts)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("[x](https://e.example)", "\\[x\\]\\(https://e.example\\)"),
        ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
        ("- item", "\\- item"),
        ("12. item", "12\\. item"),
        ("+ item", "\\+ item"),
        ("a - b 1. c", "a - b 1. c"),
        ("<at>x</at> & y", "\\<at\\>x\\</at\\> & y"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_teams_markdown_given_text_neutralises_markdown(raw: str, escaped: str) -> None:
    assert escape_teams_markdown(raw) == escaped


def test_teams_message_envelope_given_card_wraps_it_for_workflows() -> None:
    card = render_teams_scorecard_card(realistic_scorecard())
    assert teams_message_envelope(card) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def test_teams_bot_activity_given_card_is_a_message_activity() -> None:
    card = render_teams_scorecard_card(realistic_scorecard())
    assert teams_bot_activity(card) == {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def test_render_teams_scorecard_given_card_has_no_teams_only_keys() -> None:
    card = render_teams_scorecard_card(realistic_scorecard())
    assert set(card) == {"$schema", "type", "version", "body", "fallbackText"}
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


def test_render_teams_change_card_given_changes_lists_exactly_changed_krs_with_reasons() -> None:
    card = render_teams_change_card(realistic_scorecard())
    assert card is not None
    containers = [n for n in card["body"] if n["type"] == "Container"]
    ids = [c["items"][0]["inlines"][0]["text"].strip() for c in containers]
    assert ids == ["CO-1.KR1", "IP-1.KR1", "LG-1.KR2"]
    first = " ".join(run["text"] for run in text_runs({"body": containers[0]["items"]}))
    assert "30% → 42% (+12 pp)" in first
    assert "+2 done, +1 added to scope" in first
    assert "band missed" not in first and "off track → at risk" in first
    assert "expected 49% by now" in first
    assert "check-in 2026-11-14: SSO beta live with 3 customers" in first


def test_render_teams_change_card_given_no_changes_returns_none() -> None:
    scorecard = realistic_scorecard()
    assert render_teams_change_card(scorecard, []) is None
    assert render_teams_change_card(replace(scorecard, changes=())) is None


def test_render_teams_checkin_reminder_card_given_manual_krs_shows_commands() -> None:
    card = render_teams_checkin_reminder_card(realistic_scorecard())
    assert card is not None
    commands = [r["text"] for r in text_runs(card) if r.get("fontType") == "monospace"]
    assert commands == [
        "okr-sync checkin CO-1.KR3 --value V",
        "okr-sync checkin CO-1.KR4 --value V",
        "okr-sync checkin LG-1.KR1 --value V",
    ]


def test_render_teams_checkin_reminder_card_given_no_manual_krs_returns_none() -> None:
    measured = replace(realistic_scorecard(), objectives=(objective(),))
    assert render_teams_checkin_reminder_card(measured) is None


@settings(
    max_examples=examples(25),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scorecard=strategies.scorecards, previous=st.none() | strategies.scorecards)
def test_render_teams_given_any_scorecard_validates_under_28kb_and_stays_inert(
    scorecard: Scorecard, previous: Scorecard | None
) -> None:
    cards = [
        render_teams_scorecard_card(scorecard, title="Route", jira_base_url=JIRA),
        render_teams_change_card(scorecard),
        render_teams_digest_card(scorecard, previous),
        render_teams_checkin_reminder_card(scorecard),
        *(render(scorecard) for render in FORM_RENDERERS.values()),
    ]
    for card in cards:
        if card is not None:
            assert_valid_card(card)
            assert all(not UNESCAPED.search(text) for text in markdown_texts(card))


@given(text=st.text())
def test_escape_teams_markdown_given_any_text_leaves_no_bare_control_character(text: str) -> None:
    assert not UNESCAPED.search(escape_teams_markdown(text))


def _elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every element of a card, depth first (the innermost last)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _elements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _elements(value)


def test_render_teams_scorecard_card_given_stale_and_never_measured_krs_says_so() -> None:
    as_of = realistic_scorecard().cycle.as_of
    stale = key_result(stale=True, measured_at=as_of - timedelta(days=3))
    never = key_result(id="CO-1.KR2", title="Cut P1 bugs", value=None, score=None, band=None,
                       confidence=None, items=None, links=())
    card = render_teams_scorecard_card(
        replace(realistic_scorecard(), objectives=(objective(key_results=(stale, never)),)))
    text = json.dumps(card, ensure_ascii=False)
    assert f"stale · measured {(as_of - timedelta(days=3)).date().isoformat()}" in text
    row = next(e for e in _elements(card) if e.get("type") == "RichTextBlock"
               and "Cut P1 bugs" in json.dumps(e, ensure_ascii=False))
    shown = json.dumps(row, ensure_ascii=False)
    assert "not measured" in shown and "%" not in shown and "missed" not in shown
    assert "▰" not in shown and "▱" not in shown


def test_teams_bot_activity_given_summary_puts_it_on_the_activity() -> None:
    card = render_teams_scorecard_card(realistic_scorecard())
    activity = teams_bot_activity(card, "1 key result changed: CO-1.KR1 " + "x" * 400)
    assert activity["summary"].startswith("1 key result changed: CO-1.KR1 ")
    assert len(activity["summary"]) <= 200 and activity["summary"].endswith("…")
    assert activity["attachments"][0]["content"] == card


def test_render_teams_change_card_given_contacts_mentions_owner_with_entity() -> None:
    scorecard = realistic_scorecard()
    aad = "8f0c2a4e-5b1d-4c7a-9e3f-1a2b3c4d5e6f"
    contacts = {"CO-1.KR1": Contact("Alice <b>Ng</b>", slack="U0ALICE01", teams=aad)}

    for card in (render_teams_change_card(scorecard, contacts=contacts),
                 render_teams_checkin_reminder_card(
                     scorecard, [scorecard.key_result("CO-1.KR1")], contacts=contacts)):
        assert card is not None
        entities = card["msteams"]["entities"]
        assert entities == [{"type": "mention", "text": "<at>Alice \\<b\\>Ng\\</b\\></at>",
                             "mentioned": {"id": aad, "name": "Alice <b>Ng</b>"}}]
        texts = [n["text"] for n in walk(card["body"]) if n.get("type") == "TextBlock"]
        assert f"owner {entities[0]['text']}" in texts
        # Teams strips its own `msteams` key; the rest is a valid 1.5 card.
        assert_valid_card({k: v for k, v in card.items() if k != "msteams"})
    standing = render_teams_scorecard_card(scorecard)
    assert "msteams" not in standing and "<at>" not in json.dumps(standing)


def execute_actions(card: Card) -> list[dict[str, Any]]:
    return [node for node in walk(card) if node.get("type") == "Action.Execute"]


@pytest.mark.parametrize("name", sorted(FORM_RENDERERS))
def test_render_teams_given_checkin_form_validates_with_one_execute_action_per_kr(
    name: str,
) -> None:
    card = FORM_RENDERERS[name](realistic_scorecard())
    assert card is not None
    assert_valid_card(card)
    actions = execute_actions(card)
    assert actions and all(a["verb"] == "okr.checkin" for a in actions)
    krs = [a["data"]["kr"] for a in actions]
    assert len(krs) == len(set(krs))
    ids = [n["id"] for n in walk(card) if str(n.get("type", "")).startswith("Input.")]
    assert len(ids) == len(set(ids))  # ids are unique across the card's forms
    assert {i.split(".", 1)[0] for i in ids} <= {"value", "confidence", "note"}


@pytest.mark.parametrize("name", sorted(FORM_RENDERERS))
@pytest.mark.parametrize("title_length", [20, 300])
def test_render_teams_given_checkin_forms_on_60_krs_validates_and_stays_under_28kb(
    name: str, title_length: int
) -> None:
    card = FORM_RENDERERS[name](large_scorecard(key_results=60, title_length=title_length))
    assert card is not None
    assert_valid_card(card)


def test_render_teams_checkin_reminder_card_given_form_asks_value_only_of_manual_krs() -> None:
    card = render_teams_checkin_reminder_card(realistic_scorecard(), checkin_form=True)
    assert card is not None
    numbers = [n["id"] for n in walk(card) if n.get("type") == "Input.Number"]
    assert numbers == ["value.CO-1.KR3", "value.CO-1.KR4", "value.LG-1.KR1"]
    assert not [r for r in text_runs(card) if r.get("fontType") == "monospace"]


def test_render_teams_change_card_given_measured_kr_form_has_no_value_input() -> None:
    scorecard = realistic_scorecard()
    card = render_teams_change_card(scorecard, checkin_form=True)
    assert card is not None
    measured = {kr.id for kr in scorecard.key_results() if kr.measure_kind != "manual"}
    changed = {c.kr for c in scorecard.changes} & measured
    assert changed
    numbers = {n["id"].split(".", 1)[1] for n in walk(card) if n.get("type") == "Input.Number"}
    assert not numbers & changed


def test_render_teams_checkin_answers_given_hostile_text_validate_and_stay_inert() -> None:
    from okr_sync.sync.delivery.render.teams_checkin import (
        checkin_refused_card,
        checkin_saved_card,
    )

    cards = [
        checkin_saved_card("CO-1.KR3", INJECTION, author=INJECTION, value=8.5,
                           confidence="at_risk", note=INJECTION, manual=True,
                           warnings=[INJECTION]),
        checkin_refused_card(INJECTION, kr_id="CO-1.KR1", title=INJECTION),
        checkin_refused_card("okr-sync does not know this action."),
    ]
    for card in cards:
        assert_valid_card(card)
        assert all(not UNESCAPED.search(text) for text in markdown_texts(card))
    assert "by " + INJECTION[:20] in json.dumps(cards[0], ensure_ascii=False)
    assert execute_actions(cards[0])[0]["data"] == {"kr": "CO-1.KR3"}
