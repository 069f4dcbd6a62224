"""Slack Web API client: post, edit and look up messages with a bot token.

The transport is ``slack_sdk.WebClient`` (:mod:`.transport`), with its own
retries off; every failure becomes a typed error through the Slack rows of the
one HTTP policy (:mod:`.errors`), so ``sync/`` can decide by type (fix the
route, re-post a vanished message, retry later). Transient failures are retried
by one :class:`~okr_sync.connectors.http.Retrier` around each call, never sooner
than Slack's ``Retry-After``. Posts and edits are paced to about one per second
per channel (:mod:`.pacing`).

A post whose outcome is unknown (read timeout, dropped connection, 5xx, an
``ok`` reply without a ``ts``) may have reached the channel. When the caller
gives an ``idempotency_key``, it travels in the message metadata and the client
looks for it in the channel's recent history (:mod:`.history`) before trying
again, so a retry never posts the same message twice. When that lookup itself
fails, the outcome stays unknown and the attempt fails as an ambiguous transient
error: never a permanent one, which would let the caller post the message again
elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from okr_sync.connectors.http import REQUEST_POLICY, Retrier, RetryPolicy
from okr_sync.connectors.slack.errors import (
    DEFAULT_API_URL,
    IDEMPOTENCY_FIELD,
    LOOKUP_MAX_PAGES,
    SlackAuthError,
    SlackChannelError,
    SlackError,
    SlackMalformedResponseError,
    SlackMessageGoneError,
    SlackPayloadError,
    SlackPermanentError,
    SlackRateLimitedError,
    SlackTransientError,
    _describe,
    malformed,
)
from okr_sync.connectors.slack.history import (
    SlackMessage,
    SlackMessageRef,
    SlackMetadata,
    find_key,
    message_pages,
    ref_from,
    with_key,
)
from okr_sync.connectors.slack.pacing import ChannelPacer
from okr_sync.connectors.slack.transport import SlackTransport

__all__ = [
    "DEFAULT_API_URL",
    "IDEMPOTENCY_FIELD",
    "ChannelPacer",
    "SlackAuthError",
    "SlackChannelError",
    "SlackClient",
    "SlackConversation",
    "SlackError",
    "SlackMalformedResponseError",
    "SlackMessage",
    "SlackMessageGoneError",
    "SlackMessageRef",
    "SlackMetadata",
    "SlackPayloadError",
    "SlackPermanentError",
    "SlackRateLimitedError",
    "SlackTransientError",
]


@dataclass(frozen=True)
class SlackConversation:
    """What ``conversations.info`` says of a channel, as far as posting to it goes."""

    id: str
    name: str
    is_member: bool
    is_archived: bool


class SlackClient:
    """A bot-token client for ``chat.postMessage``, ``chat.update`` and history reads."""

    def __init__(
        self,
        api_url: str,
        bot_token: SecretStr,
        *,
        retrier: Retrier | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        timeout: float | None = None,
        channel_interval: float = 1.0,
        dedupe_lookback: float = 900.0,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.retrier = retrier or Retrier(policy=policy or REQUEST_POLICY, sleep=sleep)
        self.timeout = timeout if timeout is not None else self.retrier.policy.timeout
        self.pacer = ChannelPacer(channel_interval, clock=clock, sleep=sleep)
        self._wall_clock = wall_clock
        self._dedupe_lookback = dedupe_lookback
        # A token read from an env var or a secrets file often ends in a newline.
        token = SecretStr(bot_token.get_secret_value().strip())
        self._transport = SlackTransport(self.api_url, token, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"SlackClient(api_url={self.api_url!r})"

    def close(self) -> None:
        """Nothing to release: urllib opens a connection per call."""

    # -- writes ---------------------------------------------------------------

    def post_message(
        self,
        channel: str,
        *,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: SlackMetadata | None = None,
        idempotency_key: str | None = None,
    ) -> SlackMessageRef:
        """Post a message (a thread reply when ``thread_ts`` is given)."""
        body: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            body["blocks"] = [dict(block) for block in blocks]
        if thread_ts is not None:
            body["thread_ts"] = thread_ts
        merged = with_key(metadata, idempotency_key)
        if merged is not None:
            body["metadata"] = merged.as_json()
        started = self._wall_clock()
        uncertain = False

        def attempt() -> SlackMessageRef:
            nonlocal uncertain
            if uncertain and idempotency_key is not None:
                found = self._lookup_posted(
                    channel, idempotency_key, thread_ts, started - self._dedupe_lookback
                )
                if found is not None:
                    return found
            self.pacer.wait_turn(channel)
            try:
                data = self._transport.call("chat.postMessage", channel, json_body=body)
                # An ok reply without a usable ts was still a post that went through.
                return ref_from(data, "chat.postMessage", channel)
            except SlackTransientError as error:
                uncertain = uncertain or error.ambiguous
                raise

        return self.retrier.call(attempt)

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        metadata: SlackMetadata | None = None,
    ) -> SlackMessageRef:
        """Edit a message in place; the ``ts`` stays the same."""
        body: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            body["blocks"] = [dict(block) for block in blocks]
        if metadata is not None:
            body["metadata"] = metadata.as_json()

        def attempt() -> SlackMessageRef:
            # chat.update is idempotent, so an ambiguous failure is simply retried.
            self.pacer.wait_turn(channel)
            data = self._transport.call("chat.update", channel, json_body=body)
            return ref_from(data, "chat.update", channel)

        return self.retrier.call(attempt)

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> str:
        """Open a modal (``views.open``) for the interaction that gave ``trigger_id``;
        returns the view's id. Tried once: the trigger expires three seconds after
        the click, so a retry after a backoff would only fail with ``expired_trigger_id``."""
        body = {"trigger_id": trigger_id, "view": dict(view)}
        data = self._transport.call("views.open", None, json_body=body)
        opened = data.get("view")
        if not isinstance(opened, Mapping) or not isinstance(opened.get("id"), str):
            raise malformed("views.open", None, "no view object")
        return str(opened["id"])

    # -- reads ----------------------------------------------------------------

    def recent_messages(
        self,
        channel: str,
        *,
        oldest: float | str | None = None,
        limit: int = 100,
        thread_ts: str | None = None,
    ) -> list[SlackMessage]:
        """Up to ``limit`` messages with their metadata.

        Without ``thread_ts``: top-level messages, newest first
        (``conversations.history``). With it: the thread's parent then its
        replies, oldest first (``conversations.replies``); ``oldest`` then
        defaults to now minus the dedupe lookback, so a long thread's newest
        replies are not crowded out by ``limit``.
        """

        def fetch(method: str, params: Mapping[str, str]) -> Mapping[str, Any]:
            return self.retrier.call(lambda: self._transport.call(method, channel, params=params))

        messages: list[SlackMessage] = []
        # Each page holds at least one message, so ``limit`` pages always suffice.
        for page in message_pages(
            fetch, channel, oldest=self._floor(oldest, thread_ts), thread_ts=thread_ts,
            limit=limit, max_pages=max(1, limit),
        ):  # fmt: skip
            messages.extend(page)
        return messages[:limit]

    def find_message(
        self,
        channel: str,
        idempotency_key: str,
        *,
        thread_ts: str | None = None,
        oldest: float | str | None = None,
        limit: int = 200,
    ) -> SlackMessageRef | None:
        """The message carrying ``idempotency_key`` in its metadata, if it was posted.

        With ``thread_ts`` and no ``oldest``, only replies since now minus the
        dedupe lookback are searched (see :meth:`recent_messages`).
        """
        recent = self.recent_messages(channel, oldest=oldest, limit=limit, thread_ts=thread_ts)
        return find_key(iter([recent]), idempotency_key)

    def auth_test(self) -> dict[str, Any]:
        """Who the token belongs to (``auth.test``); raises SlackAuthError when it is bad."""
        return self.retrier.call(lambda: self._transport.call("auth.test", None))

    def conversation_info(self, channel: str) -> SlackConversation:
        """``conversations.info`` of a channel id (read-only; needs ``channels:read``, or
        ``groups:read`` for a private one). A channel that does not exist, or a private
        one the bot is not in, raises SlackChannelError (``channel_not_found``)."""
        method = "conversations.info"
        data = self.retrier.call(
            lambda: self._transport.call(method, channel, params={"channel": channel}))
        info = data.get("channel")
        if not isinstance(info, Mapping) or not isinstance(info.get("id"), str):
            raise malformed(method, channel, "no channel object")
        return SlackConversation(
            id=info["id"], name=str(info.get("name") or ""),
            is_member=info.get("is_member") is True, is_archived=info.get("is_archived") is True,
        )  # fmt: skip

    # -- the uncertain post ---------------------------------------------------

    def _floor(self, oldest: float | str | None, thread_ts: str | None) -> float | str | None:
        if oldest is None and thread_ts:
            # Replies come oldest first: without a floor, a long thread's first
            # pages would be all that ``limit`` lets through.
            return self._wall_clock() - self._dedupe_lookback
        return oldest

    def _lookup_posted(
        self, channel: str, idempotency_key: str, thread_ts: str | None, oldest: float
    ) -> SlackMessageRef | None:
        """The earlier post carrying ``idempotency_key``, found without nested retries.

        Runs inside :meth:`post_message`'s retried attempt, so it calls the
        history endpoint once per page; a failure leaves the outcome unknown.
        """

        def fetch(method: str, params: Mapping[str, str]) -> Mapping[str, Any]:
            return self._transport.call(method, channel, params=params)

        try:
            return find_key(
                message_pages(
                    fetch, channel, oldest=oldest, thread_ts=thread_ts,
                    limit=200 * LOOKUP_MAX_PAGES, max_pages=LOOKUP_MAX_PAGES,
                ),
                idempotency_key,
            )  # fmt: skip
        except SlackError as error:
            retry_after = error.retry_after if isinstance(error, SlackTransientError) else None
            raise SlackTransientError(
                _describe(
                    "chat.postMessage", channel, "outcome_unknown",
                    (f"an earlier attempt may have posted; the history lookup failed: "
                     f"{error.code}",),
                ),
                code="outcome_unknown", method="chat.postMessage", channel=channel,
                retry_after=retry_after, ambiguous=True,
            ) from None  # fmt: skip
