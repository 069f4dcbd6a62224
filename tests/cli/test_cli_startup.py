"""Fast start: the light commands import none of the store, service, connector or sandbox code,
and ``run`` imports nothing before its first request that it does not need by then.

Each case runs the CLI's ``main`` in a fresh interpreter, as the console script does,
and then lists every module that interpreter imported (for ``run``: when the pass opens
its first network connection, to Jira).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from okr_sync.cli.main import main
from okr_sync.sync.sandbox_world import sandbox_world
from support.paths import DEMO_PLAN
from support.secret_world import cli_plan

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


# Imported lazily, each only once needed: none of them before `run`'s first request when
# the store is already at the head revision, the plan sets no cron and nothing has been
# sent yet (each costs 25-150 ms of CPU to import; the start-up target is < 0.4 s).
LAZY_UNTIL_NEEDED = (
    "alembic", "mako",  # only to migrate (okr_sync.sync.store.schema)
    "msal",  # the first Teams bot token (okr_sync.connectors.teams.bot)
    "slack_sdk",  # the first Slack call (okr_sync.connectors.slack.transport)
    "croniter", "dateutil",  # a cron in the plan or the service (okr_sync.sync.cron)
    "sqlalchemy.dialects.postgresql",  # on SQLite (okr_sync.sync.store.base, .fencing)
    "werkzeug", "prometheus_client", "jsonschema", "psycopg",
    "okr_sync.sandbox", "okr_sync.sync.service",
    "rich",  # the first print (okr_sync.cli.common.LazyConsole): run prints after its pass
    # A message to render or send (okr_sync.sync.delivery.messages.render_for, the senders).
    "okr_sync.sync.delivery.render", "okr_sync.connectors.slack", "okr_sync.connectors.teams",
    # The other commands' modules (okr_sync.cli.app builds an app of just the named command).
    "okr_sync.cli.backfill", "okr_sync.cli.db", "okr_sync.cli.demo", "okr_sync.cli.doctor",
    "okr_sync.cli.explain", "okr_sync.cli.plan", "okr_sync.cli.recommend", "okr_sync.cli.serve",
    "okr_sync.cli.state",
)

_FIRST_REQUEST_DRIVER = """
import gc, json, socket, sys
report, *args = sys.argv[1:]
connect = socket.socket.connect

def first_connect(self, address, *rest):
    if isinstance(address, tuple) and not first_connect.seen:
        first_connect.seen = True
        with open(report, "w") as out:
            json.dump({"address": list(address[:2]), "modules": sorted(sys.modules),
                       "frozen": gc.get_freeze_count(), "collecting": gc.isenabled()}, out)
    return connect(self, address, *rest)

first_connect.seen = False
socket.socket.connect = first_connect
sys.argv = ["okr-sync", *args]
from okr_sync.cli.main import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(report + ".end", "w") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""


def _lazy(modules: list[str]) -> list[str]:
    return [m for m in modules
            if any(m == p or m.startswith(p + ".") for p in LAZY_UNTIL_NEEDED)]


def test_run_given_migrated_store_imports_nothing_lazy_before_its_first_request(
    tmp_path: Path,
) -> None:
    with sandbox_world(tmp_path, issues=60) as world:
        env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(cli_plan(tmp_path))}
        env.pop("OKR_SYNC_TEST_DATABASE_URL", None)
        upgraded = subprocess.run([sys.executable, "-m", "okr_sync.cli.main", "db", "upgrade"],
                                  env=env, capture_output=True, text=True, timeout=120)
        assert upgraded.returncode == 0, upgraded.stderr[-2000:]
        report = tmp_path / "first-request.json"
        result = subprocess.run([sys.executable, "-c", _FIRST_REQUEST_DRIVER, str(report), "run"],
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        first = json.loads(report.read_text())
        end = json.loads(Path(str(report) + ".end").read_text())
        jira_port = int(world.jira.url.rsplit(":", 1)[1].split("/")[0])
    assert first["address"] == ["127.0.0.1", jira_port]  # the pass's first request: Jira
    assert _lazy(first["modules"]) == []
    # The pass did send (so Slack's client and the renderers were needed, and imported, after
    # the first request).
    assert "slack_sdk" in end["modules"]
    assert "okr_sync.sync.delivery.render" in end["modules"]


# What a pass that finds nothing new and prints JSON (cron's, the harness's) never needs.
NOT_FOR_A_QUIET_JSON_PASS = ("rich", "slack_sdk", "okr_sync.sync.delivery.render",
                             "okr_sync.connectors.slack", "okr_sync.connectors.teams")


def test_run_given_nothing_new_and_json_output_imports_no_renderer_chat_client_or_rich(
    tmp_path: Path,
) -> None:
    with sandbox_world(tmp_path, issues=60) as world:
        env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(cli_plan(tmp_path))}
        env.pop("OKR_SYNC_TEST_DATABASE_URL", None)
        for args in (["db", "upgrade"], ["run"]):  # the first pass posts the scorecards
            done = subprocess.run([sys.executable, "-m", "okr_sync.cli.main", *args],
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        report = tmp_path / "quiet.json"
        result = subprocess.run(
            [sys.executable, "-c", _FIRST_REQUEST_DRIVER, str(report), "run", "--output", "json"],
            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["deliveries"] == []  # nothing new: nothing sent
    end = json.loads(Path(str(report) + ".end").read_text())
    assert [m for m in end["modules"]
            if any(m == p or m.startswith(p + ".") for p in NOT_FOR_A_QUIET_JSON_PASS)] == []


_EXIT_DRIVER = """
import atexit, gc, json, sys
report, *args = sys.argv[1:]

def at_exit():
    with open(report, "w") as out:
        json.dump({"frozen": gc.get_freeze_count()}, out)

atexit.register(at_exit)
sys.argv = ["okr-sync", *args]
from okr_sync.cli.main import main
main()
"""


def test_main_given_its_own_command_line_freezes_what_is_alive_before_the_process_exits(
    tmp_path: Path,
) -> None:
    # The interpreter's last collection would walk every object still alive (every
    # imported class and function), ~80 ms of CPU after the command is already over.
    report = tmp_path / "exit.json"
    result = subprocess.run([sys.executable, "-c", _EXIT_DRIVER, str(report), "--version"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("okr-sync ")
    assert json.loads(report.read_text())["frozen"] > 0


def test_main_given_argv_leaves_the_collector_of_its_process_alone() -> None:
    # Called with arguments, main runs inside a process that goes on (tests, a program
    # embedding it): nothing is frozen there.
    before = gc.get_freeze_count()
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code in (0, None)
    assert gc.get_freeze_count() == before


def test_run_given_its_own_command_line_freezes_its_start_up_and_collects_in_its_pass(
    tmp_path: Path,
) -> None:
    # What start-up made (modules, settings, plan, engine) lives as long as the process:
    # frozen before the pass, the pass's full collections do not walk it again. The
    # collector, paused for start-up, runs again for what the pass makes.
    with sandbox_world(tmp_path, issues=60) as world:
        env = {**os.environ, **world.environment(), "OKR_SYNC_PLAN": str(cli_plan(tmp_path))}
        env.pop("OKR_SYNC_TEST_DATABASE_URL", None)
        report = tmp_path / "first-request.json"
        result = subprocess.run([sys.executable, "-c", _FIRST_REQUEST_DRIVER, str(report), "run",
                                 "--output", "json"],
                                env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    first = json.loads(report.read_text())
    assert first["frozen"] > 0
    assert first["collecting"] is True


_PROCESS_DRIVER = """
import gc, json, sys
from okr_sync.cli import process
process.one_command_process(sys.argv[1])
during = gc.isenabled()
process.started()
print(json.dumps({"during_start_up": during, "after": gc.isenabled(),
                  "frozen": gc.get_freeze_count() > 0}))
"""


@pytest.mark.parametrize(("command", "paused"), [("run", True), ("resync", True),
                                                 ("status", False), ("serve", False)])
def test_one_command_process_given_a_pass_command_pauses_the_collector_until_its_pass(
    command: str, paused: bool,
) -> None:
    # Start-up makes ~85k long-lived objects and next to no garbage: the ~200 collections
    # it would run find nothing. Commands without a pass (serve runs for days) keep it.
    result = subprocess.run([sys.executable, "-c", _PROCESS_DRIVER, command],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"during_start_up": not paused, "after": True,
                                         "frozen": True}
