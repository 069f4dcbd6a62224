"""When things go wrong on the command line: one clear message on stderr, exit 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app, main
from okr_sync.sync.sandbox_world import DEMO_CHANNEL
from support.paths import DEMO_PLAN

runner = CliRunner()

_SECRET_URL = "postgresql+psycopg://u:SECRETPW@127.0.0.1:1/x"
_STORE_COMMANDS = [
    ["run"], ["status"], ["explain", "CO-1.KR1"], ["checkin", "CO-1.KR3", "--value", "5"],
    ["report", "--output", "card.html"], ["db", "upgrade"],
]


@pytest.fixture
def plain_env(tmp_path: Path) -> dict[str, str]:
    """The demo plan and a SQLite store in a temporary folder; no Jira, Slack or Teams."""
    return {"OKR_SYNC_PLAN": str(DEMO_PLAN),
            "OKR_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"}


def _stored_checkins(env: dict[str, str]) -> list[float | None]:
    from okr_sync.sync.store.store import Store

    with Store(env["OKR_SYNC_DATABASE_URL"]) as store:
        return [c.value for c in store.checkins("CO-1.KR3", limit=5)]


def _invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def _assert_usage(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize("args", _STORE_COMMANDS, ids=lambda a: " ".join(a))
@pytest.mark.parametrize(
    ("url", "problem"),
    [("not a url at all", "is not a database URL"),
     ("mysql://u:SECRETPW@127.0.0.1/x", "unsupported database 'mysql'"),
     (_SECRET_URL, "Connection refused"),
     ("sqlite:////no/such/dir/state.db", "/no/such/dir does not exist")],
    ids=["unparsable", "mysql", "unreachable", "missing-folder"],
)
def test_store_commands_given_bad_database_url_exit_2_naming_the_setting_without_password(
    plain_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    args: list[str], url: str, problem: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {**plain_env, "OKR_SYNC_DATABASE_URL": url}
    if args == ["run"]:
        # Jira settings are checked before the store: give them so the store is reached.
        env |= {"OKR_SYNC_JIRA_URL": "http://127.0.0.1:9", "OKR_SYNC_JIRA_PAT": "pat-123456",
                "OKR_SYNC_SLACK_BOT_TOKEN": "xoxb-1", "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL":
                "http://127.0.0.1:9/wf", "OKR_SYNC_TEAMS_APP_ID": "a",
                "OKR_SYNC_TEAMS_APP_SECRET": "s", "OKR_SYNC_TEAMS_TENANT_ID": "t"}
    result = _invoke(env, *args)
    _assert_usage(result, "OKR_SYNC_DATABASE_URL", problem)
    assert "SECRETPW" not in result.stderr + result.stdout


def test_main_given_unknown_log_level_exits_2_naming_the_valid_levels(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OKR_SYNC_LOG_LEVEL", "verbose")
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--plan", str(DEMO_PLAN)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "OKR_SYNC_LOG_LEVEL 'verbose'" in err
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in err


def test_serve_given_unknown_log_level_exits_2(plain_env: dict[str, str]) -> None:
    result = _invoke({**plain_env, "OKR_SYNC_LOG_LEVEL": "loud"}, "serve", "--port", "0")
    _assert_usage(result, "OKR_SYNC_LOG_LEVEL 'loud'")


def test_report_given_missing_folder_exits_2_naming_the_path(plain_env: dict[str, str]) -> None:
    _assert_usage(_invoke(plain_env, "report", "--output", "/no/such/dir/r.html"),
                  "/no/such/dir/r.html", "does not exist")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_report_given_unwritable_folder_exits_2_naming_the_path(
    plain_env: dict[str, str], tmp_path: Path,
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _assert_usage(_invoke(plain_env, "report", "--output", str(locked / "r.html")),
                  str(locked / "r.html"), "permission denied")


def test_report_given_a_folder_as_output_exits_2_naming_the_path(
    plain_env: dict[str, str], tmp_path: Path,
) -> None:
    _assert_usage(_invoke(plain_env, "report", "--output", str(tmp_path)), str(tmp_path))


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "99999"], "65535"), (["--port", "-1"], "0"),
     (["--interval", "5"], "give a unit: 5s, 5m, 1h"),
     (["--interval", "99999999d"], "7d"), (["--interval", f"{10**12}s"], "7d")],
)
def test_serve_given_bad_port_or_interval_exits_2(
    plain_env: dict[str, str], args: list[str], message: str,
) -> None:
    result = _invoke(plain_env, "serve", *args)
    assert result.exit_code == 2
    assert message in result.stderr + result.stdout


def test_serve_given_busy_port_exits_2_naming_the_port(world, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("".join(line for line in DEMO_PLAN.read_text().splitlines(keepends=True)
                            if "teams_bot:" not in line))
    env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(plan)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", "from okr_sync.cli.main import main; main()", "serve",
             "--port", str(port), "--host", "127.0.0.1"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"port {port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300"])
def test_checkin_given_non_finite_value_exits_2_and_stores_nothing(
    plain_env: dict[str, str], value: str,
) -> None:
    _assert_usage(_invoke(plain_env, "checkin", "CO-1.KR3", "--value", value),
                  "--value must be a finite number")
    assert _stored_checkins(plain_env) == []


@pytest.mark.parametrize(("value", "warning"),
                         [("-4", "is negative"), ("25", "far outside baseline 0 .. target 10")])
def test_checkin_given_implausible_value_warns_and_stores_it(
    plain_env: dict[str, str], value: str, warning: str,
) -> None:
    result = _invoke(plain_env, "checkin", "CO-1.KR3", "--value", value)
    assert result.exit_code == 0
    assert warning in result.stderr and "checked in CO-1.KR3" in result.stdout
    assert _stored_checkins(plain_env) == [float(value)]


def test_checkin_given_value_within_range_does_not_warn(plain_env: dict[str, str]) -> None:
    result = _invoke(plain_env, "checkin", "CO-1.KR3", "--value", "12")
    assert result.exit_code == 0 and "warning" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["explain", "CO-1.KR9"], "did you mean CO-1.KR"),
     (["checkin", "co-1.kr3", "--note", "x"], "did you mean CO-1.KR3"),
     (["explain", "NOPE"], "valid ids: CO-1, CO-1.KR1, CO-1.KR2"),
     (["resync", "--kr", "NOPE"], "valid ids: CO-1.KR1"),
     (["resync", "--objective", "CO1"], "did you mean CO-1"),
     (["resync", "--objective", "NOPE"], "valid ids: CO-1, OPS-1, SUP-1")],
)
def test_commands_given_unknown_id_suggest_or_list_valid_ids(
    plain_env: dict[str, str], args: list[str], message: str,
) -> None:
    _assert_usage(_invoke(plain_env, *args), message)


_HOSTILE = "Evil \x1b[31m[bold]x[/bold] :100: \x1b]8;;http://x.example\x1b\\link\x1b]8;;\x1b\\"


def test_run_status_explain_given_escape_codes_and_markup_in_titles_print_them_inert(
    env: dict[str, str], world,
) -> None:
    plan = Path(env["OKR_SYNC_PLAN"])
    hostile_yaml = _HOSTILE.replace("\x1b", "\\e").replace("\\e\\", "\\e\\\\")
    plan.write_text(plan.read_text().replace(
        "title: Win the enterprise segment", f'title: "{hostile_yaml}"'))
    on_call = next(i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                   if i.project == "OPS" and "on-call" in i.labels and not i.is_subtask)
    world.dataset.update(on_call.id, summary=_HOSTILE)
    outputs = [_invoke(env, "run"), _invoke(env, "status"), _invoke(env, "explain", "OPS-1.KR2")]
    for result in outputs:
        assert result.exit_code == 0, result.stderr
        assert "\x1b" not in result.stdout
        assert "[bold]x[/bold] :100: " in result.stdout
        assert "💯" not in result.stdout
    assert "[bold]x[/bold]" in outputs[0].stdout and on_call.key in outputs[2].stdout


def test_fail_usage_given_plan_position_prints_it_without_emoji(
    plain_env: dict[str, str], tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\n" + "\n" * 98 + "bogus: [1]\n")
    result = _invoke(plain_env, "validate", "--plan", str(plan))
    assert result.exit_code == 2
    assert f"{plan}:100:1:" in result.stderr and "💯" not in result.stderr


@pytest.mark.parametrize("args", [["validate"], ["status"], ["db", "upgrade"]])
def test_commands_given_misspelt_setting_exit_2_with_did_you_mean(
    plain_env: dict[str, str], args: list[str],
) -> None:
    result = _invoke({**plain_env, "OKR_SYNC_DATABSE_URL": "sqlite:///x.db"}, *args)
    _assert_usage(result, "OKR_SYNC_DATABSE_URL: did you mean OKR_SYNC_DATABASE_URL?")


def test_commands_given_misspelt_setting_in_dotenv_exit_2(
    plain_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OKR_SYNC_SLAK_BOT_TOKEN=xoxb-1\n")
    _assert_usage(_invoke(plain_env, "validate"), "did you mean OKR_SYNC_SLACK_BOT_TOKEN?")


def test_validate_given_plan_naming_a_prefixed_url_env_accepts_that_variable(
    plain_env: dict[str, str], tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(DEMO_PLAN.read_text().replace(
        "url_env: OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL", "url_env: OKR_SYNC_WF_CUSTOM"))
    env = {**plain_env, "OKR_SYNC_PLAN": str(plan), "OKR_SYNC_WF_CUSTOM": "https://x.test/wf",
           "OKR_SYNC_JIRA__STAGING__URL": "https://staging.test"}
    assert _invoke(env, "validate").exit_code == 0
    assert _invoke(env, "status").exit_code == 0


def test_commands_given_snapshot_from_a_newer_version_exit_2_and_post_nothing(
    world, env: dict[str, str],
) -> None:
    import sqlalchemy as sa

    from okr_sync.sync.store.tables import snapshots

    assert _invoke(env, "run").exit_code == 0
    posted = len(world.slack.messages(DEMO_CHANNEL))
    engine = sa.create_engine(env["OKR_SYNC_DATABASE_URL"])
    with engine.begin() as conn:  # as a newer okr-sync would have written it
        for row in conn.execute(sa.select(snapshots.c.id, snapshots.c.document)).all():
            conn.execute(sa.update(snapshots).where(snapshots.c.id == row.id)
                         .values(document={**row.document, "version": 99}))
    engine.dispose()

    for args in (["run"], ["status"], ["explain", "CO-1.KR1"], ["report", "--output", "r.html"]):
        _assert_usage(_invoke(env, *args), "cannot be read", "snapshot version 99")
    assert len(world.slack.messages(DEMO_CHANNEL)) == posted
