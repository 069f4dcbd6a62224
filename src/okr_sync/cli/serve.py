"""``okr-sync serve``: the long-running service (scheduler, health, metrics, webhooks)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from okr_sync.cli.common import PlanOption, UsageError, fail_usage, load_settings, resolve_plan


def serve_command(
    plan: PlanOption = None,
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
        )
    except (ConfigurationError, SchemaError, OSError) as error:
        fail_usage(error)
    raise typer.Exit(code)
