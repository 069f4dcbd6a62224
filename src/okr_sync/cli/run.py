"""``okr-sync run`` and ``okr-sync resync``: one sync pass, with a progress display.

The pass machinery (runtime, store, connectors) is imported by the commands that
run a pass, not by this module, so that ``okr-sync --help`` starts fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from okr_sync.cli import process
from okr_sync.cli.common import (
    OutputFormat,
    OutputOption,
    PlanOption,
    UsageError,
    describe_database_url,
    emit_scorecard,
    fail_usage,
    inert,
    load_settings,
    open_database,
    resolve_as_of,
    resolve_plan,
    stderr,
    store_problem,
    store_settings,
    unknown_id_message,
)
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.config.settings import Settings
    from okr_sync.sync.pipeline import PassOptions
    from okr_sync.sync.runtime import Runtime


def _connect(plan_path: Path | None, *, dry_run: bool = False) -> tuple[Settings, Plan, Runtime]:
    from okr_sync.sync.runtime import ConfigurationError, build_runtime
    from okr_sync.sync.store.store import SchemaError

    settings = load_settings()
    path, loaded = resolve_plan(plan_path, settings)
    settings = store_settings(settings, path, create=not dry_run)
    try:
        runtime = open_database(settings.database_url,
                                lambda: build_runtime(settings, loaded, dry_run=dry_run))
        return settings, loaded, runtime
    except (ConfigurationError, SchemaError) as error:
        raise UsageError(str(error)) from None


def _pass(
    plan: Path | None,
    options: PassOptions,
    output: OutputFormat,
    *,
    wait: float = 0.0,
    as_of: str | None = None,
) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from okr_sync.sync.state import SnapshotError
    from okr_sync.sync.store.locks import LockBusyError, LockError, LockLostError

    try:
        settings, loaded, runtime = _connect(plan, dry_run=options.dry_run)
    except UsageError as error:
        fail_usage(error)
    process.started()
    if as_of is not None:
        try:
            options = replace(options, as_of=resolve_as_of(as_of, loaded))
            if not options.dry_run:
                check_as_of(runtime, as_of, options.as_of)
        except UsageError as error:
            runtime.close()
            fail_usage(error)
    try:
        with fetch_progress() as progress:
            result = runtime.run_locked(replace(options, progress=progress), wait=wait,
                                        scheduled=options.kind == "run")
    except LockBusyError as error:
        stderr.print(f"another run holds the lock ({error}); try later", markup=False)
        return ExitCode.LOCKED
    except LockLostError as error:
        # 75, not 1: another run holds the lock now and carries on from what this pass
        # committed; nothing is lost, and a retry later is the right reaction.
        stderr.print(inert(f"another run took over: {error}"), markup=False, highlight=False)
        return ExitCode.LOCKED
    except LockError as error:
        stderr.print(f"cannot take the run lock: {error}", markup=False)
        return ExitCode.USAGE
    except SnapshotError as error:
        # Written by a newer okr-sync (or damaged): nothing was posted or stored.
        stderr.print(inert(f"the state store's last scorecard cannot be read: {error}"),
                     markup=False, highlight=False)
        return ExitCode.USAGE
    except SQLAlchemyError as error:
        # The store went away mid-pass (a dropped database, a deleted or read-only
        # file). What was committed stays; delivery records a claim before it sends,
        # so nothing was sent that the store does not know of.
        url = settings.database_url
        stderr.print(inert(
            f"the state store failed during the pass ({describe_database_url(url)}): "
            f"{store_problem(url, error)}; nothing more was sent, run again once the store "
            "is back"), markup=False, highlight=False)
        return ExitCode.FAILURES
    finally:
        runtime.close()
    emit_scorecard(result.scorecard, output)
    for failure in result.failures:
        stderr.print(inert(f"failed: {failure}"), markup=False, highlight=False)
    for delivery in result.scorecard.deliveries:
        if delivery.status == "failed":
            stderr.print(
                inert(f"delivery failed: route {delivery.route} -> {delivery.target}: "
                      f"{delivery.reason}"),
                markup=False,
                highlight=False,
            )
    return result.exit_code


def check_as_of(runtime: Runtime, text: str, moment: datetime | None) -> None:
    """Refuse a real pass ``--as-of`` before the last published scorecard (DESIGN A5):
    it would tell people an older state after a newer one."""
    from okr_sync.sync.store.store import Store

    if moment is None or not isinstance(runtime.store, Store):
        return
    published = runtime.store.last_published_snapshot()
    if published is not None and moment < published.as_of:
        raise UsageError(
            f"--as-of {text} is before the last published scorecard "
            f"({published.as_of.isoformat()}): use --dry-run to look at an earlier instant"
        )


def run_command(
    plan: PlanOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="fetch and score, write and post nothing")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="reconcile every issue")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO date or datetime")] = None,
    output: OutputOption = OutputFormat.text,
    wait: Annotated[
        float, typer.Option("--wait", help="seconds to wait for another run's lock")
    ] = 0.0,
) -> None:
    """One sync pass (the cron job).

    \b
    Exit codes:
      0   done
      1   done with failures (some KRs or deliveries failed; the rest went through)
      2   usage, plan or settings error (nothing fetched or posted)
      75  another run holds the lock (try later), or took it over mid-pass
    """
    from okr_sync.sync.pipeline import PassOptions

    options = PassOptions(kind="run", dry_run=dry_run, full=full)
    raise typer.Exit(_pass(plan, options, output, wait=wait, as_of=as_of))


def resync_command(
    plan: PlanOption = None,
    kr: Annotated[list[str] | None, typer.Option("--kr", help="KR id (repeatable)")] = None,
    objective: Annotated[
        list[str] | None, typer.Option("--objective", help="objective id (repeatable)")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="also reconcile deletions")] = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Manual resync: refetch ignoring cursors (named KRs, or all), recompute, push."""
    from okr_sync.sync.pipeline import PassOptions

    try:
        _path, loaded = resolve_plan(plan)
        owners = resync_owners(loaded, kr or [], objective or [])
    except UsageError as error:
        fail_usage(error)
    options = PassOptions(kind="resync", full=full or not owners, refetch=frozenset(owners))
    raise typer.Exit(_pass(plan, options, output))


def resync_owners(plan: Plan, krs: list[str], objectives: list[str]) -> set[str]:
    known = {kr.id for _, kr in plan.key_results()}
    objective_ids = {o.id for o in plan.objectives}
    problems = [unknown_id_message("key result", k, known) for k in krs if k not in known]
    problems += [unknown_id_message("objective", o, objective_ids)
                 for o in objectives if o not in objective_ids]
    if problems:
        raise UsageError("\n".join(problems))
    owners = set(krs)
    for objective_id in objectives:
        owners |= {kr.id for kr in plan.objective(objective_id).key_results}
    return owners


@contextmanager
def fetch_progress() -> Iterator[Callable[[str, int], None] | None]:
    """A Rich progress display of issues fetched per source, on a terminal only."""
    if not stderr.may_be_terminal():
        yield None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed} issues"), TimeElapsedColumn())
    with Progress(*columns, console=stderr.console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def update(source: str, fetched: int) -> None:
            if source not in tasks:
                tasks[source] = progress.add_task(f"Jira source {source}", total=None)
            progress.update(tasks[source], completed=fetched)

        yield update
