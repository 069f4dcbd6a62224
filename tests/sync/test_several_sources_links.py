"""Issue links of a second Jira source's KRs (``legacy``, a Data Center) go to that
source's site, not ``main``'s: in the HTML report and in Slack and Teams messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from okr_sync.sync.delivery.render import render_slack_scorecard
from okr_sync.sync.delivery.render.teams import render_teams_scorecard_card
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.app import report_page
from support.scorecards import key_result, objective, realistic_scorecard
from support.two_sources import LEGACY_KRS, MAIN_KR, TwoSources, two_sources


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TwoSources]:
    with two_sources(tmp_path) as w:
        yield w


@pytest.fixture
def runtime(world: TwoSources) -> Iterator[Runtime]:
    runtime = world.runtime()
    result = runtime.run_locked(PassOptions())
    assert result.exit_code == 0, result.failures
    yield runtime
    runtime.close()


def test_report_given_a_legacy_source_kr_links_its_issues_to_the_legacy_site(
    world: TwoSources, runtime: Runtime,
) -> None:
    page = report_page(runtime)
    assert page is not None
    html = page()
    ops_key = next(i.key for i in world.dc.dataset if not i.is_subtask)
    assert f'href="{world.dc.url.rstrip("/")}/browse/' in html
    # Before, every item linked to main's site (the first of the sites).
    assert f'{world.cloud.url.rstrip("/")}/browse/{ops_key}"' not in html
    assert f'{world.cloud.url.rstrip("/")}/browse/ENT-' in html


def test_messages_given_a_legacy_source_kr_link_by_key_point_at_the_legacy_site(
    world: TwoSources, runtime: Runtime,
) -> None:
    legacy = key_result(id=LEGACY_KRS[0], title="Operations work done", links=("OPS-1",))
    main = key_result(id=MAIN_KR, title="Enterprise work done", links=("ENT-1",))
    scorecard = replace(realistic_scorecard(),
                        objectives=(objective(key_results=(legacy, main)),))
    sites = runtime.notifier.jira_base_url
    dc, cloud = world.dc.url.rstrip("/"), world.cloud.url.rstrip("/")

    slack = json.dumps(render_slack_scorecard(scorecard, jira_base_url=sites).blocks)
    teams = json.dumps(render_teams_scorecard_card(scorecard, jira_base_url=sites))

    for text in (slack, teams):
        assert f"{dc}/browse/OPS-1" in text  # before: main's site, where OPS-1 is not
        assert f"{cloud}/browse/OPS-1" not in text
        assert f"{cloud}/browse/ENT-1" in text
