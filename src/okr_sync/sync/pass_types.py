"""What a sync pass takes and gives: its options, its result, and the deliverer it hands
the new scorecard to (kept apart from :mod:`okr_sync.sync.pipeline`, which re-exports
them, so the pass itself stays one readable file)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from okr_sync.config.plan import Plan
from okr_sync.exit_codes import ExitCode
from okr_sync.scoring.scorecard import Delivery, Scorecard
from okr_sync.sync.store.reader import StoreReader
from okr_sync.sync.store.store import Fence, OutboxItem, RunKind, Store


class Deliverer(Protocol):
    """Plans messages for a new scorecard and delivers the outbox."""

    def plan_messages(
        self, plan: Plan, scorecard: Scorecard, store: StoreReader
    ) -> list[OutboxItem]: ...

    def deliver(self, store: Store, *, fence: Fence | None = None) -> list[Delivery]: ...


@dataclass(frozen=True)
class PassOptions:
    kind: RunKind = "run"
    dry_run: bool = False
    full: bool = False
    as_of: datetime | None = None
    #: KR/KPI ids whose Jira queries are re-run ignoring cursors (``resync --kr``).
    refetch: frozenset[str] = frozenset()
    holder: str | None = None
    #: The run lock's epoch this pass holds: its commit and every outbox claim check it
    #: (None: unfenced, e.g. a dry run or a test without the lock).
    fence: Fence | None = None
    #: Called with (source, issues fetched so far) during long fetches.
    progress: Callable[[str, int], None] | None = None


@dataclass
class PassResult:
    scorecard: Scorecard
    failures: list[str] = field(default_factory=list)
    run_id: int | None = None
    jira_requests: int = 0
    issues_fetched: int = 0
    #: The failure lines of Jira sources that were unreachable or refused the credentials.
    source_failures: list[str] = field(default_factory=list)
    #: The names of those sources (their KRs kept their last values, or none).
    failed_sources: tuple[str, ...] = ()
    #: Whether the pass measured something from Jira (or the plan measures nothing there):
    #: only such a pass is a success for ``/readyz`` and ``last_success``.
    measured: bool = True
    #: CPU seconds this pass spent measuring, scoring and diffing (step 3).
    measure_cpu_seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        failed = [d for d in self.scorecard.deliveries if d.status == "failed"]
        return ExitCode.FAILURES if self.failures or failed else ExitCode.OK


class ReadOnlyStoreError(TypeError):
    """A pass that writes (not ``dry_run``) was handed a store it cannot write."""
