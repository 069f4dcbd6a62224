"""What is wrong with a plan: one :class:`PlanIssue` per problem, at its file position."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file. Line and column are 1-based."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        # One line per issue, whatever a YAML error message holds.
        message = " ".join(self.message.splitlines())
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {message}"


class PlanError(Exception):
    """The plan is invalid; :attr:`issues` lists every problem found."""

    def __init__(self, issues: list[PlanIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


#: Problems listed at most; past them one line says that more exist.
MAX_LISTED_ISSUES = 200


def listed_issues(display: str, issues: list[PlanIssue]) -> list[PlanIssue]:
    """The issues once each, in file order; past :data:`MAX_LISTED_ISSUES`, one line
    saying that more exist (a file of tens of thousands of problems answers at once)."""
    unique = {(i.line, i.column, i.path, i.message): i for i in issues}
    listed = sorted(unique.values(), key=lambda i: (i.line, i.column, i.path))
    if len(listed) <= MAX_LISTED_ISSUES:
        return listed
    more = listed[MAX_LISTED_ISSUES]
    return [*listed[:MAX_LISTED_ISSUES], PlanIssue(
        display, more.line, more.column, "(plan)",
        f"more problems from here on are not listed (the first {MAX_LISTED_ISSUES} are);"
        " fix these and validate again")]
