"""A named Jira source's secrets (``OKR_SYNC_JIRA__LEGACY__PAT``, its webhook secret) are
never shown: not in any command's output, the logs, the database or ``repr(settings)`` -
neither when the source works nor when it refuses the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from okr_sync.cli.main import app
from okr_sync.config.settings import Settings
from support.secret_world import JIRA_PAT, MARK, WEBHOOK_SECRET, all_leaks, database_dump
from support.two_sources import LEGACY_KRS, TwoSources, two_sources

runner = CliRunner()
WRONG_PAT = f"jira-pat-{MARK}-wrong"


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[TwoSources]:
    with two_sources(tmp_path, dc_pat=JIRA_PAT, database_url=database_url) as w:
        yield w


def _environment(world: TwoSources, pat: str) -> dict[str, str]:
    return {**world.environment(), "OKR_SYNC_JIRA__LEGACY__PAT": pat,
            "OKR_SYNC_JIRA__LEGACY__WEBHOOK_SECRET": WEBHOOK_SECRET,
            "OKR_SYNC_LOG_LEVEL": "DEBUG"}


def _outputs(name: str, result: Result) -> list[tuple[str, str]]:
    found = [(f"{name} stdout", result.stdout), (f"{name} stderr", result.stderr)]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        found.append((f"{name} exception", repr(result.exception)))
    return found


@pytest.mark.parametrize("pat", [JIRA_PAT, WRONG_PAT], ids=["accepted", "refused"])
def test_commands_given_a_named_source_secret_never_show_it(
    world: TwoSources, pat: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    env = _environment(world, pat)
    commands = {
        "validate": ["validate"], "run": ["run", "--output", "json"], "status": ["status"],
        "explain": ["explain", LEGACY_KRS[0]], "doctor": ["doctor", "--output", "json"],
    }
    outputs: list[tuple[str, str]] = []
    codes = {}
    for name, args in commands.items():
        result = runner.invoke(app, args, env=env)
        codes[name] = result.exit_code
        outputs += _outputs(name, result)

    assert codes["validate"] == 0 and codes["run"] == (0 if pat == JIRA_PAT else 1)
    assert all_leaks(outputs) == []
    assert all_leaks([("logs", caplog.text)]) == []
    assert all_leaks([("database", database_dump(world.database_url))]) == []


def test_settings_given_a_named_source_secret_never_show_it(
    world: TwoSources, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _environment(world, JIRA_PAT).items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    legacy = settings.jira_source("legacy")
    assert legacy is not None and legacy.pat is not None
    assert legacy.pat.get_secret_value() == JIRA_PAT
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(legacy),
             str(settings.jira)]
    assert all_leaks(("settings", text) for text in shown) == []
