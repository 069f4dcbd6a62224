"""After a mapping rule changes, ``backfill`` shows what the new rule would have said on
each past day: the very values live passes under the new rule measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from okr_sync.config.plan import Plan
from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_history
from support.backfill_world import backfill_plan_builder, simulation

DAYS = 8
KR = "O2.KR2"  # done_ratio over issues labelled sso, customer or quick-win


def _sso_only(epic_key: str) -> Plan:
    """The same plan with O2.KR2's selector narrowed to the `sso` label."""
    builder = backfill_plan_builder(epic_key)
    for obj in builder.doc["objectives"]:
        for kr in obj["key_results"]:
            if kr["id"] == KR:
                select: dict[str, Any] = kr["measure"]["select"]
                select["labels"] = ["sso"]
    return builder.build()


def test_backfill_given_changed_selector_rebuilds_days_as_the_new_rule_measures_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with simulation(tmp_path / "old", days=DAYS) as old:
        old_live = {day: krs[KR] for day, krs in old.live.items()}
        store = old.runtime.store
        assert isinstance(store, Store)
        new_plan = _sso_only(old.epic_key)
        result = backfill(new_plan, store, old.runtime.jira, BackfillOptions(kr_ids=(KR,)),
                          now=old.clock())
        with store.engine.begin() as conn:
            stored = conn.execute(sa.select(kr_history.c.as_of, kr_history.c.value).where(
                kr_history.c.kr_id == KR, kr_history.c.backfilled.is_(True))
                .order_by(kr_history.c.as_of)).all()
    with simulation(tmp_path / "new", days=DAYS, plan_for=_sso_only) as new:
        new_live = {day: krs[KR] for day, krs in new.live.items()}

    # The narrower rule measured other values on those days (else this proves nothing).
    assert [v[0] for v in old_live.values()] != [v[0] for v in new_live.values()]
    rebuilt = {d.day: (d.value, d.score, d.band, d.confidence) for d in result.values[KR]}
    assert rebuilt == new_live
    # Stored as backfilled rows with the new rule's values (live rows of the old rule
    # stay, and win in readers for their days: what was shown then).
    assert [value for _, value in stored] == [v[0] for v in new_live.values()]
