"""``okr-sync demo``: the whole flow against the built-in sandboxes, no credentials needed."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.rule import Rule
from rich.text import Text

from okr_sync.cli.common import UsageError, fail_usage, resolve_plan, stdout
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.sync.pipeline import PassResult
    from okr_sync.sync.sandbox_world import SandboxWorld


def demo_plan() -> Plan:
    from okr_sync.config.plan_loader import load_plan

    source = resources.files("okr_sync.config").joinpath("examples", "demo.yaml")
    with resources.as_file(source) as path:
        return load_plan(path)


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


def demo_command(
    issues: Annotated[int, typer.Option("--issues", help="size of the sandbox dataset")] = 600,
    plan_path: Annotated[
        Path | None, typer.Option("--plan", help="plan to run instead of the built-in demo")
    ] = None,
) -> None:
    """Run the whole flow on the built-in sandbox: sync, change Jira, sync again."""
    from okr_sync.cli.console import print_scorecard
    from okr_sync.sync.pipeline import PassOptions
    from okr_sync.sync.sandbox_world import DEMO_CHANNEL, sandbox_world

    try:
        plan = demo_plan() if plan_path is None else resolve_plan(plan_path)[1]
    except UsageError as error:
        fail_usage(error)
    with (
        tempfile.TemporaryDirectory(prefix="okr-sync-demo-") as workdir,
        sandbox_world(Path(workdir), issues=issues) as world,
    ):
        runtime = world.runtime(plan)
        try:
            stdout.print(Rule("pass 1: first sync of a seeded Jira"))
            first = runtime.run_locked(PassOptions())
            print_scorecard(first.scorecard, stdout)
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
        finally:
            runtime.close()
    failures = first.failures + second.failures + third.failures
    raise typer.Exit(ExitCode.OK if not failures else third.exit_code or ExitCode.FAILURES)


def _pct(score: float | None) -> str:
    return "new" if score is None else f"{score * 100:.0f}%"

