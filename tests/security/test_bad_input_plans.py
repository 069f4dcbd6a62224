"""Bad plans through the real ``okr-sync validate``: never a crash, always exit 2 with
``FILE:LINE:COLUMN: path: message`` lines (or exit 0 for a plan that is still valid).

The loader's own fuzz tests (tests/config/test_plan_fuzz.py, test_plan_hostile.py) call
it as a function; these go through the command a user runs: hypothesis-fuzzed plans
in-process, and the most hostile files in a subprocess with a bounded timeout (a guard
against a hang, not a timing assertion).
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benchmarks import plan_benchmark
from okr_sync.cli.main import app
from okr_sync.config.plan_loader import MAX_LISTED_ISSUES
from okr_sync.config.plan_yaml import MAX_NODES, MAX_PLAN_BYTES, read_yaml
from support.hypothesis_profile import examples
from support.paths import EXAMPLES
from support.plan_fuzz import mutated
from support.serve_cli import okr_sync_command

runner = CliRunner()
#: Generous: a guard against a hang on a loaded machine, not a measure of speed.
SUBPROCESS_TIMEOUT_S = 120
LINE = r"(?P<line>\d+):(?P<col>\d+): \S+: .+"
EXAMPLE_DOCS = {path.name: yaml.safe_load(path.read_text()) for path in sorted(
    EXAMPLES.glob("*.yaml"))}  # four small files


def _assert_answer(plan: Path, exit_code: int, stdout: str, stderr: str) -> None:
    assert exit_code in (0, 2), (exit_code, stdout, stderr)
    if exit_code == 0:
        assert f"{plan}: ok" in stdout
        return
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "exit 2 without saying why"
    pattern = re.compile(re.escape(str(plan)) + ":" + LINE)
    for line in lines:
        assert pattern.fullmatch(line), line
    assert "Traceback" not in stdout + stderr


def _validate(plan: Path) -> None:
    result = runner.invoke(app, ["validate", "--plan", str(plan)], env={"OKR_SYNC_PLAN": ""})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    _assert_answer(plan, result.exit_code, result.stdout, result.stderr)


# -- structured mutations: wrong types, huge numbers, NaN, deep values ------------------

HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 1e308, -1e308, 5e-324, math.nan, math.inf, "",
                     "\u202e", "\x00", "2026-10-32", "9999-12-31", "0 0 31 2 *", "x" * 5000]),
    st.text(max_size=20),
    st.recursive(st.integers() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def structurally_mutated(draw: st.DrawFn) -> str:
    doc = yaml.safe_load(yaml.safe_dump(EXAMPLE_DOCS[draw(st.sampled_from(sorted(EXAMPLE_DOCS)))]))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(HOSTILE_VALUES)
    # Python floats beyond YAML's spelling (nan, inf) are written as YAML's own.
    return yaml.safe_dump(doc, allow_unicode=True, width=10_000)


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=structurally_mutated())
def test_validate_given_structurally_mutated_example_answers_file_line_column_or_ok(
    tmp_path: Path, text: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    _validate(plan)


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=mutated())
def test_validate_given_byte_mutated_example_answers_file_line_column_or_ok(
    tmp_path: Path, raw: bytes
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(raw)
    _validate(plan)


# -- the most hostile files, through the installed command ------------------------------

def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 10)]
    return ("\n".join(lines) + "\n").encode()


def _many_objectives(count: int) -> bytes:
    text = (EXAMPLES / "okr.yaml").read_text()
    doc = yaml.safe_load(text)
    template = doc["objectives"][0]
    doc["objectives"] = [
        {**template, "id": f"O-{n}", "parent": None,
         "key_results": [{**kr, "id": f"O-{n}.KR{k}"}
                         for k, kr in enumerate(template["key_results"])]}
        for n in range(count)
    ]
    for objective in doc["objectives"]:
        objective.pop("parent")
    return yaml.safe_dump(doc).encode()


#: Built when a test asks (collection stays cheap).
HOSTILE_FILES: dict[str, Callable[[], bytes]] = {
    "10 MB": lambda: b"version: 1\n" + b"# padding\n" * (1024 * 1024),
    "alias bomb": _alias_bomb,
    "deep nesting": lambda: b"version: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "binary": lambda: bytes(random.Random(11).randrange(256) for _ in range(64 * 1024)),
    "latin-1": lambda: "version: 1\ncycle: {name: Qu\u00e9bec}\n".encode("latin-1"),
    "utf-16": lambda: "version: 1\n".encode("utf-16"),
    "duplicate keys": lambda: (EXAMPLES / "okr.yaml").read_bytes() + b"\nversion: 1\n",
    "integer of 5000 digits": lambda: b"version: " + b"9" * 5000 + b"\n",
    "nan target": lambda: (EXAMPLES / "okr.yaml").read_bytes().replace(
        b"target: 10", b"target: .nan"),
    "python tag": lambda: b"version: !!python/object/apply:os.system ['echo pwned']\n",
    "empty": lambda: b"",
    "nul bytes": lambda: b"version: 1\x00\x00\n",
    "large plan": lambda: _many_objectives(1500),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_validate_command_given_hostile_file_answers_file_line_column_with_exit_2(
    name: str, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    content = HOSTILE_FILES[name]()
    if name == "large plan":
        assert 256 * 1024 < len(content) < MAX_PLAN_BYTES
    plan.write_bytes(content)
    done = subprocess.run([*okr_sync_command(), "validate", "--plan", str(plan)],
                          capture_output=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    if name == "large plan":
        assert done.returncode in (0, 2), stderr[-2000:]
        _assert_answer(plan, done.returncode, stdout, stderr)
        return
    assert done.returncode == 2, (stdout, stderr[-2000:])
    _assert_answer(plan, done.returncode, stdout, stderr)
    if name == "10 MB":  # refused by its size, before it is parsed
        assert f"the plan is {len(content):,} bytes; a plan file may be at most" in stderr
    assert "pwned" not in stdout + stderr


# -- the largest plans accepted: every one answers (benchmarks/plan_benchmark.py times them) --

@pytest.mark.parametrize("name", sorted(plan_benchmark.PLANS))
def test_validate_command_given_plan_at_the_size_limits_answers_ok_or_file_line_column(
    name: str, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    content = plan_benchmark.PLANS[name]()
    plan.write_bytes(content)
    if "over the byte limit" not in name:
        # Just under both limits: what the benchmark times is the most a plan may cost.
        assert len(content) <= MAX_PLAN_BYTES
        document = read_yaml(content.decode())  # raises past MAX_NODES
        assert document.data is not None
    done = subprocess.run([*okr_sync_command(), "validate", "--plan", str(plan)],
                          capture_output=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    _assert_answer(plan, done.returncode, stdout, stderr)
    expected_exit = 0 if name.startswith("valid") else 2
    assert done.returncode == expected_exit, stderr[-2000:]
    if name.startswith("unknown keys"):  # tens of thousands of problems: the first are listed
        assert len(stderr.splitlines()) == MAX_LISTED_ISSUES + 1
        assert "more problems from here on are not listed" in stderr.splitlines()[-1]


def test_validate_given_plan_over_the_value_limit_refuses_it_where_the_limit_is_passed(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"version: [" + b",".join([b"1"] * (MAX_NODES + 10)) + b"]\n")
    result = runner.invoke(app, ["validate", "--plan", str(plan)], env={"OKR_SYNC_PLAN": ""})
    assert result.exit_code == 2
    # The root mapping, its key and the list are 3 values: the limit falls on list item N-2.
    column = len("version: [") + 2 * (MAX_NODES - 3) + 1
    assert result.stderr.strip() == (
        f"{plan}:1:{column}: version[{MAX_NODES - 3}]: the plan holds more than "
        f"{MAX_NODES:,} values (aliases expanded); a plan of 400 key results holds about 10,000")
