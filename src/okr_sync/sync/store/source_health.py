"""Store operations on each Jira source's health: when it was last read, and since when
it fails and why. Written with the pass's other results (one transaction), read by
``status`` and ``doctor``; a failing source keeps its last good read, so its KRs can say
how old their values are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, truncate, upsert
from okr_sync.sync.store.tables import source_health


@dataclass(frozen=True)
class SourceHealth:
    source: str
    #: The end of the last pass that read this source (None: never read).
    last_success_at: datetime | None
    #: The first failing pass of the current run of failures (None: not failing).
    failing_since: datetime | None
    last_error: str | None
    updated_at: datetime

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


def _health(row: sa.Row[Any]) -> SourceHealth:
    return SourceHealth(row.source, row.last_success_at, row.failing_since, row.last_error,
                        row.updated_at)


class SourceHealthOps(StoreOps):
    def record_source_read(self, source: str, *, at: datetime | None = None) -> None:
        """The pass at ``at`` read ``source``: it no longer fails."""
        when = self._now(at)
        with self._connection() as conn:
            conn.execute(
                upsert(conn, source_health, ["source"],
                       ["last_success_at", "failing_since", "last_error", "updated_at"]),
                {"source": source, "last_success_at": when, "failing_since": None,
                 "last_error": None, "updated_at": when},
            )

    def record_source_failure(self, source: str, error: str, *,
                              at: datetime | None = None) -> None:
        """The pass at ``at`` could not read ``source``; ``failing_since`` keeps the first
        failure of a run of them, ``last_success_at`` the last good read."""
        when = self._now(at)
        with self._connection() as conn:
            row = conn.execute(
                sa.select(source_health.c.failing_since)
                .where(source_health.c.source == source)
            ).first()
            since = row.failing_since if row is not None and row.failing_since else when
            conn.execute(
                upsert(conn, source_health, ["source"],
                       ["failing_since", "last_error", "updated_at"]),
                {"source": source, "last_success_at": None, "failing_since": since,
                 "last_error": truncate(error), "updated_at": when},
            )

    def sources_health(self) -> list[SourceHealth]:
        """Every source's health, by name."""
        with self._connection() as conn:
            rows = conn.execute(sa.select(source_health).order_by(source_health.c.source))
            return [_health(row) for row in rows]
