"""Injected faults of the Slack sandbox: errors, rate limits and late replies.

Split from :mod:`.server` so the server stays about Slack's methods. The caller
holds the sandbox lock around every method here except :meth:`SlackFaults.wait`,
which sleeps and so must not hold it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from okr_sync.sandbox.slack.conversations import SandboxChannel

WRITE_METHODS = frozenset({"chat.postMessage", "chat.update"})


class SlackApiError(Exception):
    """Internal: aborts a handler with Slack's error shape."""

    def __init__(
        self, code: str, *, status: int = 200, retry_after: float | str | None = None,
        errors: list[str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(code)
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.errors = errors or []


@dataclass
class Fault:
    code: str
    status: int
    #: A number, or any text: a server may send a Retry-After no client can read.
    retry_after: float | str | None
    method: str | None
    after_processing: bool


@dataclass(frozen=True)
class Delay:
    """A reply held back ``seconds`` (a Slack that does not answer in time)."""

    seconds: float
    method: str | None
    after_processing: bool


class SlackFaults:
    """The queue of injected faults, periodic and per-channel rate limits, and delays."""

    def __init__(
        self, *, clock: Callable[[], float], channel_interval: float | None,
        stopping: threading.Event,
    ) -> None:  # fmt: skip
        self.channel_interval = channel_interval
        self._clock = clock
        self._stopping = stopping
        self._faults: deque[Fault] = deque()
        self._delays: deque[Delay] = deque()
        self._every_nth: tuple[int, int] | None = None
        self._writes = 0
        self._last_write: dict[str, float] = {}

    def add(self, fault: Fault, count: int) -> None:
        self._faults.extend(fault for _ in range(count))

    def add_delay(self, delay: Delay, count: int) -> None:
        self._delays.extend(delay for _ in range(count))

    def clear(self) -> None:
        self._faults.clear()
        self._delays.clear()
        self._every_nth = None

    def every(self, nth: int, retry_after: int) -> None:
        self._every_nth = (nth, retry_after)

    def take_delay(self, method: str) -> Delay | None:
        """The next delay due for a call of ``method``, removed from the queue."""
        for delay in list(self._delays):
            if delay.method in (None, method):
                self._delays.remove(delay)
                return delay
        return None

    def wait(self, seconds: float) -> None:
        """Hold a reply; cut short when the sandbox stops, so a hang never outlives it."""
        self._stopping.wait(seconds)

    def check(
        self, method: str, args: Mapping[str, Any], channels: Mapping[str, SandboxChannel]
    ) -> Fault | None:
        """Raise an injected or rate-limit error, or return one due after processing."""
        for fault in list(self._faults):
            if fault.method in (None, method):
                self._faults.remove(fault)
                if fault.after_processing:
                    return fault
                raise SlackApiError(fault.code, status=fault.status, retry_after=fault.retry_after)
        if method not in WRITE_METHODS:
            return None
        self._writes += 1
        if self._every_nth is not None and self._writes % self._every_nth[0] == 0:
            raise SlackApiError("ratelimited", status=429, retry_after=self._every_nth[1])
        channel = channels.get(str(args.get("channel", "")).lstrip("#"))
        if self.channel_interval is None or channel is None:
            return None
        now = self._clock()
        last = self._last_write.get(channel.id)
        if last is not None and now - last < self.channel_interval:
            wait = math.ceil(self.channel_interval - (now - last))
            raise SlackApiError("ratelimited", status=429, retry_after=max(1, wait))
        self._last_write[channel.id] = now
        return None
