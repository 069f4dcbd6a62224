"""``okr-sync backfill``: each Jira KR's daily history rebuilt from Jira's changelog.

The store, the connectors and the backfill itself are imported by the command, not by
this module, so that ``okr-sync --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from okr_sync.cli.common import (
    OutputFormat,
    OutputOption,
    PlanOption,
    UsageError,
    describe_database_url,
    fail_usage,
    inert,
    load_settings,
    open_database,
    resolve_plan,
    stderr,
    stdout,
    store_problem,
    unknown_id_message,
)
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.sync.backfill.run import BackfillResult


def check_krs(plan: Plan, krs: list[str]) -> None:
    """Refuse an unknown KR id (with a "did you mean") or one not measured from Jira."""
    every = [kr.id for _, kr in plan.key_results()]
    problems = []
    for kr_id in krs:
        if kr_id not in every:
            problems.append(unknown_id_message("key result", kr_id, every))
        elif plan.key_result(kr_id).measure.kind == "manual":
            problems.append(f"key result {kr_id!r} is manual (check-ins), not measured from "
                            "Jira: there is no changelog to rebuild it from")
    if problems:
        raise UsageError("\n".join(problems))


def parse_from(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--from {text!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def backfill_progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A Rich progress bar per phase (changelogs read, days scored), on a terminal only."""
    if not stderr.may_be_terminal():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=stderr.console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        yield update


def result_json(result: BackfillResult) -> dict[str, Any]:
    return {
        "cycle": result.cycle,
        "days": [d.isoformat() for d in result.days],
        "rows": result.rows,
        "key_results": {
            kr_id: [{"date": v.day.isoformat(), "as_of": v.as_of.isoformat(),
                     "value": v.value, "score": v.score, "band": v.band,
                     "confidence": v.confidence} for v in values]
            for kr_id, values in result.values.items()
        },
        "not_rebuilt": dict(sorted(result.skipped.items())),
        "issues": result.issues,
        "changelog_entries": result.histories,
        "deleted_issues": result.deleted,
        "read_with": sorted(result.methods),
        "backfilled": True,
        "posted": False,
    }


def _print(result: BackfillResult) -> None:
    from okr_sync.sync.backfill.run import describe

    for line in describe(result):
        stdout.print(inert(line), markup=False, highlight=False)
    for kr_id, values in result.values.items():
        first, last = values[0], values[-1]
        stdout.print(inert(
            f"  {kr_id}: {first.day.isoformat()} {first.value:g} (score {first.score:.2f}) "
            f"-> {last.day.isoformat()} {last.value:g} (score {last.score:.2f})"
            if first.value is not None and last.value is not None else
            f"  {kr_id}: {len(values)} days"), markup=False, highlight=False)


def backfill_command(
    plan: PlanOption = None,
    since: Annotated[
        str | None, typer.Option("--from", help="first day to rebuild (YYYY-MM-DD)")
    ] = None,
    kr: Annotated[list[str] | None, typer.Option("--kr", help="KR id (repeatable)")] = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Rebuild each Jira KR's value and score for every past day of the cycle from
    Jira's changelog, into the score history (marked backfilled; nothing is posted).

    \b
    Exit codes:
      0   done
      1   done, but some KRs could not be rebuilt, or Jira failed (nothing stored then)
      2   usage, plan or settings error: unknown KR, date outside the cycle (nothing fetched)
    """
    from sqlalchemy.exc import SQLAlchemyError

    from okr_sync.connectors.errors import ConnectorError
    from okr_sync.sync.backfill.days import BackfillInputError
    from okr_sync.sync.backfill.run import BackfillOptions, backfill
    from okr_sync.sync.delivery.outbox import Senders
    from okr_sync.sync.runtime import ConfigurationError, build_runtime
    from okr_sync.sync.store.store import SchemaError, Store

    try:
        settings = load_settings()
        _path, loaded = resolve_plan(plan, settings)
        check_krs(loaded, kr or [])
        first = parse_from(since)
        # Senders without clients: backfill posts nothing, so routes need no credentials.
        runtime = open_database(settings.database_url,
                                lambda: build_runtime(settings, loaded, senders=Senders()))
    except (ConfigurationError, SchemaError) as error:
        fail_usage(error)
    except UsageError as error:
        fail_usage(error)
    store = runtime.store
    assert isinstance(store, Store)
    try:
        with backfill_progress() as progress:
            result = backfill(loaded, store, runtime.jira,
                              BackfillOptions(first, tuple(kr or ()), progress),
                              now=datetime.now(UTC))
    except BackfillInputError as error:
        fail_usage(error)
    except ConnectorError as error:
        stderr.print(inert(f"Jira failed, nothing was stored: {error}"), markup=False,
                     highlight=False)
        raise typer.Exit(ExitCode.FAILURES) from None
    except SQLAlchemyError as error:
        url = settings.database_url
        stderr.print(inert(f"the state store failed ({describe_database_url(url)}): "
                           f"{store_problem(url, error)}"), markup=False, highlight=False)
        raise typer.Exit(ExitCode.FAILURES) from None
    finally:
        runtime.close()
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(result_json(result), ensure_ascii=False) + "\n")
    else:
        _print(result)
    for kr_id, why in sorted(result.skipped.items()):
        stderr.print(inert(f"not rebuilt: {kr_id}: {why}"), markup=False, highlight=False)
    raise typer.Exit(ExitCode.FAILURES if result.skipped else ExitCode.OK)
