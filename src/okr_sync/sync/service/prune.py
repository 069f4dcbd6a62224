"""``serve`` prunes the store once a day (``OKR_SYNC_SERVE_PRUNE``, ``OKR_SYNC_RETENTION_DAYS``).

The policy is :mod:`okr_sync.sync.store.retention`'s. The leader prunes at its first
tick and then every day, under the run lock, so never during a pass.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from okr_sync.sync.runtime import Runtime
from okr_sync.sync.store.fencing import fenced_run_lock
from okr_sync.sync.store.locks import LockBusyError, LockLostError
from okr_sync.sync.store.store import PruneCounts, Store

log = logging.getLogger("okr_sync.service")

PRUNE_EVERY = timedelta(days=1)
#: After a failure (database down...), try again this much later.
PRUNE_RETRY = timedelta(hours=1)


class DailyPrune:
    def __init__(self, runtime: Runtime, *, holder: str) -> None:
        self.runtime = runtime
        self.holder = holder
        self._next: datetime | None = None

    def run_due(self, now: datetime) -> PruneCounts | None:
        """Prune when a day has passed since the last prune (at once the first time)."""
        settings, store = self.runtime.settings, self.runtime.store
        if not settings.serve_prune or not isinstance(store, Store):
            return None
        if self._next is not None and now < self._next:
            return None
        before = now - timedelta(days=settings.retention_days)
        try:
            with fenced_run_lock(store, settings.database_url, holder=self.holder):
                counts = store.prune(before=before)
        except (LockBusyError, LockLostError):
            return None  # a pass runs: the next tick tries again
        except Exception as error:
            log.warning("pruning the store failed; will retry",
                        extra={"error": type(error).__name__})
            self._next = now + PRUNE_RETRY
            return None
        self._next = now + PRUNE_EVERY
        log.info("store pruned", extra={"runs": counts.runs, "snapshots": counts.snapshots,
                                        "outbox": counts.outbox,
                                        "before": before.isoformat(timespec="seconds")})
        return counts
