"""The ``okr-sync`` Typer app: every command is registered here, by name, in help order.

Command modules only define functions; nothing registers itself on import. They
import the pass machinery (store, connectors, service, sandbox) inside the
commands that need it, so building this app, ``--help``, ``--version``,
``validate`` and ``schema`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any

import typer

from okr_sync.exit_codes import ExitCode

#: The top-level commands, in help order: name -> (module under okr_sync.cli, function).
#: A module is imported when its command is registered: a named command imports only its
#: own (see :func:`build_app`).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("plan", "validate_command"), "schema": ("plan", "schema_command"),
    "run": ("run", "run_command"), "resync": ("run", "resync_command"),
    "demo": ("demo", "demo_command"), "serve": ("serve", "serve_command"),
    "status": ("state", "status_command"), "explain": ("explain", "explain_command"),
    "backfill": ("backfill", "backfill_command"), "checkin": ("state", "checkin_command"),
    "report": ("state", "report_command"), "doctor": ("doctor", "doctor_command"),
    "recommend": ("recommend", "recommend_command"),
}
#: The ``db`` group's commands, likewise.
DB_COMMANDS: dict[str, tuple[str, str]] = {
    "upgrade": ("state", "db_upgrade_command"), "prune": ("db", "db_prune_command"),
}
#: Every top-level command and group name.
COMMAND_NAMES = frozenset((*COMMANDS, "db"))


def _command(module: str, name: str) -> Callable[..., None]:
    function: Callable[..., None] = getattr(import_module(f"okr_sync.cli.{module}"), name)
    return function


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


def build_app(only: str | None = None) -> typer.Typer:
    """The app; with ``only``, the same root (options, callback) holding just that command
    or group, for :func:`okr_sync.cli.main.main` to run a named command: Typer builds the
    Click command of every command it holds on each call (~12 ms of CPU for all of them),
    and a command parses, helps and fails the same either way. Only the command modules
    of the commands held are imported."""
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
    for name, (module, function) in COMMANDS.items():
        if only is None or only == name:
            app.command(name)(_command(module, function))
    if only is None or only == "db":
        db_app = typer.Typer(help="State store maintenance.", no_args_is_help=True,
                             rich_markup_mode=None)
        for name, (module, function) in DB_COMMANDS.items():
            db_app.command(name)(_command(module, function))
        app.add_typer(db_app, name="db")
    return app


def __getattr__(name: str) -> Any:
    # ``app`` (the whole app, every command module imported) is built on first use: a named
    # command never needs it.
    if name == "app":
        whole = build_app()
        globals()["app"] = whole
        return whole
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
