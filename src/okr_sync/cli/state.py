"""Commands that read or write the state store: status, explain, checkin, db upgrade, report."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from okr_sync.cli.common import (
    OutputFormat,
    OutputOption,
    PlanOption,
    UsageError,
    check_setting_names,
    fail_usage,
    inert,
    key_result_of,
    load_settings,
    open_database,
    resolve_plan,
    stderr,
    stdout,
    store_settings,
)
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.sync.state import PassSnapshot
    from okr_sync.sync.store.store import Store


def open_store(database_url: str | None = None) -> Store:
    from okr_sync.sync.store.store import SchemaError, Store

    if database_url is None:
        # The commands that read only the store load no plan: names are checked here.
        settings = load_settings()
        check_setting_names(None, settings)
        database_url = settings.database_url
    url = database_url
    try:
        return open_database(url, lambda: Store(url))
    except SchemaError as error:
        raise UsageError(str(error)) from None


def _plan_store_url(plan: Path) -> str | None:
    """The store of ``plan`` when it belongs to the plans folder, else None (the default)."""
    settings = load_settings()
    if settings.plans is None:
        return None
    check_setting_names(None, settings)
    return store_settings(settings, plan).database_url


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def read_snapshot(document: Mapping[str, Any]) -> PassSnapshot:
    """A stored snapshot, or a usage error (exit 2) when this version cannot read it."""
    from okr_sync.sync.state import PassSnapshot, SnapshotError

    try:
        return PassSnapshot.from_json(document)
    except SnapshotError as error:
        raise UsageError(f"the state store's last scorecard cannot be read: {error}") from None


def status_document(store: Store, now: datetime) -> dict[str, Any]:
    """What ``status --output json`` prints: the scorecard, its freshness and deliveries."""
    snapshot = store.latest_snapshot()
    scorecard = None
    if snapshot is not None:
        scorecard = read_snapshot(snapshot.document).scorecard.to_json()
    runs = store.last_runs_by_outcome()
    summary = store.delivery_summary()
    checks = store.jql_checks()
    return {
        "scorecard": scorecard,
        "freshness": {
            "scored_at": snapshot.created_at.isoformat() if snapshot else None,
            "sources": source_freshness(store),
            "last_runs": {
                outcome: {
                    "id": run.id,
                    "kind": run.kind,
                    "started_at": run.started_at.isoformat(),
                    "ended_at": run.ended_at.isoformat() if run.ended_at else None,
                    "error": run.error_summary,
                }
                for outcome, run in runs.items()
            },
        },
        "deliveries": {
            "counts": summary.counts,
            "pending": [
                {"route": r.route, "target": r.target, "kind": r.kind, "attempts": r.attempts,
                 "last_error": r.last_error}
                for r in summary.pending
            ],
            "failed": [
                {"route": r.route, "target": r.target, "kind": r.kind, "error": r.last_error}
                for r in summary.failed
            ],
        },
        # Raw JQL answered on the issue mirror (confirmed by Jira), and raw JQL sent back
        # to Jira because the mirror's answer differed from Jira's.
        "local_jql": {
            "confirmed": [
                {"source": c.source, "owner": c.kr_id, "checked_at": c.checked_at.isoformat()}
                for c in checks if c.verdict == "match"
            ],
            "mismatches": [
                {"source": c.source, "owner": c.kr_id, "checked_at": c.checked_at.isoformat(),
                 "detail": c.detail}
                for c in checks if c.verdict == "mismatch"
            ],
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def source_freshness(store: Store) -> list[dict[str, Any]]:
    """Per Jira source: how far its mirror reaches (cursor), when it was last read, and
    since when it fails and why; one failing source leaves the others' freshness alone."""
    cursors = {c.source: c for c in store.list_cursors()}
    health = {h.source: h for h in store.sources_health()}
    rows = []
    for name in sorted(set(cursors) | set(health)):
        cursor, state = cursors.get(name), health.get(name)
        rows.append({
            "source": name,
            "high_water_mark": _iso(cursor.high_water_mark) if cursor else None,
            "last_full_reconcile": _iso(cursor.last_full_reconcile) if cursor else None,
            "updated_at": _iso(cursor.updated_at) if cursor else None,
            "last_read_at": _iso(state.last_success_at) if state else None,
            "failing_since": _iso(state.failing_since) if state else None,
            "last_error": state.last_error if state else None,
        })
    return rows


def status_command(output: OutputOption = OutputFormat.text, plan: PlanOption = None) -> None:
    """The last scorecard from the state store, with its freshness and deliveries.

    status reads only the store: --plan matters only for a plan of the OKR_SYNC_PLANS
    folder, whose store is its own.
    """
    from rich.text import Text

    from okr_sync.cli.console import print_scorecard
    from okr_sync.scoring.scorecard import scorecard_from_json

    try:
        store = open_store(None if plan is None else _plan_store_url(plan))
    except UsageError as error:
        fail_usage(error)
    with store:
        now = datetime.now(UTC)
        try:
            doc = status_document(store, now)
        except UsageError as error:
            fail_usage(error)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return
    if doc["scorecard"] is None:
        stdout.print("no scorecard yet: run `okr-sync run` first", markup=False)
    else:
        print_scorecard(scorecard_from_json(doc["scorecard"]), stdout.console)
    fresh = doc["freshness"]
    scored = datetime.fromisoformat(fresh["scored_at"]) if fresh["scored_at"] else None
    stdout.print(f"scored {_age(scored, now)}", markup=False)
    for source in fresh["sources"]:
        mark = source["high_water_mark"]
        seen = datetime.fromisoformat(mark) if mark else None
        line = f"source {source['source']}: Jira data up to {_age(seen, now)}"
        if source["failing_since"]:
            since = datetime.fromisoformat(source["failing_since"])
            stdout.print(Text.assemble(
                ("failing: ", "red"),
                inert(f"{line}; failing since {_age(since, now)}: {source['last_error']} "
                      "(its KRs keep their last values, marked stale)")))
        else:
            stdout.print(inert(line))
    for outcome, run in sorted(fresh["last_runs"].items()):
        stdout.print(f"last {outcome} run: #{run['id']} {run['kind']} at {run['started_at']}",
                     markup=False)
    deliveries = doc["deliveries"]
    for row in deliveries["pending"]:
        stdout.print(inert(f"pending: {row['route']} -> {row['target']} ({row['kind']}, "
                           f"{row['attempts']} attempts) {row['last_error'] or ''}"))
    for row in deliveries["failed"]:
        stdout.print(Text.assemble(("failed: ", "red"),
                                   inert(f"{row['route']} -> {row['target']} ({row['kind']}): "
                                         f"{row['error']}")))
    for row in doc["local_jql"]["mismatches"]:
        stdout.print(Text.assemble(
            ("raw JQL asked from Jira: ", "yellow"),
            inert(f"{row['owner']} (source {row['source']}): the issue mirror's answer differed "
                  f"from Jira's at {row['checked_at']}: {row['detail']}")))


def checkin_command(
    kr_id: Annotated[str, typer.Argument(help="key result id")],
    value: Annotated[float | None, typer.Option("--value", help="the KR's current value")] = None,
    confidence: Annotated[
        str | None, typer.Option("--confidence", help="on_track, at_risk, off_track or blocked")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="why")] = None,
    plan: PlanOption = None,
) -> None:
    """Record a manual check-in: a value (manual KRs), a confidence, a note."""
    from okr_sync.sync.checkins import CheckinError, validate_checkin

    try:
        settings = load_settings()
        path, loaded = resolve_plan(plan, settings)
        settings = store_settings(settings, path)
        kr = key_result_of(loaded, kr_id)
        try:
            valid = validate_checkin(kr, value=value, confidence=confidence, note=note)
        except CheckinError as error:
            raise UsageError(str(error)) from None
        store = open_store(settings.database_url)
    except UsageError as error:
        fail_usage(error)
    for warning in valid.warnings:
        stderr.print(f"warning: {kr_id}: {warning}", markup=False, highlight=False)
    with store:
        record = store.add_checkin(kr_id, value=valid.value, confidence=valid.confidence,
                                   note=valid.note, author=_author())
    stdout.print(f"checked in {kr_id} at {record.at.isoformat()}", markup=False)


def _author() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def db_upgrade_command(plan: PlanOption = None) -> None:
    """Apply state-store migrations (--plan is accepted and not needed); with
    OKR_SYNC_PLANS, also to the store of every plan of that folder."""
    from okr_sync.sync.store.store import SchemaError, upgrade

    del plan
    try:
        settings = load_settings()
        check_setting_names(None, settings)
        url = settings.database_url
        open_database(url, lambda: upgrade(url))
        upgraded = _upgrade_plan_stores(settings.plans, url)
    except UsageError as error:
        fail_usage(error)
    except SchemaError as error:
        stderr.print(str(error), markup=False)
        raise typer.Exit(ExitCode.USAGE) from None
    for plan_id in upgraded:
        stdout.print(f"state store of plan {plan_id} is up to date", markup=False)
    stdout.print("state store is up to date", markup=False)


def _upgrade_plan_stores(folder: Path | None, base: str) -> list[str]:
    """With ``OKR_SYNC_PLANS``: the store of every plan file of the folder too (each plan
    of ``serve --plans`` has its own; ``serve`` migrates only an empty one)."""
    if folder is None:
        return []
    from okr_sync.sync.service.plans import PlanFolderError, plan_files, plan_id_of
    from okr_sync.sync.store.database import create_plan_schema, plan_store_url
    from okr_sync.sync.store.store import upgrade

    try:
        files = plan_files(folder)
    except PlanFolderError as error:
        raise UsageError(str(error)) from None
    done = []
    for plan_id in sorted({plan_id_of(path) for path in files}):
        try:
            url = plan_store_url(base, plan_id)
        except ValueError as error:
            raise UsageError(f"OKR_SYNC_DATABASE_URL: {error}") from None

        def migrate(url: str = url) -> None:
            create_plan_schema(base, url)
            upgrade(url)

        open_database(base, migrate)
        done.append(plan_id)
    return done


class ReportFormat(StrEnum):
    html = "html"
    json = "json"
    csv = "csv"


def report_command(
    output: Annotated[Path, typer.Option("--output", help="FILE.html (or .json, .csv)")],
    fmt: Annotated[ReportFormat, typer.Option(
        "--format", help="html: the scorecard page; json or csv: the same data for "
                         "spreadsheets")] = ReportFormat.html,
    plan: PlanOption = None,
) -> None:
    """Write a self-contained HTML scorecard from the last pass (or its data as JSON/CSV)."""
    from okr_sync.sync.delivery.render.report import (
        NoScorecardError,
        load_report_data,
        render_html_report,
        report_csv,
        report_json,
    )
    from okr_sync.sync.state import SnapshotError

    try:
        _check_writable(output)
        settings = load_settings()
        path = plan if plan is not None else settings.plan
        # The plan adds owners, units and thresholds; a report of the store alone
        # is still worth having when the plan file is not at hand.
        loaded = resolve_plan(plan, settings)[1] if path.exists() else None
        if loaded is not None:
            # A plan of the OKR_SYNC_PLANS folder reports from its own store.
            settings = store_settings(settings, path)
        store = open_store(settings.database_url if loaded is not None else None)
    except UsageError as error:
        fail_usage(error)
    with store:
        try:
            data = load_report_data(store, loaded, jira_sites=settings.jira_sites(),
                                    source_sites=settings.jira_source_sites())
        except NoScorecardError as error:
            fail_usage(UsageError(str(error)))
        except SnapshotError as error:
            fail_usage(UsageError(f"the state store's last scorecard cannot be read: {error}"))
    render = {ReportFormat.html: render_html_report, ReportFormat.json: report_json,
              ReportFormat.csv: report_csv}[fmt]
    try:
        output.write_text(render(data), "utf-8")
    except OSError as error:
        fail_usage(UsageError(f"cannot write the report to {output}: {error.strerror or error}"))
    stdout.print(f"wrote {output}", markup=False)


def _check_writable(path: Path) -> None:
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"cannot write the report to {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write the report to {path}: it is a folder")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise UsageError(f"cannot write the report to {path}: permission denied")
