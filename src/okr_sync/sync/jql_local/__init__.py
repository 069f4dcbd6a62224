"""Raw JQL answered from the issue mirror when its meaning is exactly known (pure).

:mod:`.syntax` parses Jira's grammar, :mod:`.evaluate` decides whether a query is in
the exactly-known subset and matches mirrored issues. The sandbox keeps its own,
independent JQL implementation, so tests comparing the two compare two readings.
"""

from okr_sync.sync.jql_local.evaluate import (
    KeyResolver,
    LocalJql,
    Matcher,
    analyse,
    compile_matcher,
)
from okr_sync.sync.jql_local.syntax import NotLocal

__all__ = ["KeyResolver", "LocalJql", "Matcher", "NotLocal", "analyse", "compile_matcher"]
