"""`okr-sync validate` and `okr-sync schema`: the plan file alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from okr_sync.cli.main import app
from support.paths import EXAMPLES

runner = CliRunner()
ISSUE_LINE = re.compile(r"^[^:\n]+:\d+:\d+: \S+: [^\n]+$")


def test_validate_given_examples_exits_0() -> None:
    examples = EXAMPLES
    for name in ("okr.yaml", "bsc.yaml", "hybrid.yaml"):
        result = runner.invoke(app, ["validate", "--plan", str(examples / name)])
        assert result.exit_code == 0, result.output


def test_validate_given_broken_plan_exits_2_with_one_line_per_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\ncycle: {name: Q, start: 2026-10-01, end: 2026-12-31}\nobjectives:\n"
        "  - {id: A, title: A, parent: B, key_results: [{id: K, title: k, measure: {kind: manual},"
        " target: 1}]}\n"
        "  - {id: B, title: B, parent: A, wat: 1, key_results: [{id: K, title: k,"
        " measure: {kind: manual}, target: 1}]}\n"
    )
    result = runner.invoke(app, ["validate", "--plan", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}:") for line in lines)
    assert any("parent cycle" in line for line in lines)
    assert any("duplicate id 'K'" in line for line in lines)
    assert any(line.endswith("wat: unknown key") for line in lines)


def test_validate_given_yaml_syntax_error_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nobjectives: [\n")
    result = runner.invoke(app, ["validate", "--plan", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:")


def test_schema_given_no_args_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "okr-sync plan"


def _validate_changed(tmp_path: Path, *changes: tuple[str, str]):
    from support.paths import DEMO_PLAN

    text = DEMO_PLAN.read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return runner.invoke(app, ["validate", "--plan", str(path)])


def test_validate_given_measure_on_a_source_other_than_main_exits_2_at_its_position(
    tmp_path: Path,
) -> None:
    declare = ("jira:\n  main:", "jira:\n  staging: {projects: [OPS]}\n  main:")
    result = _validate_changed(tmp_path, declare)
    assert result.exit_code == 0, result.stderr  # declaring it alone is harmless
    result = _validate_changed(tmp_path, declare, (
        "measure: {kind: done_ratio, jql: 'project = OPS AND labels = on-call'}",
        "measure: {kind: done_ratio, source: staging, jql: 'project = OPS AND labels = on-call'}"))
    assert result.exit_code == 2
    assert result.stderr.startswith(str(tmp_path / "plan.yaml"))
    assert ": objectives[2].key_results[1].measure.source: Jira source 'staging'" in result.stderr


def test_validate_given_slack_channel_name_exits_2_with_the_fix(tmp_path: Path) -> None:
    result = _validate_changed(tmp_path, ("{slack: {channel: C0DEMO0001}}",
                                          '{slack: {channel: "#platform"}}'))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert ": routes.leadership[0].slack.channel: '#platform' is not a Slack channel id" in line
    assert "use the channel id, e.g. C0123ABCD; find it in the channel's details" in line
    assert ISSUE_LINE.match(line), line
