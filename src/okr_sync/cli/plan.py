"""``okr-sync validate`` and ``okr-sync schema``: the plan file alone, no store, no network."""

from __future__ import annotations

import sys

from okr_sync.cli.common import (
    PlanOption,
    UsageError,
    fail_usage,
    inert,
    resolve_plan,
    stdout,
)


def validate_command(plan: PlanOption = None) -> None:
    """Check the plan file; exit 0 when valid, 2 with one FILE:LINE:COLUMN line per error."""
    try:
        path, loaded = resolve_plan(plan)
    except UsageError as error:
        fail_usage(error)
    krs = len(loaded.key_results())
    stdout.print(
        inert(f"{path}: ok ({len(loaded.objectives)} objectives, {krs} key results, "
        f"{len(loaded.kpis)} KPIs)"),
        markup=False,
    )


def schema_command(plan: PlanOption = None) -> None:
    """Print the JSON Schema of the plan file (for editor completion)."""
    from okr_sync.config.plan_loader import plan_json_schema_text

    del plan
    sys.stdout.write(plan_json_schema_text() + "\n")
