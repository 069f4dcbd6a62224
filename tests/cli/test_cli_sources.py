"""The commands with several Jira sources (issue 14 item 1): validate names a source
without settings at its place in the plan; run, status, explain and doctor over a Jira
Cloud (``main``) and a Data Center (``legacy``) whose token is refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from okr_sync.cli.main import app
from support.two_sources import LEGACY_KRS, MAIN_KR, PLAN_YAML, TwoSources, kr_docs, two_sources

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TwoSources]:
    with two_sources(tmp_path) as w:
        yield w


def _invoke(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def test_validate_given_a_source_without_settings_names_it_at_its_line_and_column(
    world: TwoSources,
) -> None:
    env = {k: v for k, v in world.environment().items() if "__LEGACY__" not in k}

    result = _invoke(env, "validate")

    assert result.exit_code == 2, result.output
    line = next(n for n, text in enumerate(PLAN_YAML.splitlines(), 1)
                if "source: legacy, select" in text)
    match = re.search(rf"okr-plan\.yaml:{line}:(\d+): objectives\[1\]\.key_results\[0\]"
                      r"\.measure\.source: Jira source 'legacy' has no settings: set "
                      r"OKR_SYNC_JIRA__LEGACY__URL", result.output)
    assert match is not None, result.output
    assert "key_results[1].measure.source" in result.output  # every measure of it, listed
    assert _invoke(world.environment(), "validate").exit_code == 0


def test_validate_given_misspelt_key_of_a_source_refuses_with_did_you_mean(
    world: TwoSources,
) -> None:
    env = {**world.environment(), "OKR_SYNC_JIRA__LEGACY__API_TOKN": "x"}

    result = _invoke(env, "validate")

    assert result.exit_code == 2
    assert "OKR_SYNC_JIRA__LEGACY__API_TOKN: did you mean OKR_SYNC_JIRA__LEGACY__API_TOKEN?" \
        in result.output


def test_commands_given_legacy_token_refused_run_status_explain_doctor_name_the_source(
    world: TwoSources,
) -> None:
    env = {**world.environment(), "OKR_SYNC_JIRA__LEGACY__PAT": "revoked-pat"}

    run = _invoke(env, "run", "--output", "json")
    status = _invoke(env, "status", "--output", "json")
    status_text = _invoke(env, "status")
    explain = _invoke(env, "explain", LEGACY_KRS[0])
    doctor = _invoke(env, "doctor", "--output", "json")

    assert run.exit_code == 1
    krs = kr_docs(json.loads(run.stdout))
    assert krs[MAIN_KR]["score"] is not None and krs[LEGACY_KRS[0]]["score"] is None
    sources = {s["source"]: s for s in json.loads(status.stdout)["freshness"]["sources"]}
    assert sources["main"]["failing_since"] is None and sources["main"]["last_read_at"]
    assert sources["legacy"]["failing_since"] is not None
    assert sources["legacy"]["last_read_at"] is None and sources["legacy"]["last_error"]
    assert "failing: source legacy" in status_text.stdout
    assert "Jira source: legacy" in explain.stdout and "source failing" in explain.stdout
    checks = {c["name"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}
    assert checks["jira main"] == "ok" and checks["jira legacy"] == "fail"
    assert "revoked-pat" not in run.output + status.output + explain.output + doctor.output
