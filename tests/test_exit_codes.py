"""The exit codes are contract (DESIGN.md A5): cron jobs and wrappers test for these numbers."""

from __future__ import annotations

from okr_sync.exit_codes import ExitCode


def test_exit_code_given_contract_has_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "FAILURES": 1, "USAGE": 2, "LOCKED": 75}

