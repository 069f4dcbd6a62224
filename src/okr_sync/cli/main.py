"""The ``okr-sync`` console script (DESIGN.md A5); the commands are composed in ``cli.app``.

Exit codes (:class:`okr_sync.exit_codes.ExitCode`): 0 done; 1 done with failures;
2 usage, plan or settings error (nothing fetched or posted); 75 another run holds
the lock.
"""

from __future__ import annotations

import os
from typing import Any

from okr_sync.cli.app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> Any:
    from okr_sync.sync.logs import configure_logging

    # Commands print their results on stdout; logs go to stderr (JSON off a terminal).
    configure_logging(os.environ.get("OKR_SYNC_LOG_LEVEL", "WARNING"))
    return app(args=argv, prog_name="okr-sync")


if __name__ == "__main__":
    main()
