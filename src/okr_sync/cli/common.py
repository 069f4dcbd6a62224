"""Shared pieces of the ``okr-sync`` command line: consoles, options, plan and settings loading.

Every command module imports this one, including the commands that must start
fast (``--help``, ``validate``, ``schema``): it imports only Typer and the standard
library at module level; Rich, settings, the plan loader and the scorecard printer
are imported by what uses them (Rich on a console's first use, see :class:`LazyConsole`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from okr_sync.cli.timeparse import AsOfError, parse_as_of
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from okr_sync.config.plan import KeyResult, Plan
    from okr_sync.config.settings import Settings
    from okr_sync.scoring.scorecard import Scorecard

# Piped output (cron mail, CI logs) gets a wide table instead of Rich's 80 columns. What we
# print is mostly outside text (plan titles, Jira summaries, error messages naming
# `plan.yaml:100:25`), so strings are never read as Rich markup or :emoji: codes; styles
# come from rich.text.Text only.


class LazyConsole:
    """A Rich console made on first use, with the options given here.

    Importing Rich costs ~40 ms of CPU, and ``run`` prints nothing until its pass is
    over (nothing at all with ``--output json`` and no failure), so the consoles are
    made when something is printed. Attributes are the console's; Rich APIs that take a
    console get :attr:`console`.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def may_be_terminal(self) -> bool:
        """False when Rich's ``is_terminal`` is certainly false, told without importing
        Rich: no ``TTY_COMPATIBLE=1``, no non-empty ``FORCE_COLOR`` and not a tty (the
        only ways Rich answers true for a console on sys.stdout or sys.stderr that does
        not force it); otherwise Rich's own answer."""
        if self._console is not None or {"file", "force_terminal"} & self._options.keys():
            return bool(self.console.is_terminal)
        stream = sys.stderr if self._options.get("stderr") else sys.stdout
        isatty = getattr(stream, "isatty", None)
        try:
            tty = bool(isatty()) if isatty is not None else False
        except ValueError:  # a closed stream, as Rich treats it
            tty = False
        if (os.environ.get("TTY_COMPATIBLE") != "1" and not os.environ.get("FORCE_COLOR")
                and not tty):
            return False
        return bool(self.console.is_terminal)


stdout = LazyConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 140, markup=False,
                     emoji=False, highlight=False)
stderr = LazyConsole(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)


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


_T = TypeVar("_T")
# C0 and C1 control characters (ESC starts terminal escape sequences), except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: How many valid ids an unknown-id message lists when nothing is close.
MAX_LISTED_IDS = 10


def inert(text: str) -> str:
    """Outside text (Jira summaries, plan titles) with every control character removed,
    so it cannot move the cursor, clear the screen or open a hyperlink on a terminal."""
    return _CONTROL.sub("", text)


def unknown_id_message(what: str, given: str, known: Iterable[str]) -> str:
    """``unknown key result 'X'``, with a "did you mean" or the valid ids (a few)."""
    ids = sorted(known)
    by_folded = {i.casefold(): i for i in ids}
    close = [by_folded[c] for c in difflib.get_close_matches(given.casefold(), by_folded, n=3)]
    if close:
        return f"unknown {what} {given!r}: did you mean {', '.join(close)}?"
    listed = ", ".join(ids[:MAX_LISTED_IDS]) + (", ..." if len(ids) > MAX_LISTED_IDS else "")
    return f"unknown {what} {given!r}; valid ids: {listed or 'none'}"


#: What ``explain`` explains, in the order an id is looked up (perspective ids may
#: repeat another id: the contract keeps only objective, KR and KPI ids unique).
ID_KINDS = ("key_result", "objective", "kpi", "perspective")
_KIND_NAMES = {"key_result": "key result", "objective": "objective", "kpi": "KPI",
               "perspective": "perspective"}


def plan_ids(plan: Plan, kind: str) -> list[str]:
    if kind == "key_result":
        return [kr.id for _, kr in plan.key_results()]
    if kind == "objective":
        return [o.id for o in plan.objectives]
    if kind == "kpi":
        return [k.id for k in plan.kpis]
    return [p.id for p in plan.perspectives]


def id_kind_of(plan: Plan, given: str, kinds: Iterable[str] = ID_KINDS) -> str:
    """Which of ``kinds`` the plan id ``given`` is, or a usage error with a "did you mean"
    over the ids of those kinds."""
    wanted = list(kinds)
    for kind in wanted:
        if given in plan_ids(plan, kind):
            return kind
    names = [_KIND_NAMES[k] for k in wanted]
    what = names[0] if len(names) == 1 else "id"
    known = {i for kind in wanted for i in plan_ids(plan, kind)}
    message = unknown_id_message(what, given, known)
    if len(names) > 1:
        message += f" (ids of a {', '.join(names[:-1])} or {names[-1]})"
    raise UsageError(message)


def key_result_of(plan: Plan, kr_id: str) -> KeyResult:
    """The plan's KR ``kr_id``, or a usage error with a "did you mean"."""
    id_kind_of(plan, kr_id, ("key_result",))
    return plan.key_result(kr_id)


def describe_database_url(url: str) -> str:
    """The URL as it may be shown: the password masked; nothing when it does not parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def store_problem(url: str, error: BaseException) -> str:
    """A database error in one line: no SQL or parameters, the URL's password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:  # an unparsable URL has no password to mask
        password = None
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = detail[0] if detail else type(error).__name__
    if password:
        reason = reason.replace(str(password), "***")
    return reason


def _database_problem(url: str, error: BaseException) -> UsageError:
    shown = describe_database_url(url)
    reason = store_problem(url, error)
    return UsageError(f"OKR_SYNC_DATABASE_URL {shown}: cannot open the state store: {reason}")


def check_database_url(url: str) -> None:
    """Refuse a URL that cannot name a store before anything tries to connect."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    examples = "e.g. sqlite:///okr-sync.db or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"OKR_SYNC_DATABASE_URL is not a database URL ({examples})") from None
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise UsageError(
            f"OKR_SYNC_DATABASE_URL {describe_database_url(url)}: unsupported database "
            f"{backend!r}: use SQLite or PostgreSQL ({examples})"
        )
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise UsageError(
            f"OKR_SYNC_DATABASE_URL {describe_database_url(url)}: unknown driver "
            f"{parsed.drivername!r} ({examples})"
        ) from None
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not parsed.database.startswith("file:"):
        folder = Path(parsed.database).expanduser().absolute().parent
        if not folder.is_dir():
            raise UsageError(
                f"OKR_SYNC_DATABASE_URL {describe_database_url(url)}: the folder {folder} "
                "does not exist"
            )


def open_database(url: str, connect: Callable[[], _T]) -> _T:
    """``connect()`` (build a store or runtime on ``url``), with every way the database
    can be wrong or unreachable turned into one settings error."""
    from sqlalchemy.exc import DBAPIError, NoSuchModuleError

    check_database_url(url)
    try:
        return connect()
    except (DBAPIError, NoSuchModuleError, ImportError) as error:
        raise _database_problem(url, error) from None



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
    for secret in settings.secret_values():
        register_secret(secret)
    return settings


def resolve_plan(plan_path: Path | None, settings: Settings | None = None) -> tuple[Path, Plan]:
    """Load the plan, then refuse unknown ``OKR_SYNC_*`` variables (the plan may name some)."""
    from okr_sync.config.plan_loader import PlanError, load_plan

    settings = settings or load_settings()
    path = plan_path if plan_path is not None else settings.plan
    try:
        # Every source a measure names needs settings (OKR_SYNC_JIRA__<NAME>__URL...):
        # told here, with the measure's place in the file, not when a pass connects.
        loaded = load_plan(path, connectable_sources=settings.connected_sources())
    except PlanError as error:
        raise UsageError(str(error)) from None
    check_setting_names(loaded)
    return path, loaded


def plan_variables(plan: Plan) -> set[str]:
    """The environment variables the plan names (Teams Workflows ``url_env``)."""
    return {target.teams_workflow.url_env
            for targets in plan.routes.values() for target in targets
            if target.teams_workflow is not None}


def check_setting_names(plan: Plan | None, settings: Settings | None = None) -> None:
    """Refuse ``OKR_SYNC_*`` variables (environment, ``.env``) that nothing reads.

    Without a loaded plan (``status``, ``report``, ``db upgrade``), the variables of the
    settings' plan file are allowed when it loads; a broken plan does not block them.
    """
    import os

    from okr_sync.config.plan_loader import PlanError, load_plan
    from okr_sync.config.settings import (
        Settings,
        UnknownVariableError,
        check_variables,
        prefixed_names,
    )

    if plan is None and settings is not None:
        try:
            plan = load_plan(settings.plan)
        except (PlanError, OSError):
            plan = None
    env_file = Settings.model_config.get("env_file")
    names = prefixed_names(os.environ, Path(str(env_file)) if env_file else None)
    try:
        check_variables(names, plan_variables(plan) if plan is not None else ())
    except UnknownVariableError as error:
        raise UsageError(str(error)) from None


def store_settings(settings: Settings, plan_path: Path | None, *,
                   create: bool = True) -> Settings:
    """The settings whose ``database_url`` is the store of the plan ``plan_path``.

    A plan file of the ``OKR_SYNC_PLANS`` folder keeps its state in a store of its own,
    the one ``serve --plans`` runs it on (a PostgreSQL schema, or a SQLite file next to
    the configured one), so ``run``, ``status``, ``explain`` and ``checkin`` given
    ``--plan`` that file use that store. Any other plan uses the configured store.
    ``create``: create the plan's PostgreSQL schema if missing (not for a dry run).
    """
    if settings.plans is None or plan_path is None:
        return settings
    try:
        inside = plan_path.resolve().parent == settings.plans.resolve()
    except OSError:
        return settings
    if not inside:
        return settings
    from okr_sync.sync.service.plans import plan_id_of
    from okr_sync.sync.store.database import create_plan_schema, plan_store_url

    base = settings.database_url
    check_database_url(base)
    try:
        url = plan_store_url(base, plan_id_of(plan_path))
    except ValueError as error:
        raise UsageError(f"OKR_SYNC_DATABASE_URL: {error}") from None
    if create:
        open_database(base, lambda: create_plan_schema(base, url))
    return settings.model_copy(update={"database_url": url})


def check_variables_for(plans: Iterable[Plan]) -> None:
    """As :func:`check_setting_names`, for the plans of ``serve --plans`` together."""
    import os

    from okr_sync.config.settings import (
        Settings,
        UnknownVariableError,
        check_variables,
        prefixed_names,
    )

    env_file = Settings.model_config.get("env_file")
    names = prefixed_names(os.environ, Path(str(env_file)) if env_file else None)
    try:
        check_variables(names, {name for plan in plans for name in plan_variables(plan)})
    except UnknownVariableError as error:
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
        # Rich tables: imported only for them (JSON output, cron's or the harness's, never is).
        from okr_sync.cli.console import print_scorecard

        print_scorecard(scorecard, stdout.console)


def fail_usage(error: Exception) -> NoReturn:
    stderr.print(inert(str(error)), markup=False, highlight=False, emoji=False)
    raise typer.Exit(ExitCode.USAGE)
