"""The naive comparator: a per-KR script written with the ``jira`` client, as teams write it.

Every pass, for every KR: run its JQL with ``fields`` all (every page), compute the value
from the issues, and post the KR to Slack with ``chat.postMessage``. Nothing is remembered
between passes, so every pass costs the same whatever changed.

    python -m benchmarks.naive TASKS.json

``TASKS.json`` (written by the harness from the plan; structured selectors become the JQL
okr-sync's own links use) holds the Jira and Slack endpoints and one task per KR. KRs routed
to Teams are posted to the first Slack channel: the script knows only Slack. Prints one JSON
line: the KRs done and their values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jira import JIRA
from slack_sdk import WebClient

STORY_POINTS = "customfield_10016"


def _done(issue: Any) -> bool:
    category = issue.raw["fields"].get("status", {}).get("statusCategory", {})
    return bool(category.get("key") == "done")


def _points(issue: Any) -> float:
    value = issue.raw["fields"].get(STORY_POINTS)
    return float(value) if isinstance(value, int | float) else 0.0


def value_of(task: dict[str, Any], issues: list[Any]) -> float | None:
    """The KR's measured value from its issues (as a per-KR script computes it)."""
    kind = task["kind"]
    if kind == "count":
        return float(len(issues))
    if kind == "milestone":
        return 1.0 if issues and all(_done(i) for i in issues) else 0.0
    if kind == "sum":
        return sum(_points(i) for i in issues if _done(i) or not task.get("done_only"))
    weigh = _points if task.get("unit") == "story_points" else (lambda issue: 1.0)
    total = sum(weigh(i) for i in issues)
    return sum(weigh(i) for i in issues if _done(i)) / total if total else None


def run_pass(config: dict[str, Any]) -> dict[str, float | None]:
    jira = JIRA(server=config["jira_url"], basic_auth=(config["email"], config["token"]),
                options={"rest_api_version": "3"}, timeout=60, max_retries=0)
    slack = WebClient(token=config["slack_token"], base_url=config["slack_api_url"],
                      timeout=60)
    values: dict[str, float | None] = {}
    for task in config["tasks"]:
        issues = list(jira.enhanced_search_issues(task["jql"], maxResults=0, fields="*all"))
        value = values[task["kr"]] = value_of(task, issues)
        shown = "not measurable" if value is None else f"{value:.4g}"
        slack.chat_postMessage(channel=task["channel"], text=f"{task['kr']}: {shown}")
    return values


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    values = run_pass(config)
    print(json.dumps({"krs": len(values), "values": values}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
