"""The local evaluator against the sandbox's independent JQL, on random issues and queries."""

from __future__ import annotations

from hypothesis import given, note, settings
from hypothesis import strategies as st

from okr_sync.sync.jql_local import analyse, compile_matcher
from support.hypothesis_profile import examples
from support.jql_strategies import World, describe, local_jql, sandbox_ids, worlds


@settings(max_examples=examples(300))
@given(data=st.data(), world=worlds())
def test_local_jql_given_random_issues_and_query_agrees_with_sandbox_jira(
    data: st.DataObject, world: World,
) -> None:
    jql = data.draw(local_jql(world), label="jql")
    note(f"zone {world.tz.key}; mirror {describe(world)}")
    matcher = compile_matcher(analyse(jql), tz=world.tz, cloud=True)
    local = {i for i, issue in world.mirror.items() if matcher(issue, world.mirror)}
    assert local == sandbox_ids(world, jql)
