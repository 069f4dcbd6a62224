"""Posted Slack blocks and Adaptive Cards flattened into the text lines the demo prints."""

from __future__ import annotations

from typing import Any

from okr_sync.cli.payload_text import DIVIDER, adaptive_card_as_text, slack_blocks_as_text
from okr_sync.sync.delivery.render.teams_elements import escape_teams_markdown


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def test_slack_blocks_as_text_given_each_block_kind_gives_its_text_in_order() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "OKR scorecard", "emoji": True}},
        {"type": "section", "text": _mrkdwn("*CO-1* Win\n*42%* progress"),
         "fields": [_mrkdwn("KR1 done"), _mrkdwn("KR2 open")]},
        {"type": "divider"},
        {"type": "context", "elements": [_mrkdwn("updated 10:00"), _mrkdwn("okr-sync")]},
        {"type": "actions", "elements": [{"type": "button"}]},
    ]
    assert slack_blocks_as_text(blocks) == [
        "OKR scorecard", "*CO-1* Win", "*42%* progress", "  KR1 done", "  KR2 open",
        DIVIDER, "updated 10:00  okr-sync",
    ]


def test_slack_blocks_as_text_given_links_and_escapes_shows_labels_and_characters() -> None:
    blocks = [{"type": "section",
               "text": _mrkdwn("see <https://jira.example/browse/ENT-1|ENT-1> &amp; "
                               "<https://x.example> &lt;b&gt;")}]
    assert slack_blocks_as_text(blocks) == ["see ENT-1 & https://x.example <b>"]


def test_adaptive_card_as_text_given_nested_containers_indents_each_level() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [
            {"type": "TextBlock", "text": "OKR scorecard", "wrap": True},
            {"type": "FactSet", "facts": [{"title": "Customer", "value": "41%"}]},
            {"type": "Container", "items": [
                {"type": "RichTextBlock", "inlines": [
                    {"type": "TextRun", "text": "CO-1 "}, {"type": "TextRun", "text": "Win"}]},
                {"type": "ColumnSet", "columns": [
                    {"type": "Column", "items": [{"type": "TextBlock", "text": "46%"}]},
                    {"type": "Column", "items": [{"type": "TextBlock", "text": "KR1"}]},
                ]},
                {"type": "Container", "items": [{"type": "TextBlock", "text": "deep"}]},
            ]},
            {"type": "Image", "url": "https://x.example/a.png"},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open report", "url": "https://x"}],
    }
    assert adaptive_card_as_text(card) == [
        "OKR scorecard", "Customer: 41%", "  CO-1 Win", "  46%", "  KR1", "    deep",
        "[Open report]",
    ]


def test_adaptive_card_as_text_given_escaped_markdown_shows_the_original_text() -> None:
    title = "[x](https://evil) *bold* - 1. item"
    card = {"type": "AdaptiveCard", "body": [
        {"type": "FactSet", "facts": [{"title": escape_teams_markdown(title), "value": "1"}]}]}
    assert adaptive_card_as_text(card) == [f"{title}: 1"]
