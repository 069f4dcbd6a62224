"""Hold one ``chat.postMessage`` in the Slack sandbox: a post in flight, on demand.

The sandbox answers each request on its own thread, so while the held post waits,
other callers (a second run's history lookup, its own posts) are answered as usual.
The held post is applied only after :meth:`HeldPost.release`, as a slow Slack would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from okr_sync.sandbox.slack.server import SlackSandbox

#: Longest a held post waits for its release (a test that fails must not hang).
HOLD_LIMIT_S = 120.0


class HeldPost:
    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self._armed = True
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            armed, self._armed = self._armed, False
            return armed

    def release(self) -> None:
        self.released.set()


def hold_next_post(monkeypatch: pytest.MonkeyPatch, slack: SlackSandbox) -> HeldPost:
    """The next ``chat.postMessage`` waits (before Slack applies it) until released."""
    held = HeldPost()
    answer: Callable[..., Any] = slack._answer

    def held_answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if str(environ.get("PATH_INFO", "")).endswith("/chat.postMessage") and held.take():
            held.arrived.set()
            held.released.wait(HOLD_LIMIT_S)
        return answer(environ, start_response)

    monkeypatch.setattr(slack, "_answer", held_answer)
    return held
