"""The process exit codes of ``okr-sync`` (DESIGN.md A5), shared by the CLI and the sync.

It lives at the top of the package and imports nothing, so ``cli`` and ``sync`` can
both use it without a cycle.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    #: Done.
    OK = 0
    #: Done with failures: some KRs or deliveries failed, the others went through.
    FAILURES = 1
    #: Usage, plan or settings error: nothing was fetched or posted.
    USAGE = 2
    #: Another run holds the lock (``EX_TEMPFAIL``): try later.
    LOCKED = 75
