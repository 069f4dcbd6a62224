"""The console scorecard of `run` and `status` (text output)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from rich.console import Console

from okr_sync.cli.common import LazyConsole
from okr_sync.cli.console import print_scorecard
from okr_sync.scoring.scorecard import ItemCounts, Scorecard
from support.scorecards import AS_OF, cycle, key_result, objective


def _printed(card: Scorecard) -> str:
    out = io.StringIO()
    print_scorecard(card, Console(file=out, width=220, color_system=None))
    return out.getvalue()


def test_print_scorecard_given_owners_and_points_shows_them() -> None:
    points = key_result(id="K-1", unit="story_points", value=65 / 144, score=65 / 144,
                        items=ItemCounts(30, 12, 65, 144), owner="Alice Ng")
    issues = key_result(id="K-2", owner="Bob Ray")
    card = Scorecard(cycle=cycle(), objectives=(
        objective(owner="Alice Ng", key_results=(points, issues)),))

    text = _printed(card)

    assert "65 of 144 pts done" in text  # points, not a 0.4514 ratio or items
    assert "0.4514" not in text
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│")}
    assert "Alice Ng" in rows["CO-1"]
    assert "Bob Ray" in rows["K-2"]
    assert "Alice Ng" not in rows["K-1"]  # inherited from its objective: said once


def test_print_scorecard_given_stale_and_never_measured_krs_says_so_not_a_score() -> None:
    # Issue 11: unmeasured is not zero; `run` and `status` show each KR's freshness.
    stale = key_result(id="K-1", stale=True, measured_at=AS_OF - timedelta(hours=3))
    never = key_result(id="K-2", value=None, score=None, band=None, confidence=None,
                       items=None, stale=True, measured_at=None)
    fresh = key_result(id="K-3", measured_at=AS_OF)
    card = Scorecard(cycle=cycle(), objectives=(
        objective(key_results=(stale, never, fresh)),))

    rows = {line.split()[1]: line for line in _printed(card).splitlines()
            if line.startswith("│")}

    assert "(stale · measured 3h ago)" in rows["K-1"]
    assert "42%" in rows["K-1"]  # its last measured score, marked, not dropped
    assert "not measured" in rows["K-2"] and "%" not in rows["K-2"]
    assert "stale" not in rows["K-3"]


@pytest.mark.parametrize(
    "environment",
    [{}, {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0"}, {"FORCE_COLOR": "1"},
     {"FORCE_COLOR": ""}, {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}],
    ids=["plain", "tty-compatible", "not-tty-compatible", "force-color", "empty-force-color",
         "both"],
)
def test_lazy_console_given_piped_stderr_tells_a_terminal_as_rich_does(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    # run's progress display asks before its first request; the answer must stay Rich's.
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "FORCE_TERMINAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    lazy = LazyConsole(stderr=True)

    assert lazy.may_be_terminal() is Console(stderr=True).is_terminal


def test_lazy_console_given_a_print_makes_its_console_with_its_options() -> None:
    out = io.StringIO()
    lazy = LazyConsole(file=out, width=80, markup=False)
    made_before = lazy._console is not None

    lazy.print("[b]shown[/b]")

    assert not made_before
    assert out.getvalue() == "[b]shown[/b]\n"  # markup=False reached the console
    assert isinstance(lazy.console, Console)
