"""``okr-sync serve``: the long-running service (scheduler, health, metrics, webhooks)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from okr_sync.cli.common import PlanOption, UsageError, fail_usage, load_settings, resolve_plan

if TYPE_CHECKING:
    from okr_sync.config.settings import Settings
    from okr_sync.sync.service.schedule import Schedule


def serve_command(
    plan: PlanOption = None,
    plans: Annotated[
        Path | None,
        typer.Option("--plans", help="a folder of plan files (*.yaml, *.yml) to run together, "
                                     "shared out among replicas (default: OKR_SYNC_PLANS)"),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", help="sync every 30s, 5m, 1h, 1d (at most 7d; default 5m)"),
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="sync on a cron schedule")] = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="HTTP port (0: any free port)")
    ] = 8080,
    host: Annotated[str, typer.Option("--host", help="HTTP bind address")] = "0.0.0.0",  # noqa: S104 - a container service listens on all interfaces
) -> None:
    """Service: scheduled syncs, /healthz, /readyz, /metrics, POST /webhooks/jira[/SOURCE]."""
    from okr_sync.sync.logs import LogLevelError, configure_logging, parse_level
    from okr_sync.sync.runtime import ConfigurationError, build_runtime
    from okr_sync.sync.service.app import serve as run_service
    from okr_sync.sync.service.schedule import Schedule, ScheduleError
    from okr_sync.sync.store.store import SchemaError

    try:
        configure_logging(parse_level(os.environ.get("OKR_SYNC_LOG_LEVEL", "INFO")))
        schedule = Schedule.parse(interval, cron)
        settings = load_settings()
        if plans is not None and plan is not None:
            raise UsageError("use either --plan FILE or --plans DIR, not both")
        folder = plans if plans is not None or plan is not None else settings.plans
        if folder is not None:
            _serve_folder(folder, settings, schedule, port=port, host=host)
            return
        _path, loaded = resolve_plan(plan, settings)
    except (LogLevelError, ScheduleError, UsageError) as error:
        fail_usage(error)
    try:
        code = run_service(
            lambda: build_runtime(settings, loaded),
            schedule,
            port=port,
            host=host,
            webhook_secret=settings.webhook_secret,
            allow_unsigned_webhooks=settings.webhook_allow_unsigned,
            debounce=timedelta(seconds=settings.webhook_debounce_seconds),
        )
    except (ConfigurationError, SchemaError, OSError) as error:
        fail_usage(error)
    raise typer.Exit(code)


def _serve_folder(folder: Path, settings: Settings, schedule: Schedule, *, port: int,
                  host: str) -> None:
    """``serve --plans DIR`` (see :mod:`okr_sync.sync.service.multi`)."""
    from datetime import UTC, datetime

    from okr_sync.cli.common import check_database_url, check_variables_for, open_database
    from okr_sync.sync.runtime import build_runtime
    from okr_sync.sync.service.plans import PlanFolderError, scan_plans, settings_check
    from okr_sync.sync.service.plans_app import serve_plans
    from okr_sync.sync.store.database import plan_store_url
    from okr_sync.sync.store.store import SchemaError

    if not folder.is_dir():
        raise UsageError(f"--plans {folder}: not a folder")
    check_database_url(settings.database_url)
    try:
        plan_store_url(settings.database_url, "check")
    except ValueError as error:
        raise UsageError(f"OKR_SYNC_DATABASE_URL: {error}") from None
    try:
        found = scan_plans(folder, check=settings_check(settings),
                           connectable_sources=settings.connected_sources())
    except PlanFolderError as error:
        raise UsageError(str(error)) from None
    check_variables_for([p.plan for p in found.plans.values()])
    try:
        code = open_database(settings.database_url, lambda: serve_plans(
            folder, settings, schedule,
            runtime_factory=lambda plan_settings, plan: build_runtime(
                plan_settings, plan.plan, checkin_plan=plan.id),
            check=settings_check(settings), port=port, host=host,
            webhook_secret=settings.webhook_secret,
            allow_unsigned_webhooks=settings.webhook_allow_unsigned,
            debounce=timedelta(seconds=settings.webhook_debounce_seconds),
            clock=lambda: datetime.now(UTC),
        ))
    except (SchemaError, OSError) as error:
        raise UsageError(str(error)) from None
    raise typer.Exit(code)
