"""The ``okr-sync`` command line (DESIGN.md A5).

Exit codes: 0 done; 1 done with failures; 2 usage, plan or settings error
(nothing fetched or posted); 75 another run holds the lock.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import PlanError, load_plan, plan_json_schema_text
from okr_sync.config.settings import Settings
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.console import print_scorecard
from okr_sync.sync.timeparse import AsOfError, parse_as_of

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75

app = typer.Typer(
    name="okr-sync",
    help="Keep OKR and Balanced Scorecard scores true to the work teams finish in Jira.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


PlanOption = Annotated[
    Path | None,
    typer.Option("--plan", help="plan file (default: OKR_SYNC_PLAN or okr-plan.yaml)"),
]
OutputOption = Annotated[OutputFormat, typer.Option("--output", help="text or json")]


class UsageError(Exception):
    """A plan, settings or argument problem: exit 2 before anything is fetched or posted."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        raise UsageError(f"invalid settings: {problems}") from None


def resolve_plan(plan_path: Path | None, settings: Settings | None = None) -> tuple[Path, Plan]:
    path = plan_path if plan_path is not None else (settings or load_settings()).plan
    try:
        return path, load_plan(path)
    except PlanError as error:
        raise UsageError(str(error)) from None


def resolve_as_of(text: str | None, plan: Plan) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        return parse_as_of(text, plan.cycle.zone)
    except AsOfError as error:
        raise UsageError(str(error)) from None


def emit_scorecard(scorecard: Scorecard, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(scorecard.to_json(), ensure_ascii=False) + "\n")
    else:
        print_scorecard(scorecard, stdout)


def fail_usage(error: Exception) -> None:
    stderr.print(str(error), markup=False, highlight=False)
    raise typer.Exit(EXIT_USAGE)


@app.command()
def validate(plan: PlanOption = None) -> None:
    """Check the plan file; exit 0 when valid, 2 with one FILE:LINE:COLUMN line per error."""
    try:
        path, loaded = resolve_plan(plan)
    except UsageError as error:
        fail_usage(error)
        return
    krs = len(loaded.key_results())
    stdout.print(
        f"{path}: ok ({len(loaded.objectives)} objectives, {krs} key results, "
        f"{len(loaded.kpis)} KPIs)",
        markup=False,
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the plan file (for editor completion)."""
    sys.stdout.write(plan_json_schema_text() + "\n")


@app.command()
def run(
    plan: PlanOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="fetch and score, write and post nothing")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="reconcile every issue")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO date or datetime")] = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """One sync pass (the cron job)."""
    try:
        _path, loaded = resolve_plan(plan)
        moment = resolve_as_of(as_of, loaded)
        jira_krs = [kr.id for _, kr in loaded.key_results() if kr.measure.kind != "manual"]
        if jira_krs or any(k.measure is not None for k in loaded.kpis):
            raise UsageError(
                "this plan measures from Jira, which this build cannot fetch yet "
                f"(key results: {', '.join(jira_krs)})"
            )
        if not dry_run:
            raise UsageError("this build only supports `run --dry-run` (no state store yet)")
    except UsageError as error:
        fail_usage(error)
        return
    del full
    scorecard = build_scorecard(ScoringInput(plan=loaded, as_of=moment))
    emit_scorecard(scorecard, output)


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv, prog_name="okr-sync")
