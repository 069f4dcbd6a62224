"""Every command run with distinctive secrets: none appears in stdout, stderr, logs, the
database (SQLite bytes, PostgreSQL rows and ``pg_dump``), the HTML report, error text or
``repr(settings)`` - on success and on the failures most likely to echo a credential."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from okr_sync.cli.main import app
from okr_sync.config.settings import Settings
from support.secret_world import (
    DB_PASSWORD,
    JIRA_TOKEN,
    MARK,
    SLACK_TOKEN,
    SecretWorld,
    all_leaks,
    cli_plan,
    database_dump,
    leaks,
    secret_world,
)

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[SecretWorld]:
    with secret_world(tmp_path, database_url) as sandboxes:
        yield SecretWorld(sandboxes, cli_plan(tmp_path))


def _invoke(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def _outputs(results: dict[str, Result]) -> list[tuple[str, str]]:
    found = []
    for name, result in results.items():
        found += [(f"{name} stdout", result.stdout), (f"{name} stderr", result.stderr)]
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            found.append((f"{name} exception", repr(result.exception)))
    return found


def test_commands_given_distinctive_secrets_never_show_them_anywhere(
    world: SecretWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = world.environment()
    report = tmp_path / "report.html"
    commands = {
        "db upgrade": ["db", "upgrade"],
        "validate": ["validate"],
        "doctor": ["doctor"],
        "doctor json": ["doctor", "--output", "json"],
        "run": ["run", "--output", "json"],
        "checkin": ["checkin", "CO-1.KR3", "--value", "5", "--note", "signed two more"],
        "run again": ["run"],
        "dry run": ["run", "--dry-run"],
        "status": ["status"],
        "status json": ["status", "--output", "json"],
        "explain": ["explain", "CO-1.KR1"],
        "report": ["report", "--output", str(report)],
    }
    results = {name: _invoke(env, *args) for name, args in commands.items()}
    codes = {name: result.exit_code for name, result in results.items()}
    # doctor's one failure: MSAL will not take the sandbox's plain-http login as an
    # authority (the in-process serve test acquires Teams tokens with the secret).
    expected = dict.fromkeys(commands, 0) | {"doctor": 1, "doctor json": 1}
    assert codes == expected, {n: r.output for n, r in results.items() if r.exit_code}
    assert [line.split(":")[0] for line in results["doctor"].stdout.splitlines()
            if line.startswith("FAIL")] == ["FAIL teams bot"]
    # The secrets were really used: the sandboxes took them, and things were posted.
    assert world.world.slack.messages("C0DEMO0001")
    assert world.world.teams.workflow_posts("demo")
    settings = Settings(_env_file=None, **{  # type: ignore[arg-type]
        k.removeprefix("OKR_SYNC_").lower(): v for k, v in env.items()
        if k.startswith("OKR_SYNC_") and not k.startswith("OKR_SYNC_DEMO_")})
    artefacts = [
        *_outputs(results),
        ("logs", caplog.text),
        ("log records", repr([r.__dict__ for r in caplog.records])),
        ("report", report.read_bytes()),
        ("database", database_dump(world.world.database_url)),
        ("repr(settings)", repr(settings)),
        ("str(settings)", str(settings)),
        ("settings json", settings.model_dump_json()),
    ]
    assert all_leaks(artefacts) == []


def test_commands_given_rejected_credentials_fail_without_echoing_them(
    world: SecretWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = world.environment()
    results = {
        "jira rejected": _invoke({**env, "OKR_SYNC_JIRA_API_TOKEN": f"{JIRA_TOKEN}-revoked"},
                                 "run"),
        "slack rejected": _invoke({**env, "OKR_SYNC_SLACK_BOT_TOKEN": f"{SLACK_TOKEN}-revoked"},
                                  "run"),
        "doctor rejected": _invoke({**env, "OKR_SYNC_JIRA_API_TOKEN": f"{JIRA_TOKEN}-revoked",
                                    "OKR_SYNC_SLACK_BOT_TOKEN": f"{SLACK_TOKEN}-revoked"},
                                   "doctor"),
    }
    assert {name: r.exit_code for name, r in results.items()} == dict.fromkeys(results, 1)
    assert "Jira" in results["jira rejected"].stderr  # the failure is named...
    assert all_leaks([*_outputs(results), ("logs", caplog.text)]) == []  # ...not its secret


@pytest.mark.parametrize("command", [["run"], ["status"], ["db", "upgrade"], ["doctor"]])
def test_commands_given_unreachable_database_url_with_password_never_echo_it(
    command: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"OKR_SYNC_DATABASE_URL": f"postgresql+psycopg://okr:{DB_PASSWORD}@127.0.0.1:1/okr",
           "OKR_SYNC_PLAN": str(cli_plan(tmp_path)),
           "OKR_SYNC_JIRA_URL": "http://127.0.0.1:9", "OKR_SYNC_JIRA_EMAIL": "a@example.com",
           "OKR_SYNC_JIRA_API_TOKEN": JIRA_TOKEN, "OKR_SYNC_SLACK_BOT_TOKEN": SLACK_TOKEN,
           "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL": "https://example.invalid/flow"}
    result = _invoke(env, *command)
    assert result.exit_code in (1, 2), result.output
    assert "127.0.0.1" in result.stdout + result.stderr  # it says which database...
    assert MARK not in result.stdout + result.stderr  # ...without its password
    assert leaks("logs", caplog.text) == []
    assert leaks("exception", repr(result.exception)) == []


def test_settings_given_secrets_in_a_dotenv_file_never_show_them(tmp_path: Path,
                                                                  world: SecretWorld) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in world.environment().items()
                              if k.startswith("OKR_SYNC_") and "DEMO" not in k))
    settings = Settings(_env_file=dotenv)
    assert settings.jira_api_token is not None
    assert settings.jira_api_token.get_secret_value() == JIRA_TOKEN
    shown = [repr(settings), str(settings), settings.model_dump_json(), f"{settings!r}"]
    assert all_leaks(("settings", text) for text in shown) == []
