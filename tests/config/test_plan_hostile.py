"""Hostile and broken plan files: each is refused with ``FILE:LINE:COLUMN: path: message``.

Bounded cost is asserted by counting Python function calls (``sys.setprofile``),
never by timing: a refusal reads the document once and stops where the bound is hit.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from okr_sync.config.plan import MAX_PLAN_NUMBER
from okr_sync.config.plan_loader import PlanError, cross_check, load_plan, load_plan_text
from okr_sync.config.plan_yaml import MAX_PLAN_BYTES
from support.plan_builders import PlanBuilder, manual_kr, objective

ISSUE_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")

PLAN = """\
version: 1
cycle: {name: Q, start: START, end: END, timezone: UTC}
objectives:
  - id: A
    title: A
    key_results:
      - {id: A.1, title: x, measure: {kind: manual}, target: TARGET}
"""


def _plan(start: str = "2026-10-01", end: str = "2026-12-31", target: str = "3") -> str:
    return PLAN.replace("START", start).replace("END", end).replace("TARGET", target)


def _errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, name="plan.yaml")
    lines = [str(issue) for issue in caught.value.issues]
    assert all(ISSUE_LINE.match(line) for line in lines), lines
    return lines


def _file_errors(path: Path) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    lines = [str(issue) for issue in caught.value.issues]
    assert all(ISSUE_LINE.match(line) for line in lines), lines
    return lines


def _python_calls(action: Callable[[], object]) -> int:
    """How many Python functions ``action`` calls (C calls not counted)."""
    calls = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profile)
    try:
        action()
    except PlanError:
        pass
    finally:
        sys.setprofile(None)
    return calls


def test_load_plan_given_impossible_date_reports_it_at_the_value() -> None:
    assert _errors(_plan(start="2026-10-32")) == [
        "plan.yaml:2:25: cycle.start: '2026-10-32' is not a valid date "
        "(day is out of range for month)"
    ]


def test_load_plan_given_latin1_bytes_names_line_column_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(_plan().replace("title: A", "title: Caf\xe9 A").encode("latin-1"))
    offset = _plan().index("title: A") + len("title: Caf")
    assert _file_errors(path) == [
        f"{path}:5:15: (yaml): not UTF-8 text: byte 0xe9 at byte offset {offset} "
        "(save the plan as UTF-8)"
    ]


def test_load_plan_given_utf16_without_bom_points_at_the_first_nul(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(_plan().encode("utf-16-le"))
    (error,) = _file_errors(path)
    assert error.startswith(f"{path}:1:2: (yaml): character U+0000 is not allowed")
    assert "UTF-16" in error


def test_load_plan_given_utf16_with_bom_asks_for_utf8(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(_plan().encode("utf-16"))
    assert _file_errors(path) == [
        f"{path}:1:1: (yaml): the plan is UTF-16 (or UTF-32) text; save it as UTF-8"
    ]


def test_load_plan_given_binary_file_reports_the_nul_byte_position(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"version: 1\ncycle: \x00\x01\x02")
    (error,) = _file_errors(path)
    assert error.startswith(f"{path}:2:8: (yaml): character U+0000 is not allowed")


def test_load_plan_given_deep_nesting_refuses_where_the_limit_is_passed() -> None:
    text = "version: 1\nobjectives: " + "[" * 100 + "]" * 100
    # Under the root mapping, the 64th `[` (column 13 + 63) is the 65th level.
    assert _errors(text) == [
        "plan.yaml:2:76: (yaml): nested deeper than 64 levels (a plan needs fewer than 10)"
    ]
    block = "version: 1\nobjectives:\n" + "".join(
        "  " * depth + f"k{depth}:\n" for depth in range(100))
    (error,) = _errors(block)
    assert error.endswith(": (yaml): nested deeper than 64 levels (a plan needs fewer than 10)")


def test_load_plan_given_thousands_of_nested_brackets_refuses_at_a_bounded_cost() -> None:
    # libyaml's scanner looks up to 1024 characters ahead on a line and refuses more than
    # 1,000 open flow levels itself, before the reader sees the 65th.
    text = "version: 1\nobjectives: " + "[" * 10_000
    assert _errors(text) == ["plan.yaml:2:1012: (yaml): exceeded maximum nesting depth"]
    # Reading stops at the limit: ten times more brackets cost no more.
    ten_times = "version: 1\nobjectives: " + "[" * 100_000
    cost = _python_calls(lambda: load_plan_text(text))
    assert _python_calls(lambda: load_plan_text(ten_times)) <= cost * 1.1


def test_load_plan_given_integer_over_4300_digits_reports_it_at_the_value() -> None:
    assert _errors(_plan(target="7" * 5000)) == [
        "plan.yaml:7:62: objectives[0].key_results[0].target: an integer of 5,000 digits; "
        "a plan number has at most 4300 digits"
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/object/apply:os.system ['touch PWNED']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!custom 3", "!custom"),
        ("!!binary aGVsbG8=", "!!binary"),
    ],
)
def test_load_plan_given_non_standard_tag_refuses_it_by_name(
    value: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _errors(_plan(target=value)) == [
        f"plan.yaml:7:62: objectives[0].key_results[0].target: tag {shown} is not allowed "
        "in a plan (only plain YAML values, mappings and lists; nothing is constructed from tags)"
    ]
    assert not (tmp_path / "PWNED").exists()


def test_load_plan_given_tagged_collection_refuses_the_tag() -> None:
    text = _plan().replace("measure: {kind: manual}", "measure: !!omap [{kind: manual}]")
    (error,) = _errors(text)
    assert "objectives[0].key_results[0].measure: tag !!omap is not allowed" in error


def test_load_plan_given_standard_str_tag_keeps_accepting_it() -> None:
    plan = load_plan_text(_plan().replace("title: A\n", "title: !!str 2026\n"))
    assert plan.objectives[0].title == "2026"


@pytest.mark.parametrize(
    "start", ["2026-10-01T00:00:00", "2026-10-01 09:30:00Z", "'2026-10-01T00:00'"]
)
def test_load_plan_given_datetime_cycle_start_asks_for_a_date(start: str) -> None:
    errors = _errors(_plan(start=start))
    assert errors == [
        "plan.yaml:2:18: cycle.start: give a date (YYYY-MM-DD), not a datetime: the cycle "
        "runs from the start of `start` to the end of `end` in the cycle's time zone"
    ]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-10-01", "9999-12-31",
         "cycle.end: 9999-12-31 is out of range: cycle dates must be in the years 1970 to 2200"),
        ("0001-01-01", "2026-12-31",
         "cycle.start: 0001-01-01 is out of range: cycle dates must be in the years 1970 to 2200"),
        ("2026-01-01", "2036-01-01",
         "cycle: the cycle lasts 3652 days; a cycle may last at most 5 years (1830 days)"),
    ],
)
def test_load_plan_given_unrepresentable_cycle_states_the_rule(
    start: str, end: str, expected: str
) -> None:
    assert any(expected in e for e in _errors(_plan(start=start, end=end)))


BILLION_LAUGHS = """\
version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_load_plan_given_alias_bomb_refuses_it_without_expanding() -> None:
    errors = _errors(BILLION_LAUGHS)
    assert errors == [
        "plan.yaml:7:8: f[0]: aliases expand the plan beyond 100,000 nodes (an alias bomb?)"
    ]
    assert _python_calls(lambda: load_plan_text(BILLION_LAUGHS)) < 50_000


def test_load_plan_given_alias_inside_its_own_anchor_refuses_it() -> None:
    assert _errors("version: 1\nx: &a [*a]\n") == [
        "plan.yaml:2:8: x[0]: alias *a refers to a node that contains it"
    ]


def test_load_plan_given_anchors_and_merge_keys_keeps_reading_them() -> None:
    text = _plan().replace(
        "key_results:\n      - {id: A.1, title: x, measure: {kind: manual}, target: 3}",
        "key_results:\n      - &kr {id: A.1, title: x, measure: &m {kind: manual}, target: 3}\n"
        "      - {<<: *kr, id: A.2, measure: *m}",
    )
    plan = load_plan_text(text)
    assert [(kr.id, kr.title, kr.target) for kr in plan.objectives[0].key_results] == [
        ("A.1", "x", 3), ("A.2", "x", 3)]


def test_load_plan_given_file_over_size_limit_refuses_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(_plan() + "#" * (10 * 1024 * 1024), encoding="utf-8")
    size = path.stat().st_size
    assert _file_errors(path) == [
        f"{path}:1:1: (yaml): the plan is {size:,} bytes; a plan file may be at most "
        f"{MAX_PLAN_BYTES:,} bytes (a plan of 400 key results is about 200 KB)"
    ]
    assert _python_calls(lambda: load_plan(path)) < 100


def test_load_plan_given_duplicate_key_in_nested_mapping_reports_its_position() -> None:
    text = _plan().replace("target: 3}", "target: 3, target: 4}")
    assert _errors(text) == [
        "plan.yaml:7:65: objectives[0].key_results[0].target: duplicate key 'target' "
        "(first at line 7)"
    ]


def test_load_plan_given_second_yaml_document_refuses_it() -> None:
    assert _errors(_plan() + "---\nversion: 1\n") == [
        "plan.yaml:8:1: (yaml): a plan file holds one YAML document, not several"
    ]


def test_selector_values_given_labels_as_one_string_is_one_label() -> None:
    plan = PlanBuilder().with_objective(objective("O", {
        "id": "O.1", "title": "t",
        "measure": {"kind": "count", "select": {"project": "ENT", "labels": "okr"}},
        "target": 3})).build()
    measure = plan.objectives[0].key_results[0].measure
    assert measure.kind == "count" and measure.select is not None
    assert measure.select.values("labels") == ["okr"]


@pytest.mark.parametrize(
    ("kr", "path"),
    [
        (manual_kr("X.1", target=1, weight=1e308), "objectives[1].key_results[0].weight"),
        (manual_kr("X.1", target=5, baseline=-1e308), "objectives[1].key_results[0].baseline"),
        (manual_kr("X.1", target=1e13), "objectives[1].key_results[0].target"),
        (manual_kr("X.1", target=1, current=2e12), "objectives[1].key_results[0].current"),
    ],
)
def test_load_plan_given_number_beyond_bound_states_the_bound(
    kr: dict[str, Any], path: str
) -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    builder.with_objective(objective("X", kr))
    errors = _errors(builder.yaml())
    assert any(f"{path}: " in e and "numbers in a plan must be within +-1e12" in e
               for e in errors), errors


def test_load_plan_given_kpi_numbers_beyond_bound_refuses_them() -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    builder.with_kpi({"id": "K", "title": "k", "value": 1e300,
                      "thresholds": {"green": 1e300, "yellow": 1}})
    errors = _errors(builder.yaml())
    assert sum("within +-1e12" in e for e in errors) == 2, errors


def test_load_plan_given_numbers_at_the_bound_accepts_them() -> None:
    plan = PlanBuilder().with_objective(objective("O-1", manual_kr(
        "O-1.KR1", target=MAX_PLAN_NUMBER, baseline=-MAX_PLAN_NUMBER, weight=MAX_PLAN_NUMBER,
    ))).build()
    assert plan.objectives[0].key_results[0].target == MAX_PLAN_NUMBER


@pytest.mark.parametrize("value", ["1e999", ".nan", "-.inf"])
def test_load_plan_given_non_finite_number_refuses_it(value: str) -> None:
    assert any("objectives[0].key_results[0].target: Input should be a finite number" in e
               for e in _errors(_plan(target=value)))


def test_load_plan_given_cron_that_never_fires_refuses_it() -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    builder.set("notify", {"checkin_reminder_cron": "0 0 30 2 *"})
    assert any(
        "notify.checkin_reminder_cron: '0 0 30 2 *' never fires within 5 years" in e
        for e in _errors(builder.yaml())
    )


def test_load_plan_given_cron_on_29_february_accepts_it() -> None:
    builder = PlanBuilder().with_objective(objective("O-1", manual_kr("O-1.KR1", target=10)))
    plan = builder.set("notify", {"digest_cron": "0 9 29 2 *"}).build()
    assert plan.notify.digest_cron == "0 9 29 2 *"


class _CountingList(list[Any]):
    """A list that counts how often it is walked over."""

    passes = 0

    def __iter__(self) -> Iterator[Any]:
        type(self).passes += 1
        return super().__iter__()


def _passes_over_objectives(count: int) -> int:
    builder = PlanBuilder()
    for index in range(count):
        builder.with_objective(objective(
            f"O{index}", manual_kr(f"O{index}.1", target=1),
            **({"parent": f"O{index - 1}"} if index else {})))
    plan = builder.build()
    counted = plan.model_copy(update={"objectives": _CountingList(plan.objectives)})
    _CountingList.passes = 0
    list(cross_check(counted))
    return _CountingList.passes


def test_cross_check_given_more_objectives_walks_them_a_fixed_number_of_times() -> None:
    assert _passes_over_objectives(40) == _passes_over_objectives(160)


class _CountingParents(Mapping[str, "str | None"]):
    def __init__(self, parents: dict[str, str | None]) -> None:
        self._parents = parents
        self.reads = 0

    def __getitem__(self, key: str) -> str | None:
        self.reads += 1
        return self._parents[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parents)

    def __len__(self) -> int:
        return len(self._parents)

    def __contains__(self, key: object) -> bool:
        self.reads += 1
        return key in self._parents


def _chain_reads(count: int) -> int:
    from okr_sync.config.plan_loader import find_parent_cycles

    parents = _CountingParents({f"O{i}": (f"O{i - 1}" if i else None) for i in range(count)})
    assert find_parent_cycles(parents) == []
    return parents.reads


def test_find_parent_cycles_given_long_parent_chain_is_linear() -> None:
    small, large = _chain_reads(500), _chain_reads(2000)
    assert large <= 4 * small + 10


def test_find_parent_cycles_given_loops_reports_each_once_from_its_first_objective() -> None:
    from okr_sync.config.plan_loader import find_parent_cycles

    parents: dict[str, str | None] = {"A": "B", "B": "C", "C": "B", "D": "D", "E": None}
    assert find_parent_cycles(parents) == [["B", "C"]]



def _load_calls(count: int) -> int:
    builder = PlanBuilder()
    for index in range(count):
        builder.with_objective(objective(
            f"O{index}", *(manual_kr(f"O{index}.{k}", target=3) for k in range(3)),
            **({"parent": f"O{index - 1}"} if index else {})))
    text = builder.yaml()
    return _python_calls(lambda: load_plan_text(text))


def test_load_plan_given_four_times_the_objectives_does_about_four_times_the_work() -> None:
    small, large = _load_calls(25), _load_calls(100)
    assert large <= 4.5 * small


def test_load_plan_given_anchor_redefined_inside_its_collection_uses_the_new_one() -> None:
    text = _plan().replace("title: A\n", "title: A\n    notify: &r [&r ops, *r]\n", 1)
    text += "routes: {ops: [{slack: {channel: C1}}]}\n"
    assert load_plan_text(text).objectives[0].notify == ["ops", "ops"]
