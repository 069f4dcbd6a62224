"""Fixtures of the CLI tests: the sandboxes and the environment that points the CLI at them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from support.paths import DEMO_PLAN


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A command run in-process installs its log handler on the root logger, bound to the
    runner's stderr that is closed afterwards: undo it, or later tests log into a closed
    file (and see records at a level they did not ask for)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=400, seed=11) as w:
        yield w


@pytest.fixture
def env(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    # The CLI has no way to reach a real Microsoft login, so this plan posts to Slack and
    # a Workflows webhook only; the bot path is covered by the pipeline tests.
    text = DEMO_PLAN.read_text().replace(
        '    - {teams_bot: {conversation_id: "19:demo@thread.tacv2"}}\n', "")
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    return {**world.environment(), "OKR_SYNC_PLAN": str(plan)}
