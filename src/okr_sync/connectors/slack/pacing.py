"""About one message per second per channel: Slack's documented limit for ``chat.postMessage``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
