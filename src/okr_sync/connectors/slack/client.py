"""Slack Web API client: post, edit and look up messages with a bot token.

Slack reports most failures as HTTP 200 with ``{"ok": false, "error": code}``;
:func:`slack_error` turns each code into a typed error so ``sync/`` can decide
by type (fix the route, re-post a vanished message, retry later). Transient
failures are retried with :class:`~okr_sync.connectors.http.Retrier`, never
sooner than Slack's ``Retry-After``. Posts and edits are paced to about one per
second per channel, Slack's documented limit for ``chat.postMessage``.

A post whose outcome is unknown (timeout, dropped connection, 5xx, an ``ok``
reply without a ``ts``) may have reached the channel. When the caller gives an
``idempotency_key``, it travels in the message metadata and the client looks
for it in the channel's recent history before trying again, so a retry never
posts the same message twice. When that lookup itself fails, the outcome stays
unknown and the attempt fails as an ambiguous transient error: never a
permanent one, which would let the caller post the message again elsewhere.

Exceptions from ``requests`` are never chained or quoted: their text can hold
the request's headers (the bot token).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic import SecretStr

from okr_sync.connectors.http import Retrier, RetryPolicy, parse_retry_after
from okr_sync.connectors.slack.errors import (
    DEFAULT_API_URL,
    DEFAULT_EVENT_TYPE,
    IDEMPOTENCY_FIELD,
    LOOKUP_MAX_PAGES,
    RATE_LIMIT_CODES,
    TRANSIENT_CODES,
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
    slack_error,
)

__all__ = [
    "DEFAULT_API_URL",
    "IDEMPOTENCY_FIELD",
    "ChannelPacer",
    "SlackAuthError",
    "SlackChannelError",
    "SlackClient",
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
    "slack_error",
]


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


class ChannelPacer:
    """Spaces calls to the same channel at least ``interval`` seconds apart."""

    def __init__(
        self,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()
        self.waits: list[tuple[str, float]] = []

    def wait_turn(self, channel: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(channel, now))
            # Reserve the slot before sleeping so other channels are not held up.
            self._next_slot[channel] = slot + self.interval
            delay = slot - now
            if delay > 0:
                self.waits.append((channel, delay))
        if delay > 0:
            self._sleep(delay)


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
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        # A token read from an env var or a secrets file often ends in a newline,
        # which requests refuses as a header value (quoting the token).
        self._token = SecretStr(bot_token.get_secret_value().strip())
        self.retrier = retrier or Retrier(policy=policy or RetryPolicy(), sleep=sleep)
        self.timeout = timeout if timeout is not None else self.retrier.policy.timeout
        self.pacer = ChannelPacer(channel_interval, clock=clock, sleep=sleep)
        self._wall_clock = wall_clock
        self._dedupe_lookback = dedupe_lookback
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"SlackClient(api_url={self.api_url!r})"

    def close(self) -> None:
        self._session.close()

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
        merged = _with_key(metadata, idempotency_key)
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
                data = self._call("chat.postMessage", channel, json_body=body)
                # An ok reply without a usable ts was still a post that went through.
                return _ref_from(data, "chat.postMessage", channel)
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
            data = self._call("chat.update", channel, json_body=body)
            return _ref_from(data, "chat.update", channel)

        return self.retrier.call(attempt)

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
        messages: list[SlackMessage] = []
        # Each page holds at least one message, so ``limit`` pages always suffice.
        for page in self._message_pages(
            channel, oldest=oldest, thread_ts=thread_ts, limit=limit, max_pages=max(1, limit),
            retried=True,
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
        for message in self.recent_messages(
            channel, oldest=oldest, limit=limit, thread_ts=thread_ts
        ):
            if message.idempotency_key == idempotency_key:
                return SlackMessageRef(channel=message.channel, ts=message.ts)
        return None

    def _message_pages(
        self,
        channel: str,
        *,
        oldest: float | str | None,
        thread_ts: str | None,
        limit: int,
        max_pages: int,
        retried: bool,
    ) -> Iterator[list[SlackMessage]]:
        method = "conversations.replies" if thread_ts else "conversations.history"
        params: dict[str, str] = {"channel": channel, "include_all_metadata": "true"}
        if thread_ts:
            params["ts"] = thread_ts
            if oldest is None:
                # Replies come oldest first: without a floor, a long thread's first
                # pages would be all that ``limit`` lets through.
                oldest = self._wall_clock() - self._dedupe_lookback
        if oldest is not None:
            params["oldest"] = oldest if isinstance(oldest, str) else f"{oldest:.6f}"
        seen = 0
        cursor = ""
        for _page in range(max_pages):
            page_params = dict(params, limit=str(min(200, limit - seen)))
            if cursor:
                page_params["cursor"] = cursor

            def fetch(page: dict[str, str] = page_params) -> dict[str, Any]:
                return self._call(method, channel, params=page)

            data = self.retrier.call(fetch) if retried else fetch()
            raw = data.get("messages")
            if not isinstance(raw, list):
                raise _malformed(method, channel, "no messages list")
            page_messages = [_message_from(channel, item) for item in raw if isinstance(item, dict)]
            seen += len(page_messages)
            yield page_messages
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not raw or seen >= limit or not cursor or not data.get("has_more", True):
                return

    def _lookup_posted(
        self, channel: str, idempotency_key: str, thread_ts: str | None, oldest: float
    ) -> SlackMessageRef | None:
        """The earlier post carrying ``idempotency_key``, found without nested retries.

        Runs inside :meth:`post_message`'s retried attempt, so it calls the
        history endpoint once per page; a failure leaves the outcome unknown.
        """
        try:
            for page in self._message_pages(
                channel, oldest=oldest, thread_ts=thread_ts, limit=200 * LOOKUP_MAX_PAGES,
                max_pages=LOOKUP_MAX_PAGES, retried=False,
            ):  # fmt: skip
                for message in page:
                    if message.idempotency_key == idempotency_key:
                        return SlackMessageRef(channel=message.channel, ts=message.ts)
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
        return None

    def auth_test(self) -> dict[str, Any]:
        """Who the token belongs to (``auth.test``); raises SlackAuthError when it is bad."""
        return self.retrier.call(lambda: self._call("auth.test", None, json_body={}))

    # -- transport ------------------------------------------------------------

    def _call(
        self,
        method: str,
        channel: str | None,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        url = self.api_url + method
        try:
            if json_body is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
                response = self._session.post(
                    url, json=json_body, headers=headers, timeout=self.timeout
                )
            else:
                response = self._session.get(
                    url, params=params, headers=headers, timeout=self.timeout
                )
        except requests.exceptions.SSLError:
            # A TLS failure (untrusted certificate, intercepting proxy) is setup,
            # not weather; SSLError is a ConnectionError, so it is caught first.
            raise _request_failed(method, channel, "tls_error", "SSLError") from None
        except (requests.Timeout, requests.ConnectionError) as error:
            # A connect timeout means nothing was sent; anything later may have been.
            code = "connection_error"
            if isinstance(error, requests.Timeout):
                connect = isinstance(error, requests.ConnectTimeout)
                code = "connect_timeout" if connect else "timeout"
            raise SlackTransientError(
                _describe(method, channel, code),
                code=code,
                method=method,
                channel=channel,
                ambiguous=code != "connect_timeout",
            ) from None
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as error:
            # The reply broke off mid-body: the call reached Slack and may have worked.
            raise SlackTransientError(
                _describe(method, channel, "incomplete_response", (type(error).__name__,)),
                code="incomplete_response",
                method=method,
                channel=channel,
            ) from None
        except requests.RequestException as error:
            # Invalid URL or header, too many redirects...: the request cannot work as set up.
            raise _request_failed(method, channel, "request_error", type(error).__name__) from None
        return self._parse(method, channel, response)

    def _parse(
        self, method: str, channel: str | None, response: requests.Response
    ) -> dict[str, Any]:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        body = _json_object(response)
        code = body.get("error") if body is not None else None
        if not isinstance(code, str) or not code:
            code = None
        if status == 429:
            code = code if code in RATE_LIMIT_CODES else "ratelimited"
        elif status != 200:
            code = code or f"http_{status}"
            if code not in TRANSIENT_CODES and (
                status >= 500 or self.retrier.policy.is_retryable_status(status)
            ):
                raise SlackTransientError(
                    _describe(method, channel, code),
                    code=code,
                    method=method,
                    channel=channel,
                    status=status,
                    retry_after=retry_after,
                )
        elif body is None:
            raise _malformed(method, channel, "body is not a JSON object", status)
        elif body.get("ok") is True:
            return body
        elif code is None:
            raise _malformed(method, channel, "ok is not true and no error code", status)
        raise slack_error(
            code,
            method=method,
            channel=channel,
            status=status,
            retry_after=retry_after,
            details=_details(body) if body is not None else (),
        )


def _request_failed(method: str, channel: str | None, code: str, kind: str) -> SlackPermanentError:
    """A request that could not be sent as set up; ``kind`` is the exception's type name."""
    return SlackPermanentError(
        _describe(method, channel, code, (kind,)), code=code, method=method, channel=channel
    )


def _malformed(
    method: str, channel: str | None, why: str, status: int | None = None
) -> SlackMalformedResponseError:
    return SlackMalformedResponseError(
        _describe(method, channel, "malformed_response", (why,)),
        code="malformed_response",
        method=method,
        channel=channel,
        status=status,
    )


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _details(body: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list):
        found.extend(str(item) for item in errors)
    messages = (body.get("response_metadata") or {}).get("messages")
    if isinstance(messages, list):
        found.extend(str(item) for item in messages)
    return found


def _with_key(metadata: SlackMetadata | None, key: str | None) -> SlackMetadata | None:
    if key is None:
        return metadata
    if metadata is None:
        return SlackMetadata(DEFAULT_EVENT_TYPE, {IDEMPOTENCY_FIELD: key})
    return SlackMetadata(metadata.event_type, {**metadata.event_payload, IDEMPOTENCY_FIELD: key})


def _ref_from(data: Mapping[str, Any], method: str, channel: str) -> SlackMessageRef:
    ts = data.get("ts")
    returned = data.get("channel")
    if not isinstance(ts, str) or not ts:
        raise _malformed(method, channel, "no ts in the reply")
    return SlackMessageRef(channel=returned if isinstance(returned, str) else channel, ts=ts)


def _message_from(channel: str, item: Mapping[str, Any]) -> SlackMessage:
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
