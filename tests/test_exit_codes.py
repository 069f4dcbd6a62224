"""The exit codes are contract (DESIGN.md A5): cron jobs and wrappers test for these numbers."""

from __future__ import annotations

from okr_sync.exit_codes import ExitCode
from okr_sync.sync.pipeline import EXIT_OK, EXIT_PARTIAL


def test_exit_code_given_contract_has_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "FAILURES": 1, "USAGE": 2, "LOCKED": 75}


def test_exit_code_given_pipeline_aliases_they_are_the_enum_members() -> None:
    assert EXIT_OK is ExitCode.OK and EXIT_PARTIAL is ExitCode.FAILURES
