"""Mutated example plans: loading either returns a Plan or raises PlanError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import PlanError, load_plan_bytes, load_plan_text
from support.hypothesis_profile import examples
from support.plan_fuzz import ISSUE_LINE, mutated


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
