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
                                    "status", "explain", "checkin", "report", "db"]
    db = group.commands["db"]
    assert isinstance(db, typer.core.TyperGroup)
    assert list(db.commands) == ["upgrade"]


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
