"""Where the repository's own files are, for tests at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "src" / "okr_sync" / "config" / "examples"
DEMO_PLAN = EXAMPLES / "demo.yaml"


def slack_only_demo_plan(folder: Path) -> Path:
    """The demo plan without its Teams routes, written to ``folder``: the Slack sandbox
    can be asked what was posted (Teams cannot), so duplicate checks stay exact."""
    lines = [line for line in DEMO_PLAN.read_text().splitlines(keepends=True)
             if "teams_bot:" not in line and "teams_workflow:" not in line]
    path = folder / "plan.yaml"
    path.write_text("".join(lines))
    return path
