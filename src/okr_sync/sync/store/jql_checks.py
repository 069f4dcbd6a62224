"""Store operations on raw-JQL measures answered on the mirror: Jira's verdicts.

A ``mismatch`` row sends that measure back to Jira for as long as its JQL is the
same; a changed JQL is a new query, evaluated (and compared) afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import MAX_ERROR_CHARS, StoreOps, upsert
from okr_sync.sync.store.records import JqlCheck, JqlVerdict, jql_hash
from okr_sync.sync.store.tables import jql_checks


def _check(row: sa.Row[Any]) -> JqlCheck:
    return JqlCheck(row.source, row.kr_id, row.jql_hash, row.verdict, row.detail, row.checked_at)


class JqlCheckOps(StoreOps):
    def set_jql_check(
        self,
        source: str,
        kr_id: str,
        *,
        jql: str,
        verdict: JqlVerdict,
        detail: str = "",
        checked_at: datetime | None = None,
    ) -> JqlCheck:
        check = JqlCheck(source, kr_id, jql_hash(jql), verdict, detail[:MAX_ERROR_CHARS],
                         self._now(checked_at))
        with self._connection() as conn:
            conn.execute(
                upsert(conn, jql_checks, ["source", "kr_id"],
                       ["jql_hash", "verdict", "detail", "checked_at"]),
                {"source": source, "kr_id": kr_id, "jql_hash": check.jql_hash,
                 "verdict": verdict, "detail": check.detail, "checked_at": check.checked_at},
            )
        return check

    def jql_checks(self, source: str | None = None) -> list[JqlCheck]:
        """Every stored check (of one source, when given), by source and owner."""
        query = sa.select(jql_checks).order_by(jql_checks.c.source, jql_checks.c.kr_id)
        if source is not None:
            query = query.where(jql_checks.c.source == source)
        with self._connection() as conn:
            return [_check(row) for row in conn.execute(query)]
