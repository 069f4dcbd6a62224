"""Fake clocks: time that moves only when the code under test sleeps, or the test says so."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """Wall-clock time (aware ``datetime``): call it for *now*; ``sleep`` advances it."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        self.now += timedelta(seconds=seconds, **delta)

    def set(self, when: datetime) -> None:
        self.now = when


class FakeMonotonic:
    """Seconds as ``time.monotonic()`` gives them; ``sleep`` advances and records."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
