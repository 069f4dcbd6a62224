"""The ``okr-sync`` Typer app: every command is registered here, by name, in help order.

Command modules only define functions; nothing registers itself on import. They
import the pass machinery (store, connectors, service, sandbox) inside the
commands that need it, so building this app, ``--help``, ``--version``,
``validate`` and ``schema`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from okr_sync.cli.backfill import backfill_command
from okr_sync.cli.db import db_prune_command
from okr_sync.cli.demo import demo_command
from okr_sync.cli.doctor import doctor_command
from okr_sync.cli.explain import explain_command
from okr_sync.cli.plan import schema_command, validate_command
from okr_sync.cli.recommend import recommend_command
from okr_sync.cli.run import resync_command, run_command
from okr_sync.cli.serve import serve_command
from okr_sync.cli.state import (
    checkin_command,
    db_upgrade_command,
    report_command,
    status_command,
)
from okr_sync.exit_codes import ExitCode

DISTRIBUTION = "okr-sync"


def package_version() -> str:
    """The installed distribution's version; the package's own when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        # Run from a source tree (PYTHONPATH=src) without an install.
        from okr_sync import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{DISTRIBUTION} {package_version()}")
        raise typer.Exit(ExitCode.OK)


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_print_version,
                     is_eager=True),
    ] = False,
) -> None:
    del version


def _commands() -> dict[str, Callable[..., None]]:
    """The top-level commands, by name, in help order."""
    return {
        "validate": validate_command, "schema": schema_command, "run": run_command,
        "resync": resync_command, "demo": demo_command, "serve": serve_command,
        "status": status_command, "explain": explain_command, "backfill": backfill_command,
        "checkin": checkin_command, "report": report_command, "doctor": doctor_command,
        "recommend": recommend_command,
    }


#: Every top-level command and group name (``db`` is a group).
COMMAND_NAMES = frozenset((*_commands(), "db"))


def build_app(only: str | None = None) -> typer.Typer:
    """The app; with ``only``, the same root (options, callback) holding just that command
    or group, for :func:`okr_sync.cli.main.main` to run a named command: Typer builds the
    Click command of every command it holds on each call (~12 ms of CPU for all of them),
    and a command parses, helps and fails the same either way."""
    app = typer.Typer(
        name="okr-sync",
        help="Keep OKR and Balanced Scorecard scores true to the work teams finish in Jira.",
        no_args_is_help=True,
        add_completion=True,
        # Click's plain help: Typer's Rich panels print a `<bool>` type beside every flag,
        # --help included, and no option of Typer's turns that off.
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    for name, command in _commands().items():
        if only is None or only == name:
            app.command(name)(command)
    if only is None or only == "db":
        db_app = typer.Typer(help="State store maintenance.", no_args_is_help=True,
                             rich_markup_mode=None)
        db_app.command("upgrade")(db_upgrade_command)
        db_app.command("prune")(db_prune_command)
        app.add_typer(db_app, name="db")
    return app


app = build_app()
