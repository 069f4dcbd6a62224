"""Store: runs, scorecard snapshots, per-KR score history and check-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from okr_sync.scoring.scorecard import Confidence
from okr_sync.sync.store.store import (
    HistoryEntry,
    InvalidRecordError,
    InvalidStateError,
    LatestCheckin,
    NotFoundError,
    RunCounts,
    Store,
)

T0 = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)


def scorecard(score: float) -> dict[str, object]:
    """A minimal A5 scorecard document."""
    return {
        "cycle": {"name": "2026-Q4", "as_of": T0.isoformat()},
        "objectives": [{"id": "CO-1", "score": score, "key_results": []}],
        "changes": [],
    }


def entry(kr_id: str, score: float, confidence: str = "on_track") -> HistoryEntry:
    # Typed as plain str so tests can also hand in an invalid confidence.
    conf = cast(Confidence, confidence)
    return HistoryEntry(kr_id, value=score * 10, score=score, band="progress", confidence=conf)


def test_start_run_given_kind_records_open_run(store: Store) -> None:
    run_id = store.start_run("run", holder="host:1", started_at=T0)

    run = store.get_run(run_id)
    assert (run.kind, run.holder, run.started_at, run.ended_at, run.outcome) == (
        "run",
        "host:1",
        T0,
        None,
        None,
    )
    assert run.counts == RunCounts()


def test_finish_run_given_counts_records_outcome_once(store: Store) -> None:
    run_id = store.start_run("resync", started_at=T0)
    counts = RunCounts(
        jira_requests=3, issues_fetched=120, changes=2, deliveries_sent=4, deliveries_failed=1
    )

    run = store.finish_run(
        run_id, "partial", counts, error_summary="route x: channel_not_found", ended_at=T0
    )

    assert (run.outcome, run.counts, run.error_summary, run.ended_at) == (
        "partial",
        counts,
        "route x: channel_not_found",
        T0,
    )
    with pytest.raises(InvalidStateError):
        store.finish_run(run_id, "ok")
    with pytest.raises(NotFoundError):
        store.finish_run(run_id + 100, "ok")
    with pytest.raises(InvalidRecordError):
        store.finish_run(run_id, "great")  # type: ignore[arg-type]


def test_finish_run_given_huge_error_summary_truncates_it(store: Store) -> None:
    run_id = store.start_run("run")

    run = store.finish_run(run_id, "failed", error_summary="x" * 10_000)

    assert run.error_summary is not None
    assert len(run.error_summary) == 2000


def test_last_runs_by_outcome_given_mixed_runs_reports_latest_of_each(store: Store) -> None:
    ids = {}
    for name, outcome in [("ok1", "ok"), ("failed", "failed"), ("ok2", "ok"), ("open", None)]:
        ids[name] = store.start_run("run", started_at=T0)
        if outcome is not None:
            store.finish_run(ids[name], outcome, ended_at=T0)  # type: ignore[arg-type]

    latest = store.last_runs_by_outcome()

    assert {k: v.id for k, v in latest.items()} == {
        "ok": ids["ok2"],
        "failed": ids["failed"],
        "running": ids["open"],
    }
    last_ok = store.last_run(outcome="ok")
    last_any = store.last_run()
    assert (last_ok and last_ok.id, last_any and last_any.id) == (ids["ok2"], ids["open"])
    assert store.last_run(kind="serve") is None


def test_abandon_unfinished_runs_given_crashed_run_marks_it_failed(store: Store) -> None:
    crashed = store.start_run("run", started_at=T0)
    done = store.start_run("run", started_at=T0)
    store.finish_run(done, "ok", ended_at=T0)

    assert store.abandon_unfinished_runs(at=T0 + timedelta(hours=1)) == 1

    run = store.get_run(crashed)
    assert (run.outcome, run.ended_at) == ("failed", T0 + timedelta(hours=1))
    assert run.error_summary is not None and "abandoned" in run.error_summary
    assert store.get_run(done).outcome == "ok"


def test_save_snapshot_given_documents_tracks_last_published(store: Store) -> None:
    assert store.last_published_snapshot() is None
    run_id = store.start_run("run")
    first = store.save_snapshot(
        cycle="2026-Q4", as_of=T0, document=scorecard(0.4), run_id=run_id, created_at=T0
    )
    draft = store.save_snapshot(cycle="2026-Q4", as_of=T0, document=scorecard(0.5), published=False)

    published = store.last_published_snapshot()
    assert published is not None
    assert (published.id, published.run_id, published.document) == (first, run_id, scorecard(0.4))
    latest = store.latest_snapshot()
    assert latest is not None and (latest.id, latest.published) == (draft, False)

    store.mark_published(draft)

    again = store.last_published_snapshot()
    assert again is not None and again.id == draft
    assert store.get_snapshot(first).as_of == T0
    with pytest.raises(NotFoundError):
        store.get_snapshot(draft + 100)
    with pytest.raises(NotFoundError):
        store.mark_published(draft + 100)


def test_published_snapshot_at_given_moment_returns_the_newest_published_by_then(
    store: Store,
) -> None:
    week_ago = T0 - timedelta(days=7)
    old = store.save_snapshot(cycle="2026-Q4", as_of=week_ago, document=scorecard(0.3),
                              created_at=week_ago - timedelta(hours=1))
    store.save_snapshot(cycle="2026-Q4", as_of=week_ago, document=scorecard(0.35),
                        published=False, created_at=week_ago - timedelta(minutes=5))
    store.save_snapshot(cycle="2026-Q3", as_of=week_ago, document=scorecard(0.9),
                        created_at=week_ago - timedelta(minutes=1))
    store.save_snapshot(cycle="2026-Q4", as_of=T0, document=scorecard(0.5), created_at=T0)

    found = store.published_snapshot_at(week_ago, cycle="2026-Q4")
    assert found is not None and found.id == old
    any_cycle = store.published_snapshot_at(week_ago)
    assert any_cycle is not None and any_cycle.cycle == "2026-Q3"
    assert store.published_snapshot_at(week_ago - timedelta(hours=2)) is None


def test_add_history_given_entries_returns_them_oldest_first(store: Store) -> None:
    snap = store.save_snapshot(cycle="2026-Q4", as_of=T0, document=scorecard(0.4))
    for day in range(3):
        store.add_history(
            snap, cycle="2026-Q4", as_of=T0 + timedelta(days=day), entries=[entry("KR1", day / 10)]
        )

    history = store.get_history("KR1")
    assert [h.score for h in history] == [0.0, 0.1, 0.2]
    assert history[0].snapshot_id == snap
    assert [h.score for h in store.get_history("KR1", limit=2)] == [0.1, 0.2]
    assert store.get_history("KR1", cycle="2026-Q3") == []
    assert store.add_history(None, cycle="2026-Q4", as_of=T0, entries=[]) == 0


def test_history_for_cycle_given_several_krs_returns_each_oldest_first(store: Store) -> None:
    for day in (2, 0, 1):
        store.add_history(None, cycle="2026-Q4", as_of=T0 + timedelta(days=day),
                          entries=[entry("KR1", day / 10), entry("KR2", day / 5)])
    store.add_history(None, cycle="2026-Q3", as_of=T0, entries=[entry("KR1", 0.9)])

    history = store.history_for_cycle("2026-Q4")
    assert sorted(history) == ["KR1", "KR2"]
    assert [h.score for h in history["KR1"]] == [0.0, 0.1, 0.2]
    assert [h.score for h in history["KR2"]] == [0.0, 0.2, 0.4]
    assert store.history_for_cycle("2025-Q1") == {}


def test_add_history_given_unknown_confidence_refuses(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        store.add_history(None, cycle="c", as_of=T0, entries=[entry("KR1", 0.5, "fine")])


def test_final_scores_by_cycle_given_history_takes_last_score_per_cycle(store: Store) -> None:
    store.add_history(None, cycle="2026-Q2", as_of=T0, entries=[entry("KR1", 0.9)])
    store.add_history(None, cycle="2026-Q2", as_of=T0 + timedelta(1), entries=[entry("KR1", 1.0)])
    store.add_history(None, cycle="2026-Q3", as_of=T0 + timedelta(2), entries=[entry("KR1", 1.0)])
    store.add_history(None, cycle="2026-Q3", as_of=T0 + timedelta(2), entries=[entry("KR2", 0.3)])

    assert store.final_scores_by_cycle() == {
        "KR1": {"2026-Q2": 1.0, "2026-Q3": 1.0},
        "KR2": {"2026-Q3": 0.3},
    }
    assert store.final_scores_by_cycle(["KR2"]) == {"KR2": {"2026-Q3": 0.3}}


def test_add_checkin_given_partial_checkins_merges_latest_state(store: Store) -> None:
    store.add_checkin("KR3", value=2, note="two signed", author="ana", at=T0)
    store.add_checkin("KR3", confidence="at_risk", at=T0 + timedelta(hours=1))
    store.add_checkin("KR3", value=4, at=T0 + timedelta(hours=2))
    store.add_checkin("KR4", confidence="blocked", at=T0 - timedelta(days=30))

    latest = store.latest_checkins()

    assert latest["KR3"] == LatestCheckin(
        "KR3",
        value=4,
        value_at=T0 + timedelta(hours=2),
        confidence="at_risk",
        confidence_at=T0 + timedelta(hours=1),
        note="two signed",
        note_at=T0,
        note_by="ana",
    )
    assert set(store.latest_checkins(since=T0 - timedelta(days=1))) == {"KR3"}
    assert set(store.latest_checkins(kr_ids=["KR4"])) == {"KR4"}
    assert [c.value for c in store.checkins("KR3")] == [4, None, 2]
    assert store.checkins("KR3", limit=1)[0].author is None


def test_add_checkin_given_nothing_or_bad_confidence_refuses(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        store.add_checkin("KR3")
    with pytest.raises(InvalidRecordError):
        store.add_checkin("KR3", confidence="great")  # type: ignore[arg-type]

    assert store.checkins("KR3") == []


def test_first_published_at_given_drafts_and_published_returns_the_oldest_published_as_of(
    store: Store,
) -> None:
    assert store.first_published_at() is None
    store.save_snapshot(cycle="2026-Q4", as_of=T0 - timedelta(days=2), document=scorecard(0.1),
                        published=False)
    first = store.save_snapshot(cycle="2026-Q4", as_of=T0 - timedelta(days=1),
                                document=scorecard(0.2))
    store.save_snapshot(cycle="2026-Q4", as_of=T0, document=scorecard(0.3))
    assert store.first_published_at() == T0 - timedelta(days=1)
    previous = store.snapshot_before(first + 1)
    assert previous is not None and previous.id == first
    assert store.snapshot_before(first - 1) is None


def test_latest_checkins_given_until_leaves_out_later_checkins(store: Store) -> None:
    store.add_checkin("KR3", value=2, at=T0)
    store.add_checkin("KR3", value=5, confidence="blocked", at=T0 + timedelta(hours=1))
    seen = store.latest_checkins(until=T0 + timedelta(minutes=30))
    assert (seen["KR3"].value, seen["KR3"].confidence) == (2, None)


def test_snapshot_marks_given_drafts_after_the_published_names_both_in_one_read(
    store: Store,
) -> None:
    assert store.snapshot_marks() == (None, None)
    run_id = store.start_run("run")
    first = store.save_snapshot(cycle="2026-Q4", as_of=T0, document=scorecard(0.4),
                                run_id=run_id, created_at=T0)
    latest, published = store.snapshot_marks()
    assert latest == published
    assert latest is not None and (latest.id, latest.run_id, latest.created_at, latest.cycle,
                                   latest.published) == (first, run_id, T0, "2026-Q4", True)
    later = T0 + timedelta(minutes=5)
    draft = store.save_snapshot(cycle="2026-Q4", as_of=later, document=scorecard(0.5),
                                published=False, created_at=later)
    latest, published = store.snapshot_marks()
    assert latest is not None and (latest.id, latest.published, latest.created_at) == (
        draft, False, later)
    assert published is not None and published.id == first

    store.mark_published(draft)

    latest, published = store.snapshot_marks()
    assert latest is not None and published == latest and latest.id == draft
