"""Messages read back from Slack, and the idempotency key they carry in their metadata.

This is the part of the connector that ``slack_sdk`` has no notion of: a post
whose outcome is unknown is looked up by its key in the channel's (or thread's)
recent history before it is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from okr_sync.connectors.slack.errors import DEFAULT_EVENT_TYPE, IDEMPOTENCY_FIELD, malformed

#: One call of a ``conversations.*`` method with these arguments, returning its reply.
Fetch = Callable[[str, Mapping[str, str]], Mapping[str, Any]]


@dataclass(frozen=True)
class SlackMessageRef:
    """Where a message lives; keep both to edit it later."""

    channel: str
    ts: str


@dataclass(frozen=True)
class SlackMetadata:
    """Slack message metadata (``event_type`` is snake_case, payload is a JSON object)."""

    event_type: str
    event_payload: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_payload": dict(self.event_payload)}


@dataclass(frozen=True)
class SlackMessage:
    """A message read back from a channel's history."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None
    blocks: list[dict[str, Any]] | None
    metadata: SlackMetadata | None

    @property
    def idempotency_key(self) -> str | None:
        if self.metadata is None:
            return None
        key = self.metadata.event_payload.get(IDEMPOTENCY_FIELD)
        return key if isinstance(key, str) else None


def with_key(metadata: SlackMetadata | None, key: str | None) -> SlackMetadata | None:
    """``metadata`` carrying ``key`` (default event type when there is no metadata)."""
    if key is None:
        return metadata
    if metadata is None:
        return SlackMetadata(DEFAULT_EVENT_TYPE, {IDEMPOTENCY_FIELD: key})
    return SlackMetadata(metadata.event_type, {**metadata.event_payload, IDEMPOTENCY_FIELD: key})


def message_pages(
    fetch: Fetch,
    channel: str,
    *,
    oldest: float | str | None,
    thread_ts: str | None,
    limit: int,
    max_pages: int,
) -> Iterator[list[SlackMessage]]:
    """Pages of ``conversations.history`` (or ``.replies`` for a thread), following cursors.

    Stops on Slack's own signal (no cursor, ``has_more`` false, an empty page),
    after ``limit`` messages or after ``max_pages`` pages.
    """
    method = "conversations.replies" if thread_ts else "conversations.history"
    params: dict[str, str] = {"channel": channel, "include_all_metadata": "true"}
    if thread_ts:
        params["ts"] = thread_ts
    if oldest is not None:
        params["oldest"] = oldest if isinstance(oldest, str) else f"{oldest:.6f}"
    seen = 0
    cursor = ""
    for _page in range(max_pages):
        page_params = dict(params, limit=str(min(200, limit - seen)))
        if cursor:
            page_params["cursor"] = cursor
        data = fetch(method, page_params)
        raw = data.get("messages")
        if not isinstance(raw, list):
            raise malformed(method, channel, "no messages list")
        page = [message_from(channel, item) for item in raw if isinstance(item, dict)]
        seen += len(page)
        yield page
        metadata = data.get("response_metadata")
        next_cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
        cursor = str(next_cursor or "")
        if not raw or seen >= limit or not cursor or not data.get("has_more", True):
            return


def find_key(pages: Iterator[list[SlackMessage]], idempotency_key: str) -> SlackMessageRef | None:
    """The first message in ``pages`` carrying ``idempotency_key``."""
    for page in pages:
        for message in page:
            if message.idempotency_key == idempotency_key:
                return SlackMessageRef(channel=message.channel, ts=message.ts)
    return None


def ref_from(data: Mapping[str, Any], method: str, channel: str) -> SlackMessageRef:
    """Where a post or edit landed; a reply without a ``ts`` is malformed (and uncertain)."""
    ts = data.get("ts")
    returned = data.get("channel")
    if not isinstance(ts, str) or not ts:
        raise malformed(method, channel, "no ts in the reply")
    return SlackMessageRef(channel=returned if isinstance(returned, str) else channel, ts=ts)


def message_from(channel: str, item: Mapping[str, Any]) -> SlackMessage:
    raw_meta = item.get("metadata")
    metadata = None
    if isinstance(raw_meta, dict) and isinstance(raw_meta.get("event_type"), str):
        payload = raw_meta.get("event_payload")
        payload = payload if isinstance(payload, dict) else {}
        metadata = SlackMetadata(raw_meta["event_type"], payload)
    blocks = item.get("blocks")
    thread_ts = item.get("thread_ts")
    return SlackMessage(
        channel=channel,
        ts=str(item.get("ts", "")),
        text=str(item.get("text", "")),
        thread_ts=thread_ts if isinstance(thread_ts, str) else None,
        blocks=blocks if isinstance(blocks, list) else None,
        metadata=metadata,
    )
