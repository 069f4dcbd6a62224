"""``okr-sync demo``: the whole flow against the built-in sandboxes, no credentials needed."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from okr_sync.cli.common import UsageError, fail_usage, inert, resolve_plan, stdout
from okr_sync.exit_codes import ExitCode
from okr_sync.scoring.display import percent

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.sync.pipeline import PassResult
    from okr_sync.sync.sandbox_world import SandboxWorld


def _deliveries(result: PassResult) -> None:
    if not result.scorecard.deliveries:
        stdout.print("nothing to post: no KR moved enough to be news", markup=False)
    for d in result.scorecard.deliveries:
        stdout.print(f"  {d.action:<6} {d.target:<48} {d.status}", markup=False)


def progress_in_jira(world: SandboxWorld) -> list[str]:
    """A realistic half hour in Jira: work finished, one reopened, one moved, scope added."""
    data = world.dataset
    data.advance(timedelta(minutes=30))
    done: list[str] = []
    issues = sorted(data.issues.values(), key=lambda i: i.id)
    on_call = [i for i in issues if i.project == "OPS" and "on-call" in i.labels
               and i.status_category != "done" and not i.is_subtask]
    for issue in on_call[:4]:
        data.transition(issue.id, "done")
        done.append(f"finished {issue.key}")
    sso = [i for i in issues if i.project == "ENT" and "sso" in i.labels and i.story_points
           and i.status_category != "done" and not i.is_subtask]
    for issue in sso[:3]:
        data.transition(issue.id, "done")
        done.append(f"finished {issue.key} ({issue.story_points:g} pts)")
    finished = [i for i in issues if i.project == "ENT" and "security" in i.labels
                and i.status_category == "done" and not i.is_subtask and i.story_points]
    if finished:
        data.reopen(finished[0].id)
        done.append(f"reopened {finished[0].key}")
    movable = [i for i in issues if i.project == "OPS" and "on-call" in i.labels
               and not i.is_subtask and i.status_category != "done"]
    if len(movable) > 4:
        old_key = movable[4].key
        moved = data.move(movable[4].id, "SUP")
        done.append(f"moved {old_key} to {moved.key}")
    return done


DEFAULT_DIR = Path("okr-sync-demo")
PLAN_FILE = "okr-plan.yaml"
DATABASE_FILE = "okr-sync.db"
REPORT_FILE = "okr-sync-report.html"
#: What the demo writes into its folder's `.env`: only where the plan and the state are,
#: so `status`, `explain` and `report` run there after the sandboxes are gone.
ENV_TEXT = f"""\
# Written by `okr-sync demo`: okr-sync run from this folder reads the demo's plan and state.
# No secret here: the demo's sandbox tokens lived only while it ran (loopback, per run).
OKR_SYNC_PLAN={PLAN_FILE}
OKR_SYNC_DATABASE_URL=sqlite:///{DATABASE_FILE}
"""


def _demo_plan_text() -> str:
    source = resources.files("okr_sync.config").joinpath("examples", "demo.yaml")
    return source.read_text("utf-8")


def prepare_folder(folder: Path, plan_text: str) -> Path:
    """Write the plan and `.env` into ``folder`` and drop the state of an earlier demo.

    The sandbox Jira is seeded afresh on every run, so an earlier run's state (cursors,
    standing-message ids of sandboxes that are gone) would not match it: a second demo
    in the same folder starts over. Returns the plan's path.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        plan_path = folder / PLAN_FILE
        plan_path.write_text(plan_text, "utf-8")
        (folder / ".env").write_text(ENV_TEXT, "utf-8")
        for suffix in ("", "-journal", "-wal", "-shm"):
            (folder / f"{DATABASE_FILE}{suffix}").unlink(missing_ok=True)
    except OSError as error:
        raise UsageError(f"cannot use {folder} for the demo: {error.strerror or error}") from None
    return plan_path


def next_commands(plan: Plan) -> list[str]:
    """The commands that work in the demo folder once the demo has exited: they read only
    the plan and the store (``run`` would need the sandbox Jira, which is gone)."""
    measured = [kr.id for _, kr in plan.key_results() if kr.measure.kind != "manual"]
    explained = measured[0] if measured else next(kr.id for _, kr in plan.key_results())
    return ["okr-sync status", f"okr-sync explain {shlex.quote(explained)}",
            f"okr-sync report --output {REPORT_FILE}"]


def _show_posted(world: SandboxWorld) -> None:
    """The standing Slack message and Teams card as the sandboxes received them."""
    from rich.rule import Rule
    from rich.text import Text

    from okr_sync.cli.payload_text import adaptive_card_as_text, slack_blocks_as_text
    from okr_sync.sync.sandbox_world import DEMO_CHANNEL, DEMO_CONVERSATION

    top = world.slack.top_level(DEMO_CHANNEL)
    if top:
        stdout.print(Rule(f"the standing Slack message in {DEMO_CHANNEL}, as text"))
        lines = slack_blocks_as_text(top[0].blocks) if top[0].blocks else [top[0].text]
        for line in lines:
            stdout.print(Text(inert(line)))
    activities = world.teams.activities(DEMO_CONVERSATION)
    cards = activities[0].cards if activities else []
    if cards:
        stdout.print(Rule("the standing Teams card, as text"))
        for line in adaptive_card_as_text(cards[0]):
            stdout.print(Text(inert(line)))


def report_html(database_url: str, plan: Plan, jira_url: str) -> str:
    """The HTML report of the demo's latest pass: the demo's one call of the report renderer."""
    from okr_sync.sync.delivery.render.report import load_report_data, render_html_report
    from okr_sync.sync.store.store import Store

    with Store(database_url) as store:
        return render_html_report(load_report_data(store, plan, jira_sites=[jira_url]))


def _serve(world: SandboxWorld, plan: Plan, port: int) -> int:
    """`serve` against the sandboxes, which stay up until it stops (Ctrl-C, SIGTERM), with
    the HTML report of the latest pass on ``/`` and ``/report``."""
    from rich.rule import Rule

    from okr_sync.sync.service.app import ServiceHandle, serve
    from okr_sync.sync.service.schedule import Schedule

    def started(handle: ServiceHandle) -> None:
        stdout.print(Rule("okr-sync serve on the sandboxes (Ctrl-C stops)"))
        for path in SERVED_PATHS:
            stdout.print(f"  {handle.url}{path}", markup=False)
        sys.stdout.flush()  # piped output is block-buffered; the URLs are wanted now

    return serve(lambda: world.runtime(plan), Schedule.parse(None, None), port=port,
                 host="127.0.0.1", on_started=started)


#: What `demo --serve` prints: the pages of `serve` worth opening in a browser.
SERVED_PATHS = ("/", "/report", "/metrics", "/healthz")


def demo_command(
    issues: Annotated[int, typer.Option("--issues", help="size of the sandbox dataset")] = 600,
    plan_path: Annotated[
        Path | None, typer.Option("--plan", help="plan to run instead of the built-in demo")
    ] = None,
    folder: Annotated[
        Path, typer.Option("--dir", help="folder for the demo's plan, .env, state and report")
    ] = DEFAULT_DIR,
    serve: Annotated[
        bool, typer.Option("--serve", help="keep the sandboxes up and run serve on them")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="serve's HTTP port (0: any free)")
    ] = 8080,
) -> None:
    """Run the whole flow on the built-in sandbox in --dir: sync, change Jira, sync again."""
    from rich.rule import Rule
    from rich.text import Text

    from okr_sync.cli.console import print_scorecard
    from okr_sync.config.plan_loader import PlanError, load_plan
    from okr_sync.sync.pipeline import PassOptions
    from okr_sync.sync.sandbox_world import DEMO_CHANNEL, sandbox_world

    try:
        plan_text = _demo_plan_text() if plan_path is None else _user_plan_text(plan_path)
        written = prepare_folder(folder, plan_text)
        plan = load_plan(written)
    except (UsageError, PlanError) as error:
        fail_usage(error)
    workdir = folder.absolute()
    with sandbox_world(workdir, issues=issues) as world:
        runtime = world.runtime(plan)
        try:
            stdout.print(Rule("pass 1: first sync of a seeded Jira"))
            first = runtime.run_locked(PassOptions())
            print_scorecard(first.scorecard, stdout.console)
            stdout.print(f"{first.jira_requests} Jira requests; posted:", markup=False)
            _deliveries(first)

            stdout.print(Rule("pass 2: nothing changed"))
            second = runtime.run_locked(PassOptions())
            stdout.print(f"{second.jira_requests} Jira requests; posted:", markup=False)
            _deliveries(second)

            stdout.print(Rule("meanwhile in Jira"))
            for line in progress_in_jira(world):
                stdout.print(f"  {line}", markup=False)

            stdout.print(Rule("pass 3: the standing messages are edited, news is noted"))
            third = runtime.run_locked(PassOptions())
            for change in third.scorecard.changes:
                stdout.print(Text(f"  {change.kr}: {_pct(change.from_score)} -> "
                                  f"{_pct(change.to_score)}  ({', '.join(change.reasons)})"))
            _deliveries(third)
            top = world.slack.top_level(DEMO_CHANNEL)
            if top:
                replies = world.slack.replies(DEMO_CHANNEL, top[0].ts)
                stdout.print(Rule("the change note in Slack (thread reply)"))
                for reply in replies:
                    stdout.print(Text(reply.text))
                stdout.print(f"standing Slack message edited {len(top[0].edits)} time(s); "
                             f"{len(json.dumps(top[0].blocks))} bytes of blocks",
                             markup=False)
            _show_posted(world)
        finally:
            runtime.close()
        report = workdir / REPORT_FILE
        report.write_text(report_html(world.database_url, plan, world.jira.url), "utf-8")
        stdout.print(Rule("what the demo left behind"))
        stdout.print(f"HTML report: {report}", markup=False)
        stdout.print(f"{NEXT_HEADING} {shlex.quote(str(folder))}/ (they read the state kept "
                     "there):", markup=False)
        stdout.print(f"  cd {shlex.quote(str(folder))}", markup=False)
        for command in next_commands(plan):
            stdout.print(f"  {command}", markup=False)
        live = "okr-sync demo --serve" + (
            "" if folder == DEFAULT_DIR else f" --dir {shlex.quote(str(folder))}")
        stdout.print(f"the live version (sandboxes kept up, serve on them): {live}",
                     markup=False)
        failures = first.failures + second.failures + third.failures
        if serve:
            sys.stdout.flush()
            try:
                raise typer.Exit(_serve(world, plan, port))
            except OSError as error:
                fail_usage(error)
    raise typer.Exit(ExitCode.OK if not failures else third.exit_code or ExitCode.FAILURES)


#: Starts the line after which the demo lists the commands to try (tests look for it).
NEXT_HEADING = "next: try these in"


def _user_plan_text(path: Path) -> str:
    resolve_plan(path)  # a bad plan is refused (exit 2) before the folder is touched
    try:
        return path.read_text("utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def _pct(score: float | None) -> str:
    return percent(score, missing="new")

