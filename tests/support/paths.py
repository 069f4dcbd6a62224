"""Where the repository's own files are, for tests at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "src" / "okr_sync" / "config" / "examples"
DEMO_PLAN = EXAMPLES / "demo.yaml"
