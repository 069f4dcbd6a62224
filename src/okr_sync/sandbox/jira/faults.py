"""Fault injection and the request log of the Jira sandbox.

Faults are rules over the stream of requests whose path contains one of ``paths``: each
rule counts its matching requests and fires on every ``every``-th one (or on each of the
next ``count`` ones after skipping ``after``). Rules can be added and cleared at runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FaultDecision", "FaultInjector", "RequestLog", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    params: dict[str, list[str]]
    body: Any  # parsed JSON, the raw text when it is not JSON, or None
    status: int
    #: rate_limit | server_error | revoked | malformed | garbage | reset | rewrite | drip
    fault: str | None = None
    auth: str | None = None  # "basic" | "bearer" | None; never the credential itself
    retry_after: int | None = None


class RequestLog:
    """Every request the sandbox answered, in order; safe to read from tests while serving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def count(
        self, *, path: str | None = None, method: str | None = None, status: int | None = None,
        fault: str | None = None,
    ) -> int:
        """Requests whose path contains ``path`` (and that match the other filters)."""
        return len(self.matching(path=path, method=method, status=status, fault=fault))

    def matching(
        self, *, path: str | None = None, method: str | None = None, status: int | None = None,
        fault: str | None = None,
    ) -> list[RequestRecord]:
        return [
            r for r in self.records
            if (path is None or path in r.path)
            and (method is None or r.method == method.upper())
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        ]


@dataclass
class FaultDecision:
    status: int | None = None
    kind: str | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    malformed: bool = False
    #: Answer 200 with a body that is not JSON at all (a proxy's error page).
    garbage: bool = False
    #: Drop the connection without an answer (a reset by a proxy or load balancer).
    reset: bool = False
    #: Rewrites of a successful answer's JSON, applied in order (answers Jira may give).
    rewrites: list[Callable[[Any], Any]] = field(default_factory=list)
    #: Seconds between the bytes of the body (a server that drips its answer); 0 = at once.
    drip: float = 0.0


@dataclass
class _Rule:
    kind: str
    paths: tuple[str, ...] | None
    every: int | None
    count: int | None
    after: int
    status: int = 0
    retry_after: int | None = None
    seconds: float = 0.0
    reason: str = "jira-quota-based"
    transform: Callable[[Any], Any] | None = None
    seen: int = 0

    def applies(self, path: str) -> bool:
        return self.paths is None or any(p in path for p in self.paths)

    def fires(self, *, blocked: bool = False) -> bool:
        """Count this request; fire unless ``blocked`` by an earlier status fault.

        A blocked burst keeps its budget, so a burst of N is always N answers.
        """
        self.seen += 1
        position = self.seen - self.after
        if position <= 0 or (self.count is not None and self.count <= 0):
            return False
        if self.every is not None and position % self.every != 0:
            return False
        if blocked:
            return False
        if self.count is not None:
            self.count -= 1
        return True


def _paths(paths: tuple[str, ...] | str | None) -> tuple[str, ...] | None:
    return (paths,) if isinstance(paths, str) else paths


class FaultInjector:
    """Configure faults with the methods below; the server asks :meth:`decide` per request."""

    def __init__(self, wall_clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self.rate_limit_budget = 100

    def rate_limit(
        self, *, every: int | None = None, count: int | None = None, retry_after: int = 1,
        after: int = 0, paths: tuple[str, ...] | str | None = None,
        reason: str = "jira-quota-based",
    ) -> None:
        """429 with Retry-After (seconds) and X-RateLimit-* headers.

        ``every=3``: the 3rd, 6th, 9th... matching request. ``count=2``: the next two (after
        skipping ``after``). Neither: every matching request until :meth:`clear`.
        """
        self._add(_Rule("rate_limit", _paths(paths), every, count, after, 429, retry_after,
                        reason=reason))

    def server_errors(
        self, count: int | None = 1, *, status: int = 503, retry_after: int | None = None,
        every: int | None = None, after: int = 0, paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """A burst of 5xx (``count`` in a row after skipping ``after``), optional Retry-After."""
        self._add(_Rule("server_error", _paths(paths), every, count, after, status, retry_after))

    def latency(
        self, seconds: float, *, count: int | None = None, every: int | None = None,
        after: int = 0, paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """Delay responses by ``seconds`` (real time, in the server thread)."""
        self._add(_Rule("latency", _paths(paths), every, count, after, seconds=seconds))

    def malformed(
        self, count: int | None = 1, *, every: int | None = None, after: int = 0,
        paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """Answer 200 with the JSON body cut in half."""
        self._add(_Rule("malformed", _paths(paths), every, count, after))

    def garbage(
        self, count: int | None = 1, *, every: int | None = None, after: int = 0,
        paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """Answer 200 with a JSON content type and a body that is not JSON."""
        self._add(_Rule("garbage", _paths(paths), every, count, after))

    def reset(
        self, count: int | None = 1, *, every: int | None = None, after: int = 0,
        paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """Drop the connection after reading the request, without any answer."""
        self._add(_Rule("reset", _paths(paths), every, count, after))

    def revoke(self, *, after: int = 0, paths: tuple[str, ...] | str | None = None) -> None:
        """401 for every matching request after the first ``after``: the token was revoked."""
        self._add(_Rule("revoked", _paths(paths), None, None, after, 401))

    def rewrite(
        self, transform: Callable[[Any], Any], *, paths: tuple[str, ...] | str | None = None,
        count: int | None = None, every: int | None = None, after: int = 0,
    ) -> None:
        """Answer 200 with ``transform(payload)`` instead of the dataset's JSON (or error).

        For answers a real Jira (or an OpenAPI-driven one) may give that the dataset never
        holds: a ``timeZone`` that is a tzdata folder, a field without ``id``, a negative
        count, ``NaN`` story points.
        """
        self._add(_Rule("rewrite", _paths(paths), every, count, after, transform=transform))

    def drip(
        self, seconds_per_byte: float, *, count: int | None = None, every: int | None = None,
        after: int = 0, paths: tuple[str, ...] | str | None = None,
    ) -> None:
        """Send the body one byte at a time, ``seconds_per_byte`` apart (real time)."""
        self._add(_Rule("drip", _paths(paths), every, count, after, seconds=seconds_per_byte))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def decide(self, path: str) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            for rule in self._rules:
                blocked = rule.status != 0 and decision.status is not None
                if not rule.applies(path) or not rule.fires(blocked=blocked):
                    continue
                if rule.kind == "latency":
                    decision.latency += rule.seconds
                elif rule.kind == "malformed":
                    decision.malformed = True
                elif rule.kind == "garbage":
                    decision.garbage = True
                elif rule.kind == "reset":
                    decision.reset = True
                elif rule.kind == "rewrite" and rule.transform is not None:
                    decision.rewrites.append(rule.transform)
                elif rule.kind == "drip":
                    decision.drip = max(decision.drip, rule.seconds)
                elif decision.status is None:
                    decision.status, decision.kind = rule.status, rule.kind
                    decision.retry_after = rule.retry_after
                    decision.headers = self._headers(rule)
        if decision.status is not None:
            decision.malformed = decision.garbage = False
        return decision

    def _headers(self, rule: _Rule) -> dict[str, str]:
        headers: dict[str, str] = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        if rule.kind == "rate_limit":
            reset = self._wall_clock() + timedelta(seconds=(rule.retry_after or 0) + 59)
            headers.update({
                "X-RateLimit-Limit": str(self.rate_limit_budget),
                "X-RateLimit-Remaining": "0",
                # Jira sends an ISO-8601 minute timestamp here, not epoch seconds (A5).
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                "X-RateLimit-NearLimit": "true",
                "RateLimit-Reason": rule.reason,
            })
        return headers
