"""Markup and mention injection from plan titles and Jira summaries, end to end: what the
sandbox Slack and Teams received, and the HTML report, show it literally and inertly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.delivery.render.report import load_report_data, render_html_report
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import (
    DEMO_CHANNEL,
    DEMO_CONVERSATION,
    SandboxWorld,
    sandbox_world,
)
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

SLACK_MARKUP = "<!channel> <!here> <@U1> <#C1> <https://evil.example|click me>"
CARD_MARKDOWN = "[card link](https://evil.example) **bold** <at>all</at>"
HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE = f"{SLACK_MARKUP} {CARD_MARKDOWN} {HTML}"
#: Slack reads these in mrkdwn (and in a message's fallback text): a mention or a link
#: (our own ``<!date^...>`` timestamp excepted).
SLACK_CONTROL = re.compile(r"<(?:!(?!date\^)|[@#])|<https://evil")
#: A markdown link or mention that Teams would render from a TextBlock or a fact.
CARD_CONTROL = re.compile(r"(?<!\\)\[card link(?<!\\)\]|(?<!\\)<at>")


def _hostile_plan(tmp_path: Path) -> Path:
    text = DEMO_PLAN.read_text()
    for title in ("Win the enterprise segment", "Clear the on-call backlog",
                  "Open customer escalations"):
        assert f"title: {title}" in text
        text = text.replace(f"title: {title}", f'title: "{title} {HOSTILE}"')
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=300, seed=3) as w:
        for issue in w.dataset.issues.values():
            issue.summary = f"{issue.key} {HOSTILE}"
        yield w


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _slack_parsed_texts(world: SandboxWorld) -> list[str]:
    """Every string Slack parses as mrkdwn: fallback texts and mrkdwn text objects."""
    texts = []
    for message in world.slack.messages(DEMO_CHANNEL):
        versions = [(message.text, message.blocks)] + [(v.text, v.blocks) for v in message.edits]
        for text, blocks in versions:
            texts.append(text)
            texts += [str(n["text"]) for n in _walk(blocks)
                      if n.get("type") == "mrkdwn" and "text" in n]
    return texts


def _card_markdown_texts(cards: list[dict[str, Any]]) -> list[str]:
    """Every string Teams renders as markdown: TextBlock text and fact titles/values."""
    texts = []
    for node in _walk(cards):
        if node.get("type") == "TextBlock":
            texts.append(str(node.get("text", "")))
        for fact in node.get("facts", []) if isinstance(node.get("facts"), list) else []:
            texts += [str(fact.get("title", "")), str(fact.get("value", ""))]
    return texts


def _urls(cards: list[dict[str, Any]]) -> list[str]:
    return [str(n["url"]) for n in _walk(cards) if "url" in n]


def test_pass_given_markup_in_titles_and_summaries_renders_it_inert_everywhere(
    world: SandboxWorld, tmp_path: Path
) -> None:
    plan = load_plan(_hostile_plan(tmp_path))
    runtime = world.runtime(plan)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    # A second pass with news: the change note carries a hostile KR title too.
    world.dataset.advance(timedelta(minutes=30))
    on_call = [i.id for i in world.dataset.issues.values()
               if i.project == "OPS" and "on-call" in i.labels and i.status != "Done"]
    for issue_id in on_call[:6]:
        world.dataset.transition(issue_id, "done")
    assert runtime.run_locked(PassOptions()).exit_code == 0

    slack = _slack_parsed_texts(world)
    assert any("&lt;!channel&gt;" in text for text in slack)  # the titles were shown...
    assert [t for t in slack if SLACK_CONTROL.search(t)] == []  # ...never as mentions/links
    assert len(world.slack.replies(DEMO_CHANNEL, world.slack.top_level(DEMO_CHANNEL)[0].ts)) >= 1

    cards = [card for post in world.teams.workflow_posts(world.workflow_id)
             for card in post.cards]
    activities = world.teams.activities(DEMO_CONVERSATION)
    cards += [card for activity in activities for card in activity.cards]
    assert cards and activities
    runs = [str(n.get("text")) for n in _walk(cards) if n.get("type") == "TextRun"]
    markdown = _card_markdown_texts(cards)
    assert any("card link" in text for text in runs + markdown)  # the titles were shown...
    assert [t for t in markdown if CARD_CONTROL.search(t)] == []  # ...never as links
    assert [n for n in _walk(cards) if n.get("type") == "TextRun" and "card link" in str(
        n.get("text")) and "selectAction" in n] == []
    assert [u for u in _urls(cards) if "evil.example" in u] == []
    # A bot activity mentions someone only through entities; none is ever sent.
    assert all(not a.activity.get("entities") for a in activities)

    assert isinstance(runtime.store, Store)
    page = render_html_report(load_report_data(runtime.store, plan,
                                               jira_sites=[world.jira.url]))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert 'href="https://evil.example' not in page
