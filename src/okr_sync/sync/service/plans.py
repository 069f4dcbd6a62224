"""The plan folder of ``serve --plans``: every ``*.yaml`` / ``*.yml`` file is one plan.

A plan's id is its file name without the extension, lower-cased, with anything but
letters, digits and ``_`` turned into ``_`` (``Sales-EMEA.yaml`` -> ``sales_emea``):
it names the plan's store (its PostgreSQL schema or SQLite file), its lease, its
``/readyz/<plan>`` page and its ``plan`` label on ``/metrics``. A file that does not
load - invalid YAML, an invalid plan, settings it needs and lacks, an id another
file already has - is reported by file (``FILE:LINE:COLUMN`` where the plan loader
knows the place) and skipped; the other plans run. The folder is read again every
poll, so added, changed and removed files are picked up without a restart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import PlanError, load_plan
from okr_sync.config.settings import Settings
from okr_sync.sync.service.schedule import Schedule, ScheduleError

PLAN_SUFFIXES = (".yaml", ".yml")
#: PostgreSQL identifiers are at most 63 bytes; the schema prefix takes 14 of them.
MAX_PLAN_ID = 40
_UNSAFE = re.compile(r"[^a-z0-9_]+")


class PlanFolderError(Exception):
    """The plans folder itself cannot be read (a usage error: exit 2)."""


def plan_id_of(path: Path) -> str:
    """The plan id of a file (see the module docstring)."""
    stem = _UNSAFE.sub("_", path.stem.lower()).strip("_")
    return (stem or "plan")[:MAX_PLAN_ID]


@dataclass(frozen=True)
class FolderPlan:
    id: str
    path: Path
    plan: Plan
    #: The file's modification time and size when loaded: a change reloads it.
    stamp: tuple[float, int]


@dataclass(frozen=True)
class PlanProblem:
    """Why a file was skipped (``text`` names the file, with line and column if known)."""

    text: str
    stamp: tuple[float, int] | None = None


@dataclass
class PlanFolder:
    """What one read of the folder found: plans by id, and problems by file."""

    plans: dict[str, FolderPlan] = field(default_factory=dict)
    problems: dict[Path, PlanProblem] = field(default_factory=dict)


def plan_files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise PlanFolderError(f"plans folder {folder}: {error.strerror or error}") from None
    # Kubernetes mounts a ConfigMap as symlinks into a hidden `..data` folder: hidden
    # names are skipped, and a symlink to a file counts as the file.
    return [p for p in entries
            if p.suffix.lower() in PLAN_SUFFIXES and not p.name.startswith(".") and p.is_file()]


def _stamp(path: Path) -> tuple[float, int]:
    info = path.stat()
    return info.st_mtime, info.st_size


def scan_plans(
    folder: Path,
    *,
    check: Callable[[Plan], None] | None = None,
    previous: PlanFolder | None = None,
    connectable_sources: frozenset[str] | None = None,
) -> PlanFolder:
    """Read the folder; files unchanged since ``previous`` are not parsed again.

    ``check`` raises (any exception; its message is reported) for a plan that loads
    but cannot run with these settings; ``connectable_sources``: the Jira sources the
    settings connect (a measure on another is reported at its place in the file).
    """
    found = PlanFolder()
    for path in plan_files(folder):
        plan_id = plan_id_of(path)
        if plan_id in found.plans:
            found.problems[path] = PlanProblem(
                f"{path}: plan id {plan_id!r} is already the id of "
                f"{found.plans[plan_id].path.name}; rename one of them")
            continue
        try:
            stamp = _stamp(path)
        except OSError as error:
            found.problems[path] = PlanProblem(f"{path}: {error.strerror or error}")
            continue
        known = previous.plans.get(plan_id) if previous is not None else None
        if known is not None and known.path == path and known.stamp == stamp:
            found.plans[plan_id] = known
            continue
        earlier = previous.problems.get(path) if previous is not None else None
        if earlier is not None and earlier.stamp == stamp:
            found.problems[path] = earlier
            continue
        try:
            plan = load_plan(path, connectable_sources=connectable_sources)
            if check is not None:
                check(plan)
        except PlanError as error:
            found.problems[path] = PlanProblem(str(error), stamp)
            continue
        except OSError as error:
            found.problems[path] = PlanProblem(f"{path}: {error.strerror or error}", stamp)
            continue
        except Exception as error:  # a settings check: the plan cannot run as configured
            found.problems[path] = PlanProblem(f"{path}: {error}", stamp)
            continue
        found.plans[plan_id] = FolderPlan(plan_id, path, plan, stamp)
    return found


def plan_schedule(plan: Plan, default: Schedule) -> Schedule:
    """The plan's own ``serve:`` schedule, else ``default`` (raises ScheduleError)."""
    if plan.serve is None or (plan.serve.interval is None and plan.serve.cron is None):
        return default
    return Schedule.parse(plan.serve.interval, plan.serve.cron)


def settings_check(settings: Settings) -> Callable[[Plan], None]:
    """The settings checks ``serve --plan`` makes before it connects, for one plan, and
    its own schedule's bounds."""

    def check(plan: Plan) -> None:
        from okr_sync.sync.fetch_plan import build_fetch_plan
        from okr_sync.sync.runtime import check_routes, jira_sources

        jira_sources(settings, plan, build_fetch_plan(plan))
        check_routes(settings, plan)
        try:
            plan_schedule(plan, Schedule())
        except ScheduleError as error:
            raise ValueError(f"serve: {error}") from None

    return check
