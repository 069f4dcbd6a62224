"""The benchmark harness's bookkeeping: scenario selection, merging results files, the
report (no measurement here: the passes are stand-ins, and nothing asserts a time)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import harness, minimum, run
from benchmarks.report import peak_text, render, write_report
from benchmarks.results import SCENARIOS, load_results, normalize, parse_scenarios
from benchmarks.targets import rss_flat

OLD_COMMIT, NEW_COMMIT = "0ld0001", "new0002"


def _pass(requests: int) -> dict[str, Any]:
    return {"exit_code": 0, "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 100.0,
            "measure_cpu_s": 0.1, "jira": {"search/jql": requests}, "jira_total": requests,
            "slack": 0, "teams": 0}


def _hooks(passes: int, first: float = 100.0, last: float = 105.0) -> dict[str, Any]:
    return {"passes": passes, "cpu_s_median": 0.5, "cpu_s_mean": 0.5, "cpu_s_max": 0.6,
            "measure_cpu_s_median": 0.2, "measure_cpu_s_max": 0.3, "duration_s_median": 1.0,
            "jira_mean": 18.0, "jira": {"search/jql": 18.0}, "slack_total": 0,
            "teams_total": 0, "rss_mb_before": 90.0, "rss_mb_first_pass": first,
            "rss_mb_middle": first, "rss_mb_last": last, "peak_rss_mb": last}


def _first_format(issues: int = 2000) -> dict[str, Any]:
    """A results file as the harness wrote it before scenarios could be selected."""
    repeat = {name: _pass(10) for name in ("cold", "no_change", "changed_1pct", "resync_full")}
    return {"issues": issues, "seed": 1, "latency_s": 0.02, "key_results": 400, "routes": 30,
            "started": "2026-12-01T10:00:00+00:00", "finished": "2026-12-01T11:00:00+00:00",
            "commit": OLD_COMMIT, "load_before": [1.0, 1.0, 1.0],
            "load_after": [1.0, 1.0, 1.0], "repeats": [repeat, repeat],
            "naive": [_pass(400)], "webhooks": _hooks(10), "complete": True}


def _args(**changes: Any) -> argparse.Namespace:
    values = {"repeats": 2, "naive_repeats": 1, "webhooks": 5, "seed": 1, "latency": 0.0,
              "force": False} | changes
    return argparse.Namespace(**values)


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The harness's measuring functions replaced: what each was asked is recorded."""
    calls: dict[str, list[Any]] = {"passes": [], "naive": [], "webhooks": []}

    @contextmanager
    def world(*_args: Any, **_kwargs: Any) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(plan_path=Path("plan.yaml"), dataset=[])

    def pass_scenarios(_w: Any, _db: Path, _seed: int, _repeat: int,
                       wanted: tuple[str, ...]) -> dict[str, Any]:
        calls["passes"].append(wanted)
        return {name: _pass(20) for name in wanted}

    def run_naive(_w: Any, name: str) -> dict[str, Any]:
        calls["naive"].append(name)
        return _pass(500)

    def webhook_passes(_w: Any, _db: Path, count: int, _seed: int) -> dict[str, Any]:
        calls["webhooks"].append(count)
        return _hooks(count)

    monkeypatch.setattr(harness, "world", world)
    monkeypatch.setattr(harness, "pass_scenarios", pass_scenarios)
    monkeypatch.setattr(harness, "run_naive", run_naive)
    monkeypatch.setattr(harness, "webhook_passes", webhook_passes)
    monkeypatch.setattr(minimum, "plan_minimum", lambda _plan, _dataset: {
        "in_scope_issues": 2000, "issue_pages": 20, "remote_queries": 2, "volatile_queries": 1,
        "requests": 22})
    monkeypatch.setattr("okr_sync.config.plan_loader.load_plan", lambda _path: None)
    monkeypatch.setattr(run, "current_commit", lambda: NEW_COMMIT)
    return calls


def test_parse_scenarios_given_comma_list_keeps_run_order_and_all_means_every_one() -> None:
    assert parse_scenarios("webhooks, cold") == ("cold", "webhooks")
    assert parse_scenarios("all") == SCENARIOS
    assert parse_scenarios("") == SCENARIOS


def test_parse_scenarios_given_unknown_name_refuses_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown scenario.*colt.*changed_1pct"):
        parse_scenarios("colt,naive")


def test_normalize_given_first_format_file_gives_every_scenario_the_files_commit() -> None:
    data = normalize(_first_format())
    assert set(data["scenarios"]) == {"cold", "no_change", "changed_1pct", "resync_full",
                                      "naive", "webhooks"}
    assert {e["commit"] for e in data["scenarios"].values()} == {OLD_COMMIT}
    assert len(data["scenarios"]["cold"]["runs"]) == 2
    assert data["scenarios"]["webhooks"]["summary"]["passes"] == 10


def test_measure_size_given_some_scenarios_replaces_them_and_keeps_the_others(
    tmp_path: Path, stand_ins: dict[str, list[Any]],
) -> None:
    (tmp_path / "size-2000.json").write_text(json.dumps(_first_format()))
    run.measure_size(2000, _args(), ("no_change", "webhooks"), tmp_path)
    data = load_results(tmp_path)[2000]
    scenarios = data["scenarios"]
    # Only what was asked ran (the cold pass is the setup of every pass scenario).
    assert stand_ins["passes"] == [("no_change",), ("no_change",)]
    assert (stand_ins["naive"], stand_ins["webhooks"]) == ([], [5])
    assert scenarios["no_change"]["commit"] == NEW_COMMIT
    assert [r["jira_total"] for r in scenarios["no_change"]["runs"]] == [20, 20]
    assert scenarios["webhooks"]["commit"] == NEW_COMMIT
    assert scenarios["webhooks"]["summary"]["passes"] == 5
    for kept in ("cold", "changed_1pct", "resync_full", "naive"):
        assert scenarios[kept]["commit"] == OLD_COMMIT
        assert scenarios[kept]["started"] == "2026-12-01T10:00:00+00:00"
    assert [r["jira_total"] for r in scenarios["cold"]["runs"]] == [10, 10]


def test_measure_size_given_scenario_measured_in_full_at_this_commit_skips_it(
    tmp_path: Path, stand_ins: dict[str, list[Any]],
) -> None:
    run.measure_size(2000, _args(), ("cold", "naive"), tmp_path)
    run.measure_size(2000, _args(), ("cold", "naive", "resync_full"), tmp_path)
    assert stand_ins["passes"] == [("cold",), ("cold",), ("resync_full",), ("resync_full",)]
    assert stand_ins["naive"] == ["naive-0"]
    run.measure_size(2000, _args(force=True), ("naive",), tmp_path)
    assert stand_ins["naive"] == ["naive-0", "naive-0"]


def test_render_given_one_sizes_scenarios_from_two_commits_says_so(
    tmp_path: Path, stand_ins: dict[str, list[Any]],
) -> None:
    (tmp_path / "size-2000.json").write_text(json.dumps(_first_format()))
    run.measure_size(2000, _args(), ("webhooks",), tmp_path)
    text = render(load_results(tmp_path), {}, "<!-- analysis -->\n<!-- /analysis -->")
    assert f"come from different commits** ({OLD_COMMIT}, {NEW_COMMIT})" in text
    assert f"- webhook passes in `serve`: {NEW_COMMIT}," in text
    assert f"- cold pass, no-change pass, 1 %-changed pass, `resync --full`, naive script: " \
           f"{OLD_COMMIT}, 2026-12-01T10:00:00+00:00 to 2026-12-01T11:00:00+00:00" in text


def test_write_report_given_existing_analysis_block_keeps_it(tmp_path: Path) -> None:
    report = tmp_path / "RESULTS.md"
    analysis = "<!-- analysis -->\nWhy the 50k pass is slow: ...\n<!-- /analysis -->"
    report.write_text(f"# old\n\nold tables\n\n{analysis}\n\nold start-up\n")
    results = {2000: normalize(_first_format())}
    write_report(results, {}, report, {})
    text = report.read_text()
    assert text.count(analysis) == 1
    assert "old tables" not in text


def test_main_given_results_dir_writes_its_report_there(tmp_path: Path) -> None:
    committed = run.HERE / "RESULTS.md"
    before = committed.read_bytes() if committed.exists() else None
    (tmp_path / "size-2000.json").write_text(json.dumps(_first_format()))
    assert run.main(["--report-only", "--results-dir", str(tmp_path)]) == 0
    assert "## 2,000 issues" in (tmp_path / "RESULTS.md").read_text()
    assert (committed.read_bytes() if committed.exists() else None) == before


def test_rss_flat_given_last_pass_within_10_percent_of_the_first_is_flat() -> None:
    assert rss_flat(_hooks(100, first=200.0, last=220.0))
    assert not rss_flat(_hooks(100, first=200.0, last=220.5))


def _fingerprint(dataset: Any) -> tuple[Any, ...]:
    return dataset.now(), tuple(sorted(
        (r.id, r.key, r.updated, r.status, r.story_points, tuple(r.labels)) for r in dataset))


def test_pass_scenarios_given_repeats_each_starts_from_the_same_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, tuple[Any, ...]]] = []

    def run_okr_sync(w: Any, _db: Path, _argv: list[str], name: str) -> dict[str, Any]:
        seen.append((name, _fingerprint(w.dataset)))
        return _pass(1)

    monkeypatch.setattr(harness, "run_okr_sync", run_okr_sync)
    with harness.world(tmp_path, seed=3, issues=150, shape=harness.PlanShape(),
                       latency=0) as w:
        for repeat in range(2):
            harness.pass_scenarios(w, tmp_path / f"r{repeat}.db", 3, repeat)

    starts = [print_ for name, print_ in seen if name.endswith("-cold")]
    assert len(starts) == 2 and starts[0] == starts[1]
    # The scenarios between did change and age it (the restore had work to do).
    assert seen[-1][1] != starts[0]


def test_measure_process_given_a_large_parent_reports_the_childs_own_peak(
        tmp_path: Path) -> None:
    # Linux carries the parent's RSS at fork into the child's ru_maxrss: a small child
    # of a large harness was reported as large as the harness.
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # resident, not merely reserved
    child = ("import time; x = bytearray(30 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
             "time.sleep(0.3)")
    result = harness.measure_process([sys.executable, "-c", child], dict(os.environ),
                                     tmp_path, "child")
    del ballast
    assert result["exit_code"] == 0
    assert result["peak_rss_from"] == "VmHWM"
    assert 30 <= result["peak_rss_mb"] < 150
    assert result["ru_maxrss_mb"] >= 200


def test_peak_text_given_runs_read_from_ru_maxrss_marks_them() -> None:
    own = {"peak_rss_mb": 150.0, "rss_from": ["VmHWM"]}
    inherited = {"peak_rss_mb": 350.0, "rss_from": ["ru_maxrss"]}
    mixed = {"peak_rss_mb": 200.0, "rss_from": ["VmHWM", "ru_maxrss"]}

    assert peak_text(own) == "150"
    assert peak_text(inherited) == "350 (ru_maxrss)"
    assert peak_text(mixed) == "200 (ru_maxrss)"
