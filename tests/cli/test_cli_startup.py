"""Fast start: the light commands import none of the store, service, connector or sandbox code.

Each case runs the CLI's ``main`` in a fresh interpreter, as the console script does,
and then lists every module that interpreter imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import DEMO_PLAN

# Libraries and packages only a pass, the store, the service or the demo needs.
HEAVY_PREFIXES = (
    "sqlalchemy", "alembic", "werkzeug", "msal", "jira", "slack_sdk", "requests",
    "prometheus_client", "psycopg", "okr_sync.sandbox", "okr_sync.sync.store",
    "okr_sync.sync.service", "okr_sync.connectors",
)

_DRIVER = """
import json, sys
report, *args = sys.argv[1:]
sys.argv = ["okr-sync", *args]
from okr_sync.cli.main import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(report, "w") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in HEAVY_PREFIXES)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "validate"),
        (["--version"], "okr-sync "),
        (["validate", "--plan", str(DEMO_PLAN)], ": ok ("),
        (["schema"], '"title": "okr-sync plan"'),
        (["db", "prune", "--help"], "--older-than"),
    ],
    ids=["help", "version", "validate", "schema", "db-prune-help"],
)
def test_main_given_light_command_works_without_importing_heavy_modules(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    report = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(report), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(report.read_text())
    assert doc["exit"] in (0, None), result.stdout + result.stderr
    assert expected in result.stdout
    assert _heavy(doc["modules"]) == []
