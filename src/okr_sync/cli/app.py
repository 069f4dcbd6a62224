"""The ``okr-sync`` Typer app: every command is registered here, by name, in help order.

Command modules only define functions; nothing registers itself on import. They
import the pass machinery (store, connectors, service, sandbox) inside the
commands that need it, so building this app, ``--help``, ``--version``,
``validate`` and ``schema`` stay fast.
"""

from __future__ import annotations

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


def build_app() -> typer.Typer:
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
    app.command("validate")(validate_command)
    app.command("schema")(schema_command)
    app.command("run")(run_command)
    app.command("resync")(resync_command)
    app.command("demo")(demo_command)
    app.command("serve")(serve_command)
    app.command("status")(status_command)
    app.command("explain")(explain_command)
    app.command("backfill")(backfill_command)
    app.command("checkin")(checkin_command)
    app.command("report")(report_command)
    app.command("doctor")(doctor_command)
    app.command("recommend")(recommend_command)
    db_app = typer.Typer(help="State store maintenance.", no_args_is_help=True,
                         rich_markup_mode=None)
    db_app.command("upgrade")(db_upgrade_command)
    db_app.command("prune")(db_prune_command)
    app.add_typer(db_app, name="db")
    return app


app = build_app()
