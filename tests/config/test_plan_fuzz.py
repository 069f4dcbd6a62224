"""Mutated example plans: loading either returns a Plan or raises PlanError, nothing else."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import PlanError, load_plan_bytes, load_plan_text
from support.hypothesis_profile import examples
from support.paths import EXAMPLES

ISSUE_LINE = re.compile(r"^[^:\n]+:\d+:\d+: \S+: [^\n]+$")
SEEDS = [path.read_bytes() for path in sorted(EXAMPLES.glob("*.yaml"))]
FRAGMENTS = [
    b"&a [*a]", b"!!python/object:os.system", b"!!python/object/apply:os.system ['id']",
    b"!custom x", b"9" * 5000, b"1e308", b"-1e999", b".nan", b".inf", b"[" * 200, b"{" * 200,
    b"*nope", b"&x", b"<<: *x", b"\nversion: 1\nversion: 2\n", b"\n---\n", b"\xe9\xff",
    b"\x00", b"\xfe\xff", b"2026-10-32", b"2026-02-30T25:61:00", b"9999-12-31", b"0_", b"._",
    b"0x_", b"!!int abc", b"!!float 0x1f", b"!!timestamp x", b"? [a]\n: b", b"'", b'"\\',
    b"\t", b": :", b"- - -", b"%YAML 1.1\n", b"|", b">-\n", b"0 0 30 2 *",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(FRAGMENTS))
        else:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


def _assert_plan_or_plan_error(load: object) -> None:
    assert callable(load)
    try:
        result = load()
    except PlanError as error:
        assert error.issues
        for issue in error.issues:
            assert ISSUE_LINE.match(str(issue)), str(issue)
    else:
        assert isinstance(result, Plan)


@settings(max_examples=examples(200), deadline=None)
@given(mutated())
def test_load_plan_bytes_given_mutated_example_returns_plan_or_plan_error(raw: bytes) -> None:
    _assert_plan_or_plan_error(lambda: load_plan_bytes(raw, name="plan.yaml"))


@settings(max_examples=examples(200), deadline=None)
@given(mutated())
def test_load_plan_text_given_mutated_example_returns_plan_or_plan_error(raw: bytes) -> None:
    text = raw.decode("utf-8", "replace")
    _assert_plan_or_plan_error(lambda: load_plan_text(text, name="plan.yaml"))
