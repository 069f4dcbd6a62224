"""``serve --plans`` refusals at the command line, and the per-plan store that ``checkin``
and ``status`` use for a plan of the ``OKR_SYNC_PLANS`` folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

runner = CliRunner()


@pytest.fixture
def plans_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "plans"
    folder.mkdir()
    shutil.copyfile(DEMO_PLAN, folder / "sales.yaml")
    return {"OKR_SYNC_PLANS": str(folder),
            "OKR_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"}


def _usage(env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr


def test_serve_given_plan_and_plans_exits_2(plans_env: dict[str, str]) -> None:
    err = _usage(plans_env, "serve", "--plan", str(DEMO_PLAN), "--plans",
                 plans_env["OKR_SYNC_PLANS"], "--port", "0")
    assert "either --plan FILE or --plans DIR" in err


def test_serve_given_a_plans_folder_that_is_not_one_exits_2(
    plans_env: dict[str, str], tmp_path: Path,
) -> None:
    err = _usage(plans_env, "serve", "--plans", str(tmp_path / "nowhere"), "--port", "0")
    assert f"{tmp_path / 'nowhere'}: not a folder" in err
    err = _usage(plans_env | {"OKR_SYNC_PLANS": str(tmp_path / "none")}, "serve", "--port", "0")
    assert "not a folder" in err


def test_serve_given_plans_and_an_in_memory_store_exits_2(plans_env: dict[str, str]) -> None:
    err = _usage(plans_env | {"OKR_SYNC_DATABASE_URL": "sqlite://"}, "serve", "--port", "0")
    assert "in-memory" in err


def test_checkin_and_status_given_a_plan_of_the_plans_folder_use_its_own_store(
    plans_env: dict[str, str], tmp_path: Path,
) -> None:
    plan = str(Path(plans_env["OKR_SYNC_PLANS"]) / "sales.yaml")
    result = runner.invoke(app, ["checkin", "CO-1.KR3", "--value", "4", "--plan", plan],
                           env=plans_env)
    assert result.exit_code == 0, result.stderr
    with Store(f"sqlite:///{tmp_path / 'state.sales.db'}") as store:
        assert [c.value for c in store.checkins("CO-1.KR3")] == [4.0]
    with Store(plans_env["OKR_SYNC_DATABASE_URL"]) as store:
        assert store.checkins("CO-1.KR3") == []
    status = runner.invoke(app, ["status", "--plan", plan, "--output", "json"], env=plans_env)
    assert status.exit_code == 0, status.stderr


def test_db_upgrade_given_plans_folder_migrates_every_plans_store(
    plans_env: dict[str, str], tmp_path: Path,
) -> None:
    shutil.copyfile(DEMO_PLAN, Path(plans_env["OKR_SYNC_PLANS"]) / "Ops-Team.yml")
    result = runner.invoke(app, ["db", "upgrade"], env=plans_env)
    assert result.exit_code == 0, result.stderr
    assert "state store of plan ops_team is up to date" in result.stdout
    assert "state store of plan sales is up to date" in result.stdout
    for name in ("state.sales.db", "state.ops_team.db"):
        assert (tmp_path / name).exists()


def test_report_given_a_plan_of_the_plans_folder_reads_its_own_store(
    plans_env: dict[str, str], tmp_path: Path,
) -> None:
    plan = str(Path(plans_env["OKR_SYNC_PLANS"]) / "sales.yaml")
    # The configured store has no scorecard, and neither has the plan's yet: both say so.
    result = runner.invoke(app, ["report", "--output", str(tmp_path / "r.html"), "--plan", plan],
                           env=plans_env)
    assert result.exit_code == 2
    assert (tmp_path / "state.sales.db").exists()
