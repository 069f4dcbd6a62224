"""The ``okr-sync`` console script (DESIGN.md A5); the commands are composed in ``cli.app``.

Exit codes (:class:`okr_sync.exit_codes.ExitCode`): 0 done; 1 done with failures;
2 usage, plan or settings error (nothing fetched or posted); 75 another run holds
the lock.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from okr_sync.cli import app as cli_app
from okr_sync.cli import process
from okr_sync.cli.app import COMMAND_NAMES, build_app
from okr_sync.exit_codes import ExitCode

__all__ = ["app", "main"]  # noqa: F822 - app comes from __getattr__ below


def __getattr__(name: str) -> Any:
    # ``app``, the whole Typer app, is built when first asked for (see cli.app).
    if name == "app":
        return cli_app.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> Any:
    """Run the command of ``argv``; without it, the command of this process's own
    command line (the console script's way), after which the process ends."""
    if argv is None:
        process.one_command_process(sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        return _command(argv)
    finally:
        process.ending()


def _command(argv: list[str] | None) -> Any:
    from okr_sync.cli.common import stderr
    from okr_sync.sync.logs import LogLevelError, configure_logging, parse_level

    # Commands print their results on stdout; logs go to stderr (JSON off a terminal).
    try:
        level = parse_level(os.environ.get("OKR_SYNC_LOG_LEVEL", "WARNING"))
    except LogLevelError as error:
        # Outside the Typer app, so its exit would not be turned into a process exit.
        stderr.print(str(error), markup=False, highlight=False)
        raise SystemExit(ExitCode.USAGE) from None
    configure_logging(level)
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in COMMAND_NAMES:
        # A named command (no root option before it): an app of just that command.
        return build_app(only=args[0])(args=argv, prog_name="okr-sync")
    return cli_app.app(args=argv, prog_name="okr-sync")


if __name__ == "__main__":
    main()
