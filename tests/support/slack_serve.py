"""``okr-sync serve`` in a thread against the sandbox world, with Slack check-ins on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.sandbox.slack.interactions import DEFAULT_SIGNING_SECRET
from okr_sync.sync.runtime import Runtime, build_runtime
from okr_sync.sync.sandbox_world import SandboxWorld
from okr_sync.sync.service.app import ServiceHandle, serve
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.store import Store

TIMEOUT = 30.0


@dataclass
class RunningServe:
    handle: ServiceHandle
    runtime: Runtime

    @property
    def store(self) -> Store:
        assert isinstance(self.runtime.store, Store)
        return self.runtime.store

    @property
    def commands_url(self) -> str:
        return self.handle.url + "/slack/commands"

    @property
    def interactions_url(self) -> str:
        return self.handle.url + "/slack/interactions"

    def passes(self) -> int:
        return self.handle.status().passes


def wait_for(condition: Callable[[], object], *, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it is truthy (bounded; fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


@contextmanager
def slack_serve(world: SandboxWorld, plan: Plan, *,
                signing_secret: str = DEFAULT_SIGNING_SECRET) -> Iterator[RunningServe]:
    """serve with OKR_SYNC_SLACK_SIGNING_SECRET set, after its first pass completed."""
    settings = world.settings().model_copy(
        update={"slack_signing_secret": SecretStr(signing_secret)})
    runtime = build_runtime(settings, plan, senders=world.senders())
    stop, started = threading.Event(), threading.Event()
    handles: list[ServiceHandle] = []

    def on_started(handle: ServiceHandle) -> None:
        handles.append(handle)
        started.set()

    thread = threading.Thread(target=lambda: serve(
        lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0, stop_event=stop,
        on_started=on_started, install_signal_handlers=False, debounce=timedelta(0)))
    thread.start()
    try:
        assert started.wait(TIMEOUT)
        running = RunningServe(handles[0], runtime)
        wait_for(lambda: running.passes() >= 1)
        yield running
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
