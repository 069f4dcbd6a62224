"""Shared pieces of the ``okr-sync`` command line: consoles, options, plan and settings loading.

Every command module imports this one, including the commands that must start
fast (``--help``, ``validate``, ``schema``): it imports only Typer, Rich's console
and the standard library at module level; settings, the plan loader and the
scorecard printer are imported by the functions that use them.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from okr_sync.cli.timeparse import AsOfError, parse_as_of
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.config.settings import Settings
    from okr_sync.scoring.scorecard import Scorecard

# Piped output (cron mail, CI logs) gets a wide table instead of Rich's 80 columns.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)
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
    from pydantic import ValidationError

    from okr_sync.config.settings import Settings
    from okr_sync.sync.logs import register_secret

    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        raise UsageError(f"invalid settings: {problems}") from None
    # Belt and braces: should a secret ever reach a log record, it is masked.
    for secret in (settings.jira_api_token, settings.jira_pat, settings.slack_bot_token,
                   settings.teams_app_secret, settings.webhook_secret):
        register_secret(secret)
    return settings


def resolve_plan(plan_path: Path | None, settings: Settings | None = None) -> tuple[Path, Plan]:
    from okr_sync.config.plan_loader import PlanError, load_plan

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
    from okr_sync.cli.console import print_scorecard

    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(scorecard.to_json(), ensure_ascii=False) + "\n")
    else:
        print_scorecard(scorecard, stdout)


def fail_usage(error: Exception) -> NoReturn:
    stderr.print(str(error), markup=False, highlight=False)
    raise typer.Exit(ExitCode.USAGE)
