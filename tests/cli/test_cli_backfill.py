"""`okr-sync backfill` against the sandboxes: history rebuilt and seen by `explain`, clear
errors for unknown KRs and dates outside the cycle, nothing posted."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import SandboxWorld

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
