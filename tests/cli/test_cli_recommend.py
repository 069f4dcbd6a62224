"""`okr-sync recommend --cycle NEXT.yaml` end to end (issue 13 item 3): a cycle of daily
passes against the sandboxes, then next cycle's targets from its throughput, written as
a plan draft with comments; NEXT.yaml and the live plan never change."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.forecast import DailyPoint
from okr_sync.scoring.recommend import NoRecommendation, Recommendation, recommend_target
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import SandboxWorld
from okr_sync.sync.store.store import Store

runner = CliRunner()
Q3_START = datetime(2026, 9, 20, 9, 0, tzinfo=UTC)


def _q3_plan(env: dict[str, str], tmp_path: Path) -> Path:
    text = Path(env["OKR_SYNC_PLAN"]).read_text().replace(
        'cycle: {name: "2026-Q4", start: 2026-10-01, end: 2026-12-31, timezone: UTC}',
        'cycle: {name: "2026-Q3", start: 2026-07-01, end: 2026-09-30, timezone: UTC}')
    assert "2026-Q3" in text
    path = tmp_path / "q3.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def q3_history(world: SandboxWorld, env: dict[str, str], tmp_path: Path) -> SandboxWorld:
    """Six daily passes at the end of 2026-Q3, with work done between them."""
    runtime = world.runtime(load_plan(_q3_plan(env, tmp_path)))
    rng = random.Random(9)
    try:
        for day in range(6):
            with time_machine.travel(Q3_START + timedelta(days=day), tick=False):
                world.dataset.advance(timedelta(hours=20))
                open_items = [i for i in sorted(world.dataset.issues.values(),
                                                key=lambda i: i.id)
                              if i.status_category != "done" and not i.is_subtask]
                for issue in rng.sample(open_items, min(15, len(open_items))):
                    world.dataset.transition(issue.id, "done")
                assert runtime.run_locked(PassOptions()).exit_code == 0
    finally:
        runtime.close()
    return world


def _next(env: dict[str, str], tmp_path: Path) -> Path:
    path = tmp_path / "NEXT.yaml"
    path.write_text("# next quarter, under review\n" + Path(env["OKR_SYNC_PLAN"]).read_text())
    return path


def test_recommend_given_last_cycles_history_writes_a_commented_draft(
        q3_history: SandboxWorld, env: dict[str, str], tmp_path: Path) -> None:
    nxt = _next(env, tmp_path)
    before, live_before = nxt.read_bytes(), Path(env["OKR_SYNC_PLAN"]).read_bytes()

    result = runner.invoke(app, ["recommend", "--cycle", str(nxt)], env=env)

    assert result.exit_code == 0, result.output
    draft = tmp_path / "NEXT.recommended.yaml"
    assert nxt.read_bytes() == before and Path(env["OKR_SYNC_PLAN"]).read_bytes() == live_before
    text = draft.read_text()
    assert text.startswith("# Draft by `okr-sync recommend`")
    assert "# next quarter, under review" in text  # NEXT.yaml's own comments stay
    plan = load_plan(draft)
    krs = {kr.id: kr for _, kr in plan.key_results()}
    with Store(q3_history.database_url) as store:
        bugs = [h.value for h in store.get_history("SUP-1.KR1", cycle="2026-Q3")]
        points = [h.value for h in store.get_history("SUP-1.KR2", cycle="2026-Q3")]
    # Open bugs fell during Q3: the decreasing KR gets a lower target than its baseline.
    assert bugs[-1] is not None and bugs[0] is not None and bugs[-1] < bugs[0]
    bug_target = krs["SUP-1.KR1"].effective_target
    assert bug_target is not None and bug_target < 60
    # Story points done grew: the target starts where Q3 ended (a baseline written in).
    assert krs["SUP-1.KR2"].baseline == pytest.approx(round(points[-1] or 0, 2))
    assert (krs["SUP-1.KR2"].effective_target or 0) > (krs["SUP-1.KR2"].baseline or 0)
    assert "recommend: stretch, reached in 30% of runs; safe" in text
    assert "drawing the daily changes of 2026-Q3" in text
    line = next(x for x in text.splitlines() if "id: CO-1.KR1" in x)
    assert "# recommend: not proposed, its target is a share of its scope" in line
    assert krs["CO-1.KR1"].effective_target == 1
    assert "draft written to" in result.stdout


def test_recommend_given_no_history_exits_2_and_writes_nothing(
        env: dict[str, str], tmp_path: Path) -> None:
    nxt = _next(env, tmp_path)
    result = runner.invoke(app, ["recommend", "--cycle", str(nxt)], env=env)

    assert result.exit_code == 2
    assert "no score history of earlier cycles" in result.stderr
    assert not (tmp_path / "NEXT.recommended.yaml").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--kr", "NOPE.KR1"], "unknown key result 'NOPE.KR1'"),
    (["--kr", "CO-1.KR3"], "no Jira-measured key result"),
])
def test_recommend_given_bad_kr_exits_2(env: dict[str, str], tmp_path: Path,
                                        extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["recommend", "--cycle", str(_next(env, tmp_path)), *extra],
                           env=env)

    assert result.exit_code == 2 and message in result.stderr


def test_recommend_given_output_is_the_plan_refuses(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    nxt = _next(env, tmp_path)
    before = nxt.read_bytes()
    result = runner.invoke(app, ["recommend", "--cycle", str(nxt), "--output", str(nxt)],
                           env=env)

    assert result.exit_code == 2 and "never changes it" in result.stderr
    assert nxt.read_bytes() == before


def _series(*values: float) -> list[DailyPoint]:
    start = datetime(2026, 7, 1).date()
    return [DailyPoint(start + timedelta(days=i), v) for i, v in enumerate(values)]


def test_recommend_target_given_steady_throughput_is_start_plus_days_times_rate() -> None:
    result = recommend_target("K", "increase", 10, [("Q3", _series(0, 2, 4, 6))], 30, 200,
                              "Q4", [0.8])

    assert isinstance(result, Recommendation)
    assert (result.stretch, result.safe) == (70, 70)  # 10 + 30 x 2
    assert not result.too_easy


def test_recommend_target_given_coin_flip_days_splits_stretch_and_safe() -> None:
    # One day drawn from {0, +1}: half the runs end at 5, half at 6. Stretch (reached by
    # 30 %) is 6, safe (reached by 70 %) is 5; for a decreasing KR the other way round.
    up = recommend_target("K", "increase", 5, [("Q3", _series(0, 0, 1))], 1, 1000, "Q4", [])
    down = recommend_target("K", "decrease", 5, [("Q3", _series(0, 0, -1))], 1, 1000, "Q4",
                            [])

    assert isinstance(up, Recommendation) and (up.stretch, up.safe) == (6, 5)
    assert isinstance(down, Recommendation) and (down.stretch, down.safe) == (4, 5)


def test_recommend_target_given_two_perfect_cycles_flags_too_easy() -> None:
    result = recommend_target("K", "increase", 0, [("Q2", _series(0, 1)), ("Q3", _series(1, 2))],
                              10, 100, "Q4", [1.0, 1.0])

    assert isinstance(result, Recommendation) and result.too_easy
    # Deltas never span two cycles: Q2's last day to Q3's first is no observed change.
    assert result.observed_days == 2


def test_recommend_target_given_one_observed_day_declines() -> None:
    result = recommend_target("K", "increase", 0, [("Q3", _series(0, 1))], 10, 100, "Q4", [])

    assert isinstance(result, NoRecommendation) and "needs 2" in result.reason


def test_recommend_given_draft_inside_the_plans_folder_refuses(
        env: dict[str, str], tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    nxt = plans / "NEXT.yaml"
    nxt.write_text(Path(env["OKR_SYNC_PLAN"]).read_text())
    result = runner.invoke(app, ["recommend", "--cycle", str(nxt)],
                           env={**env, "OKR_SYNC_PLANS": str(plans)})

    assert result.exit_code == 2 and "inside the plans folder" in result.stderr
    assert sorted(p.name for p in plans.iterdir()) == ["NEXT.yaml"]


def test_recommend_given_output_is_an_existing_non_draft_refuses(
        env: dict[str, str], tmp_path: Path) -> None:
    nxt = _next(env, tmp_path)
    other = tmp_path / "team-b.yaml"
    other.write_text("# team b's plan\n")
    result = runner.invoke(app, ["recommend", "--cycle", str(nxt), "--output", str(other)],
                           env=env)

    assert result.exit_code == 2 and "not a draft" in result.stderr
    assert other.read_text() == "# team b's plan\n"


def test_recommend_given_an_earlier_draft_overwrites_it(
        q3_history: SandboxWorld, env: dict[str, str], tmp_path: Path) -> None:
    nxt = _next(env, tmp_path)
    draft = tmp_path / "NEXT.recommended.yaml"
    draft.write_text("# Draft by `okr-sync recommend` at 2026-01-01T00:00:00+00:00: old\n")
    result = runner.invoke(app, ["recommend", "--cycle", str(nxt)], env=env)

    assert result.exit_code == 0, result.stderr
    assert "recommend: stretch" in draft.read_text()
