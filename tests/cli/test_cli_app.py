"""The composed app: every command of DESIGN.md A5 that exists is registered, and --version."""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import okr_sync
from okr_sync.cli import app as cli_app
from okr_sync.cli.main import app
from support.paths import REPO

runner = CliRunner()


def test_build_app_given_composition_registers_every_command_in_help_order() -> None:
    group = get_command(cli_app.build_app())
    assert isinstance(group, typer.core.TyperGroup)
    assert list(group.commands) == ["validate", "schema", "run", "resync", "demo", "serve",
                                    "status", "explain", "backfill", "checkin", "report",
                                    "doctor", "recommend", "db"]
    db = group.commands["db"]
    assert isinstance(db, typer.core.TyperGroup)
    assert list(db.commands) == ["upgrade", "prune"]


def test_build_app_given_one_command_holds_that_command_under_the_same_root() -> None:
    group = get_command(cli_app.build_app(only="run"))
    assert isinstance(group, typer.core.TyperGroup)  # still a group: `okr-sync run ...`
    assert list(group.commands) == ["run"]
    whole = get_command(app)
    assert isinstance(whole, typer.core.TyperGroup)
    assert [p.name for p in group.params] == [p.name for p in whole.params]
    assert set(whole.commands) == cli_app.COMMAND_NAMES


@pytest.mark.parametrize("args", [
    ["run", "--help"], ["run", "--bogus"], ["run", "--output", "xml"], ["run", "extra"],
    ["db"], ["db", "prune", "--help"], ["status", "--help"], ["explain", "--help"],
], ids=lambda a: " ".join(a))
def test_build_app_given_one_command_parses_helps_and_fails_as_the_full_app(
    args: list[str],
) -> None:
    # main() runs a named command on an app of just that command (Typer builds every
    # command it holds on each call); nothing a user sees may differ.
    full = runner.invoke(app, args, prog_name="okr-sync")
    alone = runner.invoke(cli_app.build_app(only=args[0]), args, prog_name="okr-sync")
    assert (alone.exit_code, alone.output) == (full.exit_code, full.output)
    assert full.exit_code in (0, 2)


def test_version_given_installed_distribution_prints_its_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"okr-sync {metadata.version('okr-sync')}\n"


def test_version_given_no_installed_distribution_prints_package_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"okr-sync {okr_sync.__version__}\n"


def test_package_version_given_pyproject_is_the_same() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert okr_sync.__version__ == project["version"]


def _command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_help_given_every_command_shows_no_bool_metavar_and_no_rest_markup() -> None:
    paths = _command_paths(get_command(app))
    assert ("db", "upgrade") in paths and ("run",) in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "<bool>" not in result.output, path
        assert "``" not in result.output and ":class:" not in result.output, path


def test_run_help_given_exit_codes_lists_all_four() -> None:
    output = CliRunner().invoke(app, ["run", "--help"]).output
    for code, meaning in (("0", "done"), ("1", "failures"), ("2", "usage"), ("75", "lock")):
        assert any(line.split()[:1] == [code] and meaning in line
                   for line in output.splitlines()), (code, output)


def test_root_help_given_completion_enabled_offers_install_and_show() -> None:
    output = CliRunner().invoke(app, ["--help"]).output
    assert "--install-completion" in output and "--show-completion" in output
