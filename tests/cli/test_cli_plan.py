"""`okr-sync validate` and `okr-sync schema`: the plan file alone."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from okr_sync.cli.main import app
from support.paths import EXAMPLES

runner = CliRunner()


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
