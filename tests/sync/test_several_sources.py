"""Several Jira sources (issue 14 item 1): a Jira Cloud (``main``) and a Jira Data Center
(``legacy``) in one plan, over loopback sandboxes. One failing source never blocks the
other's KRs: they are measured and posted, the failing one's are named once and never
posted as a score, and each source keeps its own cursor and mirror.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.store.store import Store
from support.two_sources import LEGACY_KRS, MAIN_KR, TwoSources, kr_docs, two_sources


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TwoSources]:
    with two_sources(tmp_path) as w:
        yield w


def test_pass_given_cloud_and_data_center_sources_measures_each_from_its_own_site(
    world: TwoSources,
) -> None:
    runtime = world.runtime()

    result = runtime.run_locked(PassOptions())

    assert result.exit_code == 0, result.failures
    krs = kr_docs(result.scorecard.to_json())
    for kr_id in (MAIN_KR, *LEGACY_KRS):
        assert krs[kr_id]["value"] is not None and krs[kr_id]["stale"] is False, kr_id
    # Each site answered for its own project only: the Cloud one never saw OPS, and the
    # Data Center one was asked with its own API (v2 search, Bearer PAT).
    assert krs[LEGACY_KRS[0]]["items"]["selected"] == sum(
        1 for i in world.dc.dataset if not i.is_subtask)
    assert world.dc.log.count(path="/rest/api/2/search") >= 1
    assert world.cloud.log.count(path="/rest/api/2/search") == 0
    store = runtime.store
    assert store.get_cursor("main") is not None and store.get_cursor("legacy") is not None
    # The raw JQL of legacy is answered on legacy's mirror, checked against legacy's Jira.
    assert [(c.source, c.kr_id, c.verdict) for c in store.jql_checks()] == [
        ("legacy", LEGACY_KRS[1], "match")]
    dc_key = next(iter(world.dc.dataset)).key
    assert store.resolve_key("legacy", dc_key) is not None
    assert store.resolve_key("main", dc_key) is None
    runtime.close()


def test_pass_given_data_center_source_refusing_its_token_measures_and_posts_the_cloud_krs(
    world: TwoSources,
) -> None:
    runtime = world.runtime(legacy_pat="revoked-pat")

    result = runtime.run_locked(PassOptions())

    assert result.exit_code == 1
    assert len(result.failures) == 1 and result.failures[0].startswith("source legacy: ")
    assert result.source_failures == result.failures
    assert result.measured
    krs = kr_docs(result.scorecard.to_json())
    assert krs[MAIN_KR]["score"] is not None and krs[MAIN_KR]["stale"] is False
    for kr_id in LEGACY_KRS:
        assert (krs[kr_id]["value"], krs[kr_id]["score"], krs[kr_id]["measured_at"]) == (
            None, None, None), kr_id
    # The Cloud KR is posted; the legacy KRs are posted as "not measured", never a score.
    assert [d.status for d in result.scorecard.deliveries] == ["sent"]
    posted = world.posted_text()
    assert MAIN_KR in posted or "Enterprise work done" in posted
    assert "not measured" in posted
    for kr_id in LEGACY_KRS:
        assert not [w for w in result.scorecard.warnings if w.kr == kr_id and "legacy" in
                    w.message], "the source's failure is told once, not per KR"
    store = runtime.store
    assert isinstance(store, Store)
    assert store.get_cursor("main") is not None
    assert store.get_cursor("legacy") is None
    health = {h.source: h for h in store.sources_health()}
    assert health["legacy"].failing and health["legacy"].last_success_at is None
    assert not health["main"].failing and health["main"].last_success_at is not None
    runtime.close()


@pytest.mark.parametrize("down", ["503", "stopped"])
def test_pass_given_data_center_down_after_a_good_pass_keeps_its_krs_stale_and_cursor(
    world: TwoSources, down: str,
) -> None:
    runtime = world.runtime()
    first = runtime.run_locked(PassOptions())
    assert first.exit_code == 0
    legacy_cursor = runtime.store.get_cursor("legacy")
    main_cursor = runtime.store.get_cursor("main")
    world.cloud.dataset.advance(timedelta(hours=2))
    world.dc.dataset.advance(timedelta(hours=2))
    if down == "503":
        world.dc.faults.server_errors(count=None)
    else:
        world.dc.stop()  # nothing listens any more: connections are refused

    second = runtime.run_locked(PassOptions())

    assert second.exit_code == 1
    assert second.failures == second.source_failures and len(second.failures) == 1
    assert second.failures[0].startswith("source legacy: ")
    before, after = kr_docs(first.scorecard.to_json()), kr_docs(second.scorecard.to_json())
    for kr_id in LEGACY_KRS:
        assert after[kr_id]["stale"] is True, kr_id
        assert after[kr_id]["value"] == before[kr_id]["value"], kr_id
        assert after[kr_id]["measured_at"] == before[kr_id]["measured_at"], kr_id
    assert after[MAIN_KR]["stale"] is False
    assert after[MAIN_KR]["measured_at"] != before[MAIN_KR]["measured_at"]
    # Cursors are independent: main's moved on, legacy's stayed where it was.
    assert runtime.store.get_cursor("legacy") == legacy_cursor
    main_after = runtime.store.get_cursor("main")
    assert main_cursor is not None and main_after is not None
    assert main_after.updated_at > main_cursor.updated_at
    runtime.close()
