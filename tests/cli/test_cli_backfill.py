"""`okr-sync backfill` against the sandboxes: history rebuilt and seen by `explain`, clear
errors for unknown KRs and dates outside the cycle, nothing posted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import SandboxWorld
from okr_sync.sync.store.records import HistoryEntry
from okr_sync.sync.store.store import Store
from support.html import local, parse_strict

runner = CliRunner()


def _invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_backfill_given_mirror_fills_history_that_explain_shows_and_posts_nothing(
    env: dict[str, str], world: SandboxWorld
) -> None:
    assert _invoke(env, "run").exit_code == 0
    posted = len(world.slack.messages("C0DEMO0001"))

    result = _invoke(env, "backfill", "--kr", "CO-1.KR1", "--from", "2026-11-01",
                     "--output", "json")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    days = doc["key_results"]["CO-1.KR1"]
    assert doc["days"][0] == "2026-11-01" and len(days) == len(doc["days"]) > 20
    assert doc["rows"] == len(days) and doc["posted"] is False
    assert doc["read_with"] == ["bulk"]
    explained = json.loads(_invoke(env, "explain", "CO-1.KR1", "--output", "json").stdout)
    assert any(h["backfilled"] for h in explained["history"])
    assert not explained["history"][-1]["backfilled"]  # today's live row wins
    assert len(world.slack.messages("C0DEMO0001")) == posted
    again = json.loads(_invoke(env, "backfill", "--kr", "CO-1.KR1", "--from", "2026-11-01",
                               "--output", "json").stdout)
    assert again["rows"] == doc["rows"]  # re-running replaces, never duplicates


def test_backfill_given_unknown_kr_says_did_you_mean_and_exits_2(env: dict[str, str]) -> None:
    result = _invoke(env, "backfill", "--kr", "CO-1.KR11")
    assert result.exit_code == 2
    assert "did you mean CO-1.KR1" in result.stderr


def test_backfill_given_manual_kr_or_date_outside_cycle_exits_2(env: dict[str, str]) -> None:
    manual = _invoke(env, "backfill", "--kr", "CO-1.KR3")
    assert manual.exit_code == 2 and "manual" in manual.stderr
    outside = _invoke(env, "backfill", "--from", "2026-09-30")
    assert outside.exit_code == 2 and "outside the cycle 2026-Q4" in outside.stderr
    garbage = _invoke(env, "backfill", "--from", "yesterday")
    assert garbage.exit_code == 2 and "YYYY-MM-DD" in garbage.stderr


def test_backfill_given_no_pass_yet_refuses_rather_than_rebuild_an_empty_mirror(
    env: dict[str, str], world: SandboxWorld
) -> None:
    result = _invoke(env, "backfill")
    assert result.exit_code == 2
    assert "run `okr-sync run` first" in result.stderr
    assert not [r for r in world.jira.log.records if "changelog" in r.path]


def test_report_given_backfill_draws_burn_up_from_the_backfilled_days(
    env: dict[str, str], world: SandboxWorld, tmp_path: Path
) -> None:
    assert _invoke(env, "run").exit_code == 0
    doc = json.loads(_invoke(env, "backfill", "--kr", "CO-1.KR1", "--from", "2026-11-01",
                             "--output", "json").stdout)
    days = len(doc["key_results"]["CO-1.KR1"])

    exported = tmp_path / "report.json"
    html = tmp_path / "report.html"
    assert _invoke(env, "report", "--format", "json", "--output", str(exported)).exit_code == 0
    assert _invoke(env, "report", "--output", str(html)).exit_code == 0

    history = json.loads(exported.read_text())["history"]["CO-1.KR1"]
    # Every backfilled day (one may be today's live row's day) and the live row.
    assert days <= len(history) <= days + 1 and days > 20
    assert history[0]["as_of"].startswith("2026-11-01")
    root = parse_strict(html.read_text())
    section = next(s for s in root.iter("section") if s.get("data-kr") == "CO-1.KR1")
    line = next(e for e in section.iter() if local(e) == "polyline")
    assert len(line.get("points", "").split()) == len(history)


def test_run_given_backfilled_past_cycles_at_full_score_flags_too_easy(
    env: dict[str, str], world: SandboxWorld, tmp_path: Path
) -> None:
    # Two earlier cycles known only from backfilled rows (as `backfill` writes them,
    # run with those cycles' plans), both ending at 1.0.
    with Store(world.database_url) as store:
        for cycle, end in (("2026-Q2", datetime(2026, 6, 30, 21, 59, 59, tzinfo=UTC)),
                           ("2026-Q3", datetime(2026, 9, 30, 21, 59, 59, tzinfo=UTC))):
            store.replace_backfilled(
                cycle=cycle, kr_ids=["CO-1.KR1"], since=end - timedelta(days=2),
                days=[(end - timedelta(days=1), [HistoryEntry("CO-1.KR1", 0.9, 0.9, "high",
                                                               "on_track")]),
                      (end, [HistoryEntry("CO-1.KR1", 1.0, 1.0, "high", "on_track")])])

    assert _invoke(env, "run").exit_code == 0
    status = json.loads(_invoke(env, "status", "--output", "json").stdout)["scorecard"]
    krs = {kr["id"]: kr for o in status["objectives"] for kr in o["key_results"]}
    assert krs["CO-1.KR1"].get("too_easy") is True
    assert not krs["CO-1.KR2"].get("too_easy")
    html = tmp_path / "report.html"
    assert _invoke(env, "report", "--output", str(html)).exit_code == 0
    assert "too easy: scored 100% two cycles running" in html.read_text()
