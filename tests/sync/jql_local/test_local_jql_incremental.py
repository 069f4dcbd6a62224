"""A stored local answer patched with a pass's changes equals evaluating the whole mirror."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from okr_sync.connectors.jira.records import JiraIssue
from okr_sync.sync.jql_local import analyse, compile_matcher
from okr_sync.sync.pull import PulledSource
from okr_sync.sync.pull_local import _evaluate, _patched
from support.hypothesis_profile import examples
from support.jql_strategies import LABELS, PROJECTS, World, local_jql, worlds

_STATUSES = (("To Do", "new"), ("In Progress", "indeterminate"), ("Done", "done"))


@st.composite
def _edited(draw: st.DrawFn, item: JiraIssue) -> JiraIssue:
    status, category = draw(st.sampled_from(_STATUSES))
    return replace(
        item, status=status, status_category=category,
        project=draw(st.sampled_from([item.project, *PROJECTS])),
        labels=tuple(draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))),
        priority=draw(st.sampled_from([item.priority, None, "High", "Low"])),
    )


@settings(max_examples=examples(100))
@given(data=st.data(), world=worlds())
def test_patched_membership_given_random_changes_equals_full_evaluation(
    data: st.DataObject, world: World,
) -> None:
    local = analyse(data.draw(local_jql(world)))
    assume("Epic Link" not in local.fields)
    matcher = compile_matcher(local, tz=world.tz, cloud=True)
    stored = _evaluate(world.mirror, matcher)
    mirror = dict(world.mirror)
    result = PulledSource("main", mirror)
    for _ in range(data.draw(st.integers(0, 3))):  # several rounds, as pages merge
        ids = sorted(mirror)
        for issue_id in data.draw(st.lists(st.sampled_from(ids), max_size=4, unique=True)):
            mirror[issue_id] = data.draw(_edited(mirror[issue_id]))
            result.upserts.append(mirror[issue_id])
        if len(mirror) > 1 and data.draw(st.booleans()):
            gone = data.draw(st.sampled_from(sorted(mirror)))
            del mirror[gone]
            result.deleted.add(gone)
        if data.draw(st.booleans()):
            new = replace(data.draw(_edited(mirror[data.draw(st.sampled_from(sorted(mirror)))])),
                          id=str(900_000 + len(result.upserts)))
            mirror[new.id] = new
            result.upserts.append(new)
    assert _patched(stored, result, matcher) == _evaluate(mirror, matcher)
