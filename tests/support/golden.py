"""Golden-file comparison for JSON payloads (rendered messages, CLI output...).

Set ``OKR_SYNC_UPDATE_GOLDEN=1`` to (re)write the files from the current output,
then review the diff in git before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

UPDATE_ENV = "OKR_SYNC_UPDATE_GOLDEN"


class GoldenMismatchError(AssertionError):
    """The payload differs from its golden file (or the file is missing)."""


def assert_matches_golden(path: Path, payload: Any) -> None:
    rendered = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    if not path.exists():
        raise GoldenMismatchError(f"missing golden file {path}; run with {UPDATE_ENV}=1")
    expected = json.loads(path.read_text(encoding="utf-8"))
    if expected != json.loads(rendered):
        raise GoldenMismatchError(
            f"{path.name} differs from the rendered payload; if the change is intended, "
            f"rerun with {UPDATE_ENV}=1 and review the diff.\nrendered:\n{rendered}"
        )
