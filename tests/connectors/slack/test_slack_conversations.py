"""``SlackClient.conversation_info`` (read-only, for ``okr-sync doctor``) against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from okr_sync.connectors.slack.client import SlackChannelError, SlackClient, SlackConversation
from okr_sync.sandbox.slack.server import DEFAULT_TOKEN, SlackSandbox


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with SlackSandbox(channels=("C0MEMBER",)) as running:
        running.add_channel("C0OUTSIDE", name="outside", member=False)
        running.add_channel("C0ARCHIVE", name="old", archived=True)
        yield running


@pytest.fixture
def client(sandbox: SlackSandbox) -> Iterator[SlackClient]:
    slack = SlackClient(sandbox.api_url, SecretStr(DEFAULT_TOKEN))
    yield slack
    slack.close()


def test_conversation_info_given_member_channel_says_member_and_not_archived(
    client: SlackClient,
) -> None:
    assert client.conversation_info("C0MEMBER") == SlackConversation(
        "C0MEMBER", "c0member", is_member=True, is_archived=False)


def test_conversation_info_given_channel_without_the_bot_says_not_member(
    client: SlackClient,
) -> None:
    info = client.conversation_info("C0OUTSIDE")
    assert (info.name, info.is_member) == ("outside", False)


def test_conversation_info_given_archived_channel_says_archived(client: SlackClient) -> None:
    assert client.conversation_info("C0ARCHIVE").is_archived is True


def test_conversation_info_given_unknown_channel_raises_channel_error(
    client: SlackClient, sandbox: SlackSandbox,
) -> None:
    with pytest.raises(SlackChannelError) as raised:
        client.conversation_info("C0NOWHERE")
    assert raised.value.code == "channel_not_found"
    assert [r.method for r in sandbox.requests] == ["conversations.info"]
