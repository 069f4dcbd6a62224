"""`okr-sync doctor` against the sandboxes: one line per check, exit 0/1/2, nothing posted,
no secret in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.doctor import Connectors, run_checks
from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld
from support.paths import DEMO_PLAN

runner = CliRunner()
WORKFLOW_ENV = "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"


def _doctor(env: dict[str, str], *args: str):
    return runner.invoke(app, ["doctor", *args], env=env)


def _migrated(env: dict[str, str]) -> dict[str, str]:
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    return env


def _lines(output: str) -> dict[str, str]:
    """Check name -> its line, for the `status name: detail` lines of the text report."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "FAIL", "skip"):
            found[rest.strip().partition(":")[0]] = line
    return found


def _plan(tmp_path: Path, env: dict[str, str], old: str, new: str) -> dict[str, str]:
    text = Path(env["OKR_SYNC_PLAN"]).read_text()
    assert old in text
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace(old, new))
    return {**env, "OKR_SYNC_PLAN": str(changed)}


def _assert_nothing_posted(world: SandboxWorld) -> None:
    assert {r.method for r in world.slack.requests} <= {"auth.test", "conversations.info"}
    assert world.slack.messages(DEMO_CHANNEL) == []
    assert world.teams.workflow_posts(world.workflow_id) == []
    assert all(r.method == "GET" or r.path.endswith("/jql/parse")
               for r in world.jira.log.records)


def test_doctor_given_sandboxes_all_ok_exits_0_with_one_line_per_check(env, world) -> None:
    result = _doctor(_migrated(env))
    assert result.exit_code == 0, result.stdout
    lines = _lines(result.stdout)
    assert lines["jira main"].startswith("ok   jira main: http://127.0.0.1:")
    assert "as okr-bot@example.com (Cloud), projects ENT, OPS, SUP exist, story points field " \
           "customfield_10016" in lines["jira main"]
    assert lines["jira main jql"].startswith("ok   jira main jql: 3 raw-JQL measures valid")
    assert lines["database"].startswith("ok   database: sqlite:///")
    assert lines[f"slack channel {DEMO_CHANNEL}"].startswith("ok   ")
    assert lines["slack auth"].startswith("ok   ")
    assert lines["teams bot"] == "skip teams bot: not configured"
    assert lines[f"teams workflow {WORKFLOW_ENV}"].startswith("ok   ")
    assert result.stdout.splitlines()[-1].startswith("all checks pass: 7 ok, 0 failed, 1 skipped")
    _assert_nothing_posted(world)


def test_doctor_given_json_output_prints_one_document_of_checks(env, world) -> None:
    result = _doctor(_migrated(env), "--output", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert set(document) == {"checks", "ok"} and document["ok"] is True
    assert all(set(c) == {"name", "status", "detail"} and c["status"] in ("ok", "fail", "skip")
               for c in document["checks"])
    assert [c["name"] for c in document["checks"]][:3] == ["settings", "database", "jira main"]


def test_doctor_given_wrong_jira_token_fails_jira_naming_the_source_not_the_token(
    env, world,
) -> None:
    token = "jira-token-Zq81-never-shown"
    result = _doctor({**_migrated(env), "OKR_SYNC_JIRA_API_TOKEN": token}, "--output", "json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["jira main"]["status"] == "fail"
    assert "rejected the credentials" in checks["jira main"]["detail"]
    assert checks["jira main jql"]["status"] == "skip"
    assert token not in result.stdout + result.stderr


def test_doctor_given_plan_project_that_does_not_exist_fails_naming_it(
    env, world, tmp_path,
) -> None:
    changed = _plan(tmp_path, env, "projects: [ENT, SUP, OPS]", "projects: [ENT, SUP, OPS, NOPE]")
    result = _doctor(_migrated(changed))
    assert result.exit_code == 1
    assert _lines(result.stdout)["jira main"].startswith("FAIL jira main: no project NOPE")


def test_doctor_given_jql_jira_refuses_fails_naming_the_kr(env, world, tmp_path) -> None:
    changed = _plan(tmp_path, env, "'project = OPS AND labels = on-call'",
                    "'project = OPS AND nosuchfield = on-call'")
    result = _doctor(_migrated(changed))
    assert result.exit_code == 1
    line = _lines(result.stdout)["jira main jql"]
    assert line.startswith("FAIL jira main jql: Jira refuses OPS-1.KR2: ")
    assert "nosuchfield" in line
    assert not any("search" in r.path for r in world.jira.log.records)


def test_doctor_given_bot_not_in_channel_fails_with_the_invite(env, world) -> None:
    world.slack.add_channel(DEMO_CHANNEL, name="okrs", member=False)
    result = _doctor(_migrated(env))
    assert result.exit_code == 1
    assert _lines(result.stdout)[f"slack channel {DEMO_CHANNEL}"] == (
        f"FAIL slack channel {DEMO_CHANNEL}: the bot is not a member of #okrs (route "
        "leadership); invite it with /invite @okr-sync")


def test_doctor_given_archived_channel_fails_with_the_fix(env, world) -> None:
    world.slack.add_channel(DEMO_CHANNEL, name="okrs", archived=True)
    result = _doctor(_migrated(env))
    assert result.exit_code == 1
    assert "#okrs is archived" in _lines(result.stdout)[f"slack channel {DEMO_CHANNEL}"]
    _assert_nothing_posted(world)


def test_doctor_given_unknown_channel_fails_with_the_fix(env, world, tmp_path) -> None:
    changed = _plan(tmp_path, env, "channel: C0DEMO0001", "channel: C0NOWHERE1")
    result = _doctor(_migrated(changed))
    assert result.exit_code == 1
    assert "no such channel" in _lines(result.stdout)["slack channel C0NOWHERE1"]


def test_doctor_given_database_not_migrated_fails_with_db_upgrade(env, world) -> None:
    result = _doctor(env)
    assert result.exit_code == 1
    line = _lines(result.stdout)["database"]
    assert line.startswith("FAIL database: ") and line.endswith("run okr-sync db upgrade")
    # A check leaves no trace: the store is still not there.
    assert not Path(env["OKR_SYNC_DATABASE_URL"].removeprefix("sqlite:///")).exists()


def test_doctor_given_empty_database_file_fails_with_db_upgrade(env, world) -> None:
    Path(env["OKR_SYNC_DATABASE_URL"].removeprefix("sqlite:///")).touch()
    result = _doctor(env)
    assert result.exit_code == 1
    assert _lines(result.stdout)["database"].endswith("has no schema yet; run okr-sync db upgrade")


def test_doctor_given_broken_plan_exits_2(env, tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nobjectives: []\n")
    result = _doctor({**env, "OKR_SYNC_PLAN": str(broken)})
    assert result.exit_code == 2
    assert result.stdout == ""


def test_doctor_given_unset_workflow_variable_fails_naming_it(env, world) -> None:
    result = _doctor({**_migrated(env), WORKFLOW_ENV: ""})
    assert result.exit_code == 1
    assert _lines(result.stdout)[f"teams workflow {WORKFLOW_ENV}"].startswith(
        f"FAIL teams workflow {WORKFLOW_ENV}: {WORKFLOW_ENV} is not set")


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://workflows.example.com/hook?sig=SIGNATURE", "must use https://"),
     ("not a url", "must be an absolute https:// URL"),
     ("https://example.com:99999/hook", "not a valid URL")],
    ids=["plain-http", "not-a-url", "bad-port"],
)
def test_doctor_given_malformed_workflow_url_fails_naming_it_without_the_url(
    env, world, url: str, problem: str
) -> None:
    # Issue 11: doctor checks the Workflows URL's shape (it cannot post to check it).
    result = _doctor({**_migrated(env), WORKFLOW_ENV: url})
    assert result.exit_code == 1
    line = _lines(result.stdout)[f"teams workflow {WORKFLOW_ENV}"]
    assert line.startswith(f"FAIL teams workflow {WORKFLOW_ENV}: {WORKFLOW_ENV}: ")
    assert problem in line
    assert "SIGNATURE" not in result.stdout + result.stderr


def test_doctor_given_distinctive_secrets_never_prints_them(env, world) -> None:
    secrets = {
        "OKR_SYNC_JIRA_API_TOKEN": "jira-Zq81-api-token",
        "OKR_SYNC_SLACK_BOT_TOKEN": "xoxb-Zq81-slack-token",
        WORKFLOW_ENV: "http://example.com/workflows/1?sig=Zq81-workflow-sig",
        "OKR_SYNC_DATABASE_URL": "postgresql+psycopg://okr:Zq81-db-password@127.0.0.1:1/okr",
    }
    with_pat = {k: v for k, v in env.items() if not k.startswith("OKR_SYNC_JIRA_")}
    with_pat |= {"OKR_SYNC_JIRA_URL": env["OKR_SYNC_JIRA_URL"],
                 "OKR_SYNC_JIRA_PAT": "Zq81-personal-access-token"}
    others = {k: v for k, v in secrets.items() if k != "OKR_SYNC_JIRA_API_TOKEN"}
    outputs = [_doctor({**env, **secrets}), _doctor({**env, **secrets}, "--output", "json"),
               _doctor({**with_pat, **others})]
    for result in outputs:
        assert result.exit_code == 1
        text = result.stdout + result.stderr
        assert "Zq81" not in text
        assert "sig=" not in text
    lines = _lines(outputs[0].stdout)
    assert lines["database"].startswith("FAIL database: OKR_SYNC_DATABASE_URL "
                                        "postgresql+psycopg://okr:***@127.0.0.1:1/okr")
    assert lines["slack auth"].startswith("FAIL slack auth: ")
    assert "must use https://" in lines[f"teams workflow {WORKFLOW_ENV}"]
    _assert_nothing_posted(world)


def test_run_checks_given_teams_bot_acquires_a_token_and_posts_nothing(world) -> None:
    plan = load_plan(DEMO_PLAN)
    senders = world.senders()
    checks = run_checks(world.settings(), plan, DEMO_PLAN,
                        Connectors(JiraClient, senders.slack, senders.teams_bot))
    by_name = {c.name: c for c in checks}
    assert by_name["teams bot"].status == "ok"
    assert by_name["teams bot"].detail.startswith(f"token acquired for app {world.teams.app_id}")
    assert world.teams.token_requests == 1
    assert world.teams.activities("19:demo@thread.tacv2") == []


def test_run_checks_given_teams_login_refuses_fails_the_bot_check(world) -> None:
    world.teams.inject_status("token", 401, code="invalid_client")
    senders = world.senders()
    checks = run_checks(world.settings(), load_plan(DEMO_PLAN), DEMO_PLAN,
                        Connectors(JiraClient, senders.slack, senders.teams_bot))
    bot = next(c for c in checks if c.name == "teams bot")
    assert bot.status == "fail" and "invalid_client" in bot.detail
    assert world.teams.app_secret not in bot.detail



def test_doctor_given_no_jira_url_fails_the_jira_check_and_goes_on(env, world) -> None:
    unset = {k: v for k, v in _migrated(env).items() if k != "OKR_SYNC_JIRA_URL"}
    result = _doctor(unset)
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert lines["jira main"] == ("FAIL jira main: the plan measures from Jira: set "
                                  "OKR_SYNC_JIRA_URL")
    assert lines["slack auth"].startswith("ok   ")


def test_doctor_given_bot_route_without_teams_settings_fails_naming_the_settings(
    env, world,
) -> None:
    result = _doctor({**_migrated(env), "OKR_SYNC_PLAN": str(DEMO_PLAN)})
    assert result.exit_code == 1
    line = _lines(result.stdout)["teams bot"]
    assert line.startswith("FAIL teams bot: routes leadership post through the Teams bot")
    assert "OKR_SYNC_TEAMS_APP_SECRET" in line


def test_run_checks_given_teams_checkins_fetches_the_signing_keys(world) -> None:
    settings = world.settings().model_copy(update={
        "teams_bot_checkins": True, "teams_openid_metadata_url": world.teams.openid_metadata_url})
    senders = world.senders()
    checks = run_checks(settings, load_plan(DEMO_PLAN), DEMO_PLAN,
                        Connectors(JiraClient, senders.slack, senders.teams_bot))
    keys = next(c for c in checks if c.name == "teams check-ins")
    assert keys.status == "ok" and keys.detail.startswith("1 signing key from http://127.")
    assert world.teams.counters["botframework.keys"] == 1


def test_run_checks_given_teams_checkins_keys_unreachable_fails_naming_the_url(world) -> None:
    missing = world.teams.url + "/no/metadata"
    settings = world.settings().model_copy(update={
        "teams_bot_checkins": True, "teams_openid_metadata_url": missing})
    senders = world.senders()
    checks = run_checks(settings, load_plan(DEMO_PLAN), DEMO_PLAN,
                        Connectors(JiraClient, senders.slack, senders.teams_bot))
    keys = next(c for c in checks if c.name == "teams check-ins")
    assert keys.status == "fail" and "signing keys unavailable" in keys.detail
    assert missing in keys.detail
