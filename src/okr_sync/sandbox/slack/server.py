"""A Slack Web API sandbox on loopback: the endpoints okr-sync uses, with Slack's shapes.

Implements ``chat.postMessage``, ``chat.update``, ``conversations.history``,
``conversations.replies``, ``conversations.info``, ``views.open`` and ``auth.test`` (and,
toward an app, signed slash commands and interactions: :mod:`.interactions`) over JSON,
form or query
arguments; errors are HTTP 200 ``{"ok": false, "error": code}`` as on Slack,
rate limits are HTTP 429 with ``Retry-After``. Blocks are checked against
Block Kit's limits. Everything posted is recorded per channel (with edit
history) for tests and the demo. Faults can be injected.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from werkzeug.wrappers import Request, Response

from okr_sync.sandbox.server import LoopbackServer
from okr_sync.sandbox.slack.block_kit import block_problems
from okr_sync.sandbox.slack.conversations import AUTH_TEST, SandboxChannel, conversation_info
from okr_sync.sandbox.slack.faults import (
    Delay,
    Fault,
    SlackApiError,
    SlackFaults,
)
from okr_sync.sandbox.slack.interactions import RESPONSE_PATH, SlackInteractionDriver
from okr_sync.sandbox.slack.messages import MessageVersion, SandboxMessage, SlackRequestRecord

DEFAULT_TOKEN = "xoxb-sandbox-token"  # noqa: S105 - the fixed credential of a local fake
DEFAULT_CHANNEL = "C0123456789"
MAX_TEXT = 40_000
JSON_ARGS = ("blocks", "metadata", "attachments")


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not value["event_type"]
        or not isinstance(value.get("event_payload", {}), dict)
    ):
        raise SlackApiError("invalid_metadata_format")
    return {"event_type": value["event_type"], "event_payload": value.get("event_payload", {})}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


class SlackSandbox:
    """Loopback Slack. ``api_url`` is what the Slack connector's ``SlackClient`` takes."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Iterable[str | SandboxChannel] = (DEFAULT_CHANNEL,),
        channel_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_blocks_text: int | None = None,
        page_cap: int = 999,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        #: Seconds every call takes before it is answered (a far-away Slack).
        self.latency = latency
        #: Calls being answered right now, and the most there were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_blocks_text = max_blocks_text
        self.page_cap = page_cap
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._channels: dict[str, SandboxChannel] = {}
        self._messages: dict[str, list[SandboxMessage]] = {}
        self._last_ts_micros = 0
        self._stopping = threading.Event()
        self._faults = SlackFaults(
            clock=clock, channel_interval=channel_interval, stopping=self._stopping
        )
        self.requests: list[SlackRequestRecord] = []
        self.counters: Counter[str] = Counter()
        self._server: LoopbackServer | None = None
        #: Slash commands and interactions toward an app; views.open; response URLs.
        self.interactions = SlackInteractionDriver(lambda: self.url, clock=clock,
                                                   wall_clock=wall_clock)
        for channel in channels:
            if isinstance(channel, SandboxChannel):
                self._channels[channel.id] = channel
            else:
                self.add_channel(channel)

    # -- setup ----------------------------------------------------------------

    def add_channel(
        self, channel_id: str, *, name: str | None = None, archived: bool = False,
        member: bool = True,
    ) -> SandboxChannel:  # fmt: skip
        with self._lock:
            channel = SandboxChannel(channel_id, name or channel_id.lower(), archived, member)
            self._channels[channel_id] = channel
            return channel

    def inject_error(
        self, code: str = "ratelimited", *, count: int = 1, status: int | None = None,
        retry_after: float | str | None = None, method: str | None = None,
        after_processing: bool = False,
    ) -> None:  # fmt: skip
        """The next ``count`` calls (of ``method``, if given) fail with ``code``.

        ``ratelimited`` defaults to HTTP 429 with ``Retry-After: 1``; others to 200.
        ``after_processing`` applies the call first, then answers with the error
        (a lost reply: the caller cannot know the message went out).
        """
        limited = code == "ratelimited"
        status = status if status is not None else (429 if limited else 200)
        retry_after = retry_after if retry_after is not None else (1 if limited else None)
        fault = Fault(code, status, retry_after, method, after_processing)
        with self._lock:
            self._faults.add(fault, count)

    def delay_replies(
        self, seconds: float, *, count: int = 1, method: str | None = None,
        after_processing: bool = True,
    ) -> None:  # fmt: skip
        """The next ``count`` calls (of ``method``, if given) are answered ``seconds`` late.

        A client whose read timeout is shorter sees a timeout. By default the call is
        applied first (Slack acted, its answer is late: the caller cannot know the
        message went out); ``after_processing=False`` holds it before anything happens.
        Every delay ends when the sandbox stops.
        """
        if not 0 <= seconds < math.inf:
            raise ValueError(f"a reply delay must be a finite number of seconds, not {seconds}")
        with self._lock:
            self._faults.add_delay(Delay(seconds, method, after_processing), count)

    def clear_faults(self) -> None:
        """Drop every injected error and delay not yet due, and periodic rate limits."""
        with self._lock:
            self._faults.clear()

    def rate_limit_every(self, nth: int, *, retry_after: int = 1) -> None:
        """Every ``nth`` write call (post or update) gets 429 ``ratelimited``."""
        with self._lock:
            self._faults.every(nth, retry_after)

    @property
    def channel_interval(self) -> float | None:
        """Seconds Slack wants between writes to one channel (``None``: no pacing)."""
        return self._faults.channel_interval

    @channel_interval.setter
    def channel_interval(self, value: float | None) -> None:
        with self._lock:
            self._faults.channel_interval = value

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> SlackSandbox:
        self._stopping.clear()
        self._server = LoopbackServer(self.wsgi_app).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Slack sandbox is not running")
        return self._server.url

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # -- inspection -------------------------------------------------------------

    def messages(self, channel: str) -> list[SandboxMessage]:
        """Every message in ``channel`` (replies included), in posting order."""
        with self._lock:
            return list(self._messages.get(channel, []))

    def top_level(self, channel: str) -> list[SandboxMessage]:
        return [m for m in self.messages(channel) if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[SandboxMessage]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts]

    def message(self, channel: str, ts: str) -> SandboxMessage:
        for candidate in self.messages(channel):
            if candidate.ts == ts:
                return candidate
        raise KeyError(f"no message {ts} in {channel}")

    # -- WSGI -------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency > 0:
                time.sleep(self.latency)
            return self._answer(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path.startswith(RESPONSE_PATH):
            return self.interactions.response_post(request)(environ, start_response)
        method = request.path.removeprefix("/api/") if request.path.startswith("/api/") else ""
        channel: str | None = None
        headers: dict[str, str] = {}
        with self._lock:
            delay = self._faults.take_delay(method)
        if delay is not None:
            with self._lock:
                self.counters["delayed"] += 1
        if delay is not None and not delay.after_processing:
            self._faults.wait(delay.seconds)
        try:
            args = self._arguments(request)
            channel_arg = args.get("channel")
            channel = channel_arg if isinstance(channel_arg, str) else None
            with self._lock:
                body = self._dispatch(method, request, args)
            status = 200
        except SlackApiError as error:
            status = error.status
            body = {"ok": False, "error": error.code}
            if error.errors:
                body["errors"] = error.errors
                body["response_metadata"] = {"messages": [f"[ERROR] {e}" for e in error.errors]}
            if error.retry_after is not None:
                headers["Retry-After"] = str(error.retry_after)
        with self._lock:
            failed = None if body.get("ok") else str(body.get("error"))
            self.requests.append(SlackRequestRecord(method, channel, status, failed))
            self.counters[method] += 1
            self.counters[f"{method}:{failed or 'ok'}"] += 1
        if delay is not None and delay.after_processing:
            self._faults.wait(delay.seconds)
        response = Response(json.dumps(body), status=status, headers=headers)
        response.content_type = "application/json; charset=utf-8"
        return response(environ, start_response)

    def _arguments(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.args.items())
        if request.mimetype == "application/json":
            data = request.get_json(silent=True)
            if data is None:
                raise SlackApiError("invalid_json")
            if not isinstance(data, dict):
                raise SlackApiError("json_not_object")
            return data
        args: dict[str, Any] = dict(request.args.items())
        args.update(request.form.items())
        for name in JSON_ARGS:
            if isinstance(args.get(name), str):
                try:
                    args[name] = json.loads(args[name])
                except ValueError:
                    raise SlackApiError("invalid_arguments") from None
        return args

    def _dispatch(self, method: str, request: Request, args: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "auth.test": self._auth_test,
            "conversations.info": self._info,
            "views.open": self.interactions.views_open,
        }.get(method)
        if handler is None:
            raise SlackApiError("unknown_method", status=404)
        self._check_token(request, args)
        fault = self._faults.check(method, args, self._channels)
        result = handler(args)
        if fault is not None:
            raise SlackApiError(fault.code, status=fault.status, retry_after=fault.retry_after)
        return result

    def _check_token(self, request: Request, args: Mapping[str, Any]) -> None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token and request.mimetype != "application/json":
            token = str(args.get("token") or "")
        if not token:
            raise SlackApiError("not_authed")
        if token != self.token:
            raise SlackApiError("invalid_auth")

    def _channel(self, args: Mapping[str, Any], *, write: bool) -> SandboxChannel:
        wanted = args.get("channel")
        if not isinstance(wanted, str) or not wanted:
            raise SlackApiError("channel_not_found")
        name = wanted.lstrip("#")
        channel = self._channels.get(wanted) or next(
            (c for c in self._channels.values() if c.name == name), None
        )
        if channel is None:
            raise SlackApiError("channel_not_found")
        if write and channel.archived:
            raise SlackApiError("is_archived")
        if not channel.member:
            raise SlackApiError("not_in_channel")
        return channel

    def _content(self, args: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
        text = args.get("text")
        text = text if isinstance(text, str) else ""
        blocks = args.get("blocks")
        cap = self.max_blocks_text
        problems = None if blocks is None else block_problems(blocks, max_total_text=cap)
        if problems is not None:
            raise SlackApiError(problems.code, errors=problems.errors)
        if not text and not blocks and not args.get("attachments"):
            raise SlackApiError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackApiError("msg_too_long")
        return text, blocks

    def _next_ts(self) -> str:
        micros = max(self._last_ts_micros + 1, int(self._wall_clock() * 1_000_000))
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, write=True)
        text, blocks = self._content(args)
        metadata = _metadata(args.get("metadata"))
        thread_ts = args.get("thread_ts") or None
        existing = self._messages.setdefault(channel.id, [])
        if thread_ts is not None and not any(
            m.ts == thread_ts and m.thread_ts is None for m in existing
        ):
            raise SlackApiError("thread_not_found")
        message = SandboxMessage(channel.id, self._next_ts(), text, blocks, thread_ts, metadata)
        existing.append(message)
        return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_json()}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, write=True)
        existing = self._messages.get(channel.id, [])
        message = next((m for m in existing if m.ts == args.get("ts")), None)
        if message is None:
            raise SlackApiError("message_not_found")
        text, blocks = self._content(args)
        metadata = _metadata(args.get("metadata")) if "metadata" in args else message.metadata
        message.edits.append(MessageVersion(message.text, message.blocks, message.metadata))
        message.text, message.blocks, message.metadata = text, blocks, metadata
        message.edited_ts = self._next_ts()
        return {
            "ok": True, "channel": channel.id, "ts": message.ts, "text": text,
            "message": message.as_json(),
        }  # fmt: skip

    def _page(
        self, found: list[SandboxMessage], args: Mapping[str, Any], key: str
    ) -> dict[str, Any]:
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args["latest"]) if args.get("latest") else math.inf
            limit = max(1, min(self.page_cap, int(args.get("limit") or 100)))
        except ValueError:
            raise SlackApiError("invalid_arguments") from None
        found = [m for m in found if oldest < float(m.ts) <= latest]
        start = 0
        if args.get("cursor"):
            try:
                start = int(base64.b64decode(str(args["cursor"])).decode().removeprefix(key))
            except ValueError:
                raise SlackApiError("invalid_cursor") from None
        page = found[start : start + limit]
        more = start + limit < len(found)
        cursor = base64.b64encode(f"{key}{start + limit}".encode()).decode() if more else ""
        with_meta = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True, "messages": [self._listed(m, with_meta) for m in page], "has_more": more,
            "response_metadata": {"next_cursor": cursor},
        }  # fmt: skip

    def _listed(self, message: SandboxMessage, with_metadata: bool) -> dict[str, Any]:
        data = message.as_json(with_metadata=with_metadata)
        replies = [m for m in self._messages[message.channel] if m.thread_ts == message.ts]
        if replies and message.thread_ts is None:
            data.update(thread_ts=message.ts, reply_count=len(replies), latest_reply=replies[-1].ts)
        return data

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, write=False)
        top = [m for m in self._messages.get(channel.id, []) if m.thread_ts is None]
        body = self._page(list(reversed(top)), args, "history:")
        body.update(pin_count=0, channel_actions_ts=None, channel_actions_count=0)
        return body

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, write=False)
        thread_ts = args.get("ts")
        all_messages = self._messages.get(channel.id, [])
        parent = next((m for m in all_messages if m.ts == thread_ts), None)
        if parent is None:
            raise SlackApiError("thread_not_found")
        thread = [parent, *[m for m in all_messages if m.thread_ts == thread_ts]]
        return self._page(thread, args, "replies:")

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(AUTH_TEST)

    def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        wanted = args.get("channel")
        channel = self._channels.get(wanted) if isinstance(wanted, str) else None
        if channel is None:
            raise SlackApiError("channel_not_found")
        return conversation_info(channel)
