"""``okr-sync recommend --cycle NEXT.yaml``: next cycle's targets from throughput history.

Reads NEXT.yaml (the next cycle's plan, or a draft copy) and the score history of earlier
cycles in the state store; writes a plan *draft* (``NEXT.recommended.yaml`` beside it, or
``--output``) in which each Jira KR with history gets its stretch target, with comments
saying where every number comes from. NEXT.yaml and the live plan are never written: the
draft is a ruamel round trip of NEXT.yaml, so its comments and layout stay.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from okr_sync.cli.common import (
    PlanOption,
    UsageError,
    fail_usage,
    load_settings,
    resolve_plan,
    stdout,
    unknown_id_message,
)

if TYPE_CHECKING:
    from okr_sync.config.plan import KeyResult, Plan
    from okr_sync.scoring.recommend import Direction, NoRecommendation, Recommendation
    from okr_sync.sync.store.store import Store

#: Earlier cycles whose history a recommendation draws from (the most recent ones).
CYCLES_USED = 2
#: Simulated next cycles per KR.
RUNS = 1000
#: The first line of every draft begins with this; only such a file is ever overwritten.
DRAFT_HEADER = "# Draft by `okr-sync recommend`"


def recommend_command(
    cycle: Annotated[Path, typer.Option(
        "--cycle", help="the next cycle's plan (or a draft copy of it); never changed")],
    output: Annotated[Path | None, typer.Option(
        "--output", help="the draft to write (default: NEXT.recommended.yaml beside it)")] = None,
    kr: Annotated[list[str] | None, typer.Option(
        "--kr", help="recommend for this KR only (repeatable)")] = None,
    plan: PlanOption = None,
) -> None:
    """Propose next cycle's targets from the throughput of earlier cycles (a plan draft)."""
    from okr_sync.cli.state import open_store

    try:
        settings = load_settings()
        live = plan if plan is not None else settings.plan
        _path, next_plan = resolve_plan(cycle, settings)
        draft = output if output is not None else cycle.with_name(
            f"{cycle.stem}.recommended{cycle.suffix or '.yaml'}")
        for protected, what in ((cycle, "--cycle file"), (live, "live plan")):
            if draft.resolve() == protected.resolve():
                raise UsageError(f"--output {draft} is the {what}: recommend never changes "
                                 "it; give another file")
        _check_draft_path(draft, settings.plans)
        chosen = _chosen(next_plan, kr or [], cycle)
        store = open_store(settings.database_url)
    except UsageError as error:
        fail_usage(error)
    with store:
        try:
            results = recommendations(store, next_plan, chosen)
            text = draft_text(cycle.read_text(encoding="utf-8"), next_plan, results)
            _check_draft(text, draft)
            draft.write_text(text, encoding="utf-8")
        except (UsageError, OSError) as error:
            fail_usage(UsageError(str(error)))
    _print(results, next_plan, draft)


def _chosen(plan: Plan, given: Sequence[str], path: Path) -> list[KeyResult]:
    from okr_sync.config.plan import ManualMeasure

    krs = {kr.id: kr for _, kr in plan.key_results()}
    for kr_id in given:
        if kr_id not in krs:
            raise UsageError(unknown_id_message("key result", kr_id, krs)
                             + f" (not in {path})")
    chosen = [krs[i] for i in given] if given else list(krs.values())
    jira = [kr for kr in chosen if not isinstance(kr.measure, ManualMeasure)]
    if not jira:
        raise UsageError(f"{path} has no Jira-measured key result to recommend a target for")
    return jira


def recommendations(store: Store, plan: Plan, krs: Sequence[KeyResult]
                    ) -> list[Recommendation | NoRecommendation]:
    """One result per KR; raises :class:`UsageError` when no KR has any history."""
    from okr_sync.scoring.forecast import Measurement, daily_series
    from okr_sync.scoring.recommend import NoRecommendation, recommend_target

    name = plan.cycle.name
    scores = store.final_scores_by_cycle([kr.id for kr in krs])
    by_cycle: dict[str, Mapping[str, Any]] = {}
    days = (plan.cycle.end - plan.cycle.start).days + 1
    results: list[Recommendation | NoRecommendation] = []
    for kr in krs:
        past = {c: s for c, s in scores.get(kr.id, {}).items() if c != name}
        cycles = list(past)[-CYCLES_USED:]
        if not cycles:
            results.append(NoRecommendation(kr.id, "no history of earlier cycles in the store "
                                                   "(run passes or backfill first)"))
            continue
        series = []
        for c in cycles:
            if c not in by_cycle:
                by_cycle[c] = store.history_for_cycle(c, plan.cycle.zone)
            rows = [Measurement(r.as_of, r.value) for r in by_cycle[c].get(kr.id, ())
                    if r.value is not None]
            series.append((c, daily_series(rows, plan.cycle.zone)))
        unfit = _unfit(kr)
        if unfit is not None:
            results.append(NoRecommendation(kr.id, unfit, _too_easy(past)))
            continue
        last = series[-1][1][-1].value if series[-1][1] else 0.0
        start = kr.baseline if kr.baseline is not None else last
        results.append(recommend_target(kr.id, _direction(kr), start, series, days, RUNS, name,
                                        list(past.values())))
    if all(isinstance(r, NoRecommendation) and r.reason.startswith("no history")
           for r in results):
        raise UsageError(f"no score history of earlier cycles in the state store for "
                         f"{', '.join(kr.id for kr in krs)}: run passes in a cycle (or "
                         "`okr-sync backfill`) before recommending the next one's targets")
    return results


def _too_easy(past: Mapping[str, float]) -> bool:
    from okr_sync.scoring.rules import is_too_easy

    return is_too_easy(list(past.values()))


def _unfit(kr: KeyResult) -> str | None:
    """Why a KR's target is not one throughput can propose, if it is not."""
    if kr.measure.kind in ("done_ratio", "milestone"):
        return ("its target is a share of its scope (1 = all done): size next cycle's scope "
                "instead")
    if kr.range_target is not None:
        return "a range is a band to stay within, not a throughput target"
    if kr.milestones:
        return "phased targets: set the milestones and the target by hand"
    return None


def _direction(kr: KeyResult) -> Direction:
    if kr.direction == "at_most":
        return "decrease"
    if kr.direction == "at_least":
        return "increase"
    target = kr.effective_target
    return "decrease" if target is not None and target < kr.effective_baseline else "increase"


def shown_target(value: float, kind: str) -> float | int:
    """A count is whole; anything else keeps 2 decimals."""
    return round(value) if kind == "count" else round(value, 2)


def draft_text(source: str, plan: Plan, results: Sequence[Recommendation | NoRecommendation]
               ) -> str:
    """NEXT.yaml's text with each recommended target written in, and comments."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    from okr_sync.scoring.recommend import Recommendation

    # The draft keeps NEXT.yaml's layout: its indentation, and long lines left unwrapped.
    _data, indent, offset = load_yaml_guess_indent(source)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=max(2, indent - offset), sequence=indent, offset=offset)
    data = yaml.load(source)
    kinds = {kr.id: kr for _, kr in plan.key_results()}
    nodes = {str(k["id"]): k for o in data.get("objectives", [])
             for k in o.get("key_results", [])}
    for result in results:
        node = nodes[result.kr_id]
        if node.fa.flow_style():
            node.fa.set_block_style()
        kr = kinds[result.kr_id]
        flag = " TOO EASY: scored 1.0 in each of the last two cycles." if result.too_easy else ""
        if not isinstance(result, Recommendation):
            node.yaml_add_eol_comment(f"recommend: not proposed, {result.reason}.{flag}", "id")
            continue
        stretch = shown_target(result.stretch, kr.measure.kind)
        safe = shown_target(result.safe, kr.measure.kind)
        start = shown_target(result.start, kr.measure.kind)
        if stretch == start:
            node.yaml_add_eol_comment(
                "recommend: not proposed, no throughput in earlier cycles moves it from "
                f"{start}.{flag}", "id")
            continue
        source_note = (f"recommend: {result.runs} simulated {result.days}-day cycles from "
                       f"{start}, drawing the daily changes of {', '.join(result.cycles)} "
                       f"({result.observed_days} days, {result.mean_daily:+.4g}/day on "
                       f"average).{flag}")
        node.yaml_add_eol_comment(source_note, "id")
        if kr.direction is None and kr.baseline is None:
            node.insert(list(node).index("measure") + 1, "baseline", start,
                        comment="recommend: where the last cycle ended")
        was = f" (was {node['target']})" if "target" in node else ""
        node["target"] = stretch
        node.yaml_add_eol_comment(
            f"recommend: stretch, reached in 30% of runs; safe {safe} is reached in 70%{was}",
            "target")
    # Above NEXT.yaml's own opening comments, which stay as they were.
    buffer = io.StringIO(f"{DRAFT_HEADER} at "
                         f"{datetime.now(UTC).isoformat(timespec='seconds')}: review it, then"
                         " copy what you keep into the plan.\n")
    buffer.seek(0, io.SEEK_END)
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _check_draft_path(draft: Path, plans: Path | None) -> None:
    """Refuse a draft where it would be run or would replace a file that is not a draft.

    ``serve --plans`` runs every ``*.yaml`` in its folder, so a draft there would post its
    draft targets as a live plan; and any other existing file may be someone's plan.
    """
    if plans is not None and draft.resolve().is_relative_to(plans.resolve()):
        raise UsageError(f"the draft {draft} would be inside the plans folder {plans} "
                         "(OKR_SYNC_PLANS), where `serve --plans` would run it as a live "
                         "plan; give --output outside that folder")
    if draft.exists():
        try:
            with draft.open(encoding="utf-8") as existing:
                first = existing.read(len(DRAFT_HEADER))
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the existing {draft}: {error}") from None
        if first != DRAFT_HEADER:
            raise UsageError(f"{draft} exists and is not a draft by `okr-sync recommend` "
                             "(it may be a plan): recommend overwrites only its own drafts; "
                             "give another --output or remove the file")


def _check_draft(text: str, draft: Path) -> None:
    from okr_sync.config.plan_loader import PlanError, load_plan_text

    try:
        load_plan_text(text, name=str(draft))
    except PlanError as error:
        raise UsageError(f"the draft would not be a valid plan, nothing written:\n{error}"
                         ) from None


def _print(results: Sequence[Recommendation | NoRecommendation], plan: Plan,
           draft: Path) -> None:
    from rich.table import Table

    from okr_sync.scoring.recommend import Recommendation

    kinds = {kr.id: kr.measure.kind for _, kr in plan.key_results()}

    table = Table("KR", "from", "stretch (30%)", "safe (70%)", "note", header_style="bold")
    for r in results:
        easy = "too easy; " if r.too_easy else ""
        if isinstance(r, Recommendation):
            kind = kinds[r.kr_id]
            table.add_row(r.kr_id, f"{shown_target(r.start, kind):g}",
                          f"{shown_target(r.stretch, kind):g}",
                          f"{shown_target(r.safe, kind):g}",
                          easy + f"from {', '.join(r.cycles)}")
        else:
            table.add_row(r.kr_id, "-", "-", "-", easy + r.reason)
    stdout.print(table)
    stdout.print(f"draft written to {draft} (the plan itself is unchanged)")
