"""``okr-sync db prune``: forget old runs, snapshots and delivered messages.

What is kept and why is in :mod:`okr_sync.sync.store.retention`. The store is imported
inside the command, so ``--help`` stays fast.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from okr_sync.cli.common import (
    UsageError,
    check_setting_names,
    fail_usage,
    load_settings,
    stderr,
    stdout,
)
from okr_sync.exit_codes import ExitCode

#: The shortest window: the weekly digest compares with the scorecard published a week
#: before its slot, which must still be there in full (plus a day of catch-up).
MIN_RETENTION_DAYS = 8
MAX_RETENTION_DAYS = 36500
_AGE = re.compile(r"^\s*(\d{1,6})\s*([dw])\s*$", re.IGNORECASE)


def parse_older_than(text: str) -> timedelta:
    """``30d`` or ``6w``: at least 8 days, at most 100 years."""
    match = _AGE.match(text)
    if match is None:
        raise UsageError(f"--older-than {text!r}: use days or weeks, e.g. 30d or 6w")
    days = int(match.group(1)) * (7 if match.group(2).lower() == "w" else 1)
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise UsageError(
            f"--older-than {text!r}: between {MIN_RETENTION_DAYS}d and {MAX_RETENTION_DAYS}d "
            "(the weekly digest needs the scorecards of the last week in full)"
        )
    return timedelta(days=days)


def db_prune_command(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="prune what is older than this (e.g. 30d, 6w; at least 8d); "
                             "default OKR_SYNC_RETENTION_DAYS (30)")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="count what would be deleted, delete nothing")] = False,
    wait: Annotated[float, typer.Option(
        "--wait", min=0, max=3600, help="seconds to wait for a running pass's lock")] = 0.0,
) -> None:
    """Delete old runs, snapshots and delivered outbox rows (score history stays).

    \b
    Exit codes:
      0   done (or, with --dry-run, counted)
      2   usage, settings or store error (nothing deleted)
      75  a pass holds the run lock (try later, or --wait)
    """
    from okr_sync.cli.state import open_store
    from okr_sync.sync.store.fencing import fenced_run_lock
    from okr_sync.sync.store.locks import LockBusyError, LockError

    try:
        settings = load_settings()
        check_setting_names(None, settings)
        window = (parse_older_than(older_than) if older_than is not None
                  else timedelta(days=settings.retention_days))
        store = open_store(settings.database_url)
    except UsageError as error:
        fail_usage(error)
    before = datetime.now(UTC) - window
    when = before.isoformat(timespec="seconds")
    with store:
        if dry_run:
            counts = store.prune(before=before, dry_run=True)
            verb = "would delete"
        else:
            try:
                # Under the run lock: a pass reads the snapshots it diffs against.
                with fenced_run_lock(store, settings.database_url, holder=None, wait=wait):
                    counts = store.prune(before=before)
            except LockBusyError as error:
                stderr.print(f"a pass holds the lock ({error}); try later", markup=False)
                raise typer.Exit(ExitCode.LOCKED) from None
            except LockError as error:
                fail_usage(UsageError(f"cannot take the run lock: {error}"))
            verb = "deleted"
        left = store.row_counts()
    stdout.print(
        f"{verb} {counts.runs} runs, {counts.snapshots} snapshots and {counts.outbox} "
        f"delivered outbox rows from before {when}; score history kept "
        f"({left['kr_history']} rows)",
        markup=False, highlight=False,
    )
