"""``okr-sync doctor``: check settings, Jira, Slack, Teams and the store, posting nothing.

Settings and the plan load as for ``run`` (a problem there is exit 2); then each check
prints one line, ``ok``, ``FAIL`` (with the fix) or ``skip``, and any failure makes the
exit code 1. Every request is a read: Jira ``serverInfo``, ``myself``, ``project/{key}``,
``field`` and ``jql/parse`` (no search runs on Cloud); Slack ``auth.test`` and
``conversations.info``; a Teams bot token from the login host. A Workflows URL is only
checked for its shape, as posting to it is the only way to reach it. Secrets (tokens,
the Workflows URL, the database password) never reach the output.

The connectors are imported by the functions that use them, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from okr_sync.cli.common import (
    OutputFormat,
    OutputOption,
    PlanOption,
    UsageError,
    describe_database_url,
    fail_usage,
    inert,
    load_settings,
    open_database,
    resolve_plan,
    stdout,
)
from okr_sync.exit_codes import ExitCode

if TYPE_CHECKING:
    from okr_sync.config.plan import Plan
    from okr_sync.config.settings import Settings
    from okr_sync.connectors.jira.client import JiraClient
    from okr_sync.connectors.jira.source import JiraSource
    from okr_sync.connectors.slack.client import SlackClient
    from okr_sync.connectors.teams.client import TeamsBotClient
    from okr_sync.sync.fetch_plan import SourceFetchPlan

Status = Literal["ok", "fail", "skip"]
#: How the bot is invited when a route's channel does not have it (README "The Slack app").
INVITE = "/invite @okr-sync"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}

    def line(self) -> str:
        label = "FAIL" if self.status == "fail" else self.status
        return f"{label:<4} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Connectors:
    """How the checks reach Jira, Slack and the Teams bot (tests point them at sandboxes).

    ``slack`` and ``teams_bot`` are ``None`` when settings hold no credentials for them.
    """

    jira: Callable[[JiraSource], JiraClient]
    slack: Callable[[], SlackClient] | None
    teams_bot: Callable[[], TeamsBotClient] | None

    @staticmethod
    def from_settings(settings: Settings) -> Connectors:
        from okr_sync.connectors.jira.client import JiraClient
        from okr_sync.sync.runtime import senders_from_settings

        senders = senders_from_settings(settings)
        return Connectors(JiraClient, senders.slack, senders.teams_bot)


def run_checks(settings: Settings, plan: Plan, plan_path: Path,
               connectors: Connectors) -> list[Check]:
    """Every check, in report order (nothing is written or posted)."""
    krs = len(plan.key_results())
    checks = [Check("settings", "ok", f"settings and plan {plan_path} load "
                                      f"({len(plan.objectives)} objectives, {krs} key results)")]
    checks.append(database_check(settings.database_url))
    checks.extend(jira_checks(settings, plan, connectors))
    checks.extend(slack_checks(plan, connectors))
    checks.extend(teams_checks(settings, plan, connectors))
    return checks


# -- the state store -------------------------------------------------------------------

def database_check(url: str) -> Check:
    """Reachable, and at this okr-sync's schema revision (it is never migrated here)."""
    from sqlalchemy.engine import make_url

    from okr_sync.sync.store.database import create_store_engine, is_sqlite_memory
    from okr_sync.sync.store.schema import current_revision, head_revision

    shown = describe_database_url(url)
    upgrade = "run okr-sync db upgrade"
    try:
        parsed = open_database(url, lambda: make_url(url))
        if parsed.get_backend_name() == "sqlite" and parsed.database \
                and not is_sqlite_memory(parsed) and not parsed.database.startswith("file:") \
                and not Path(parsed.database).expanduser().exists():
            # Connecting would create the file: a check must leave no trace.
            return Check("database", "fail", f"{shown}: no state store there yet; {upgrade}")
        engine = create_store_engine(url)
        try:
            current = open_database(url, lambda: current_revision(engine))
        finally:
            engine.dispose()
    except UsageError as error:
        return Check("database", "fail", str(error))
    head = head_revision()
    if current == head:
        return Check("database", "ok", f"{shown} at schema revision {head} (current)")
    if current is None:
        return Check("database", "fail", f"{shown} has no schema yet; {upgrade}")
    return Check("database", "fail",
                 f"{shown} is at schema revision {current}, this okr-sync's is {head}: {upgrade} "
                 "(or, if a newer okr-sync wrote it, upgrade okr-sync)")


# -- Jira ------------------------------------------------------------------------------

def jira_checks(settings: Settings, plan: Plan, connectors: Connectors) -> list[Check]:
    """Per Jira source the plan measures from: credentials, projects, fields, raw JQL."""
    from okr_sync.connectors.errors import ConnectorError
    from okr_sync.sync.fetch_plan import build_fetch_plan
    from okr_sync.sync.runtime import ConfigurationError, jira_sources

    fetch_plan = build_fetch_plan(plan)
    if not fetch_plan:
        return [Check("jira", "skip", "the plan measures nothing from Jira")]
    checks = []
    # Each source on its own: one without settings, or unreachable, is its line only.
    for name in sorted(fetch_plan):
        try:
            source = jira_sources(settings, plan, {name: fetch_plan[name]})[name]
        except ConfigurationError as error:
            checks.append(Check(f"jira {name}", "fail", str(error)))
            continue
        with connectors.jira(source) as client:
            try:
                checks.append(_jira_site(name, client, plan, fetch_plan[name]))
            except ConnectorError as error:
                checks.append(Check(f"jira {name}", "fail", str(error)))
                checks.append(Check(f"jira {name} jql", "skip",
                                    f"needs a working connection to Jira {name}"))
                continue
            checks.append(_jira_jql(name, client, fetch_plan[name]))
    return checks


def _jira_site(name: str, client: JiraClient, plan: Plan, wanted: SourceFetchPlan) -> Check:
    from okr_sync.config.plan import uses_points
    from okr_sync.connectors.jira.source import AUTO

    kind = "Cloud" if client.is_cloud else "Data Center"
    me = client.myself()
    who = me.get("emailAddress") or me.get("displayName") or me.get("name") or "?"
    parts = [f"{client.site} as {who} ({kind})"]
    problems = []
    config = plan.jira[name]
    projects = sorted({*(p.upper() for p in config.projects), *wanted.projects})
    if projects:
        missing = client.missing_projects(projects)
        if missing:
            problems.append(f"no project {', '.join(missing)} (or this user may not browse "
                            f"it): fix jira.{name}.projects / the selectors, or grant access")
        else:
            parts.append(f"projects {', '.join(projects)} exist")
    named = [*wanted.extra_fields]
    if config.story_points_field != AUTO:
        named.append(config.story_points_field)
    if named:
        known = client.field_ids()
        unknown = sorted({f for f in named if f not in known})
        if unknown:
            problems.append(f"no field {', '.join(unknown)} on this site: check the field "
                            "ids in the plan (Jira: Settings > Issues > Custom fields)")
        else:
            parts.append(f"fields {', '.join(sorted(set(named)))} resolve")
    if any(uses_points(m) for _, m in plan.jira_measures() if m.source == name):
        points = client.discover_story_points_field()
        if points is None:
            problems.append(f"no story points field found: set jira.{name}.story_points_field")
        else:
            parts.append(f"story points field {points}")
    if problems:
        return Check(f"jira {name}", "fail", "; ".join(problems))
    return Check(f"jira {name}", "ok", ", ".join(parts))


def _jira_jql(name: str, client: JiraClient, wanted: SourceFetchPlan) -> Check:
    from okr_sync.connectors.errors import ConnectorError

    queries = [m.jql for m in wanted.memberships]
    if not queries:
        return Check(f"jira {name} jql", "skip", "no raw-JQL measure")
    how = "jql/parse, nothing searched" if client.is_cloud else "empty search pages"
    try:
        errors = client.jql_errors(list(dict.fromkeys(queries)))
    except ConnectorError as error:
        return Check(f"jira {name} jql", "fail", str(error))
    refused = [f"{m.owner}: {'; '.join(errors[m.jql])}" for m in wanted.memberships
               if errors.get(m.jql)]
    if refused:
        return Check(f"jira {name} jql", "fail",
                     "Jira refuses " + " | ".join(refused) + " (fix the measure's jql)")
    return Check(f"jira {name} jql", "ok", f"{len(wanted.memberships)} raw-JQL measures "
                                           f"valid ({how})")


# -- Slack -----------------------------------------------------------------------------

def _routes_of(plan: Plan, kind: str) -> dict[str, list[str]]:
    """Target key (channel, url_env, conversation id) -> the routes that use it."""
    found: dict[str, list[str]] = {}
    for route, targets in plan.routes.items():
        for target in targets:
            if kind == "slack" and target.slack is not None:
                found.setdefault(target.slack.channel, []).append(route)
            elif kind == "teams_workflow" and target.teams_workflow is not None:
                found.setdefault(target.teams_workflow.url_env, []).append(route)
            elif kind == "teams_bot" and target.teams_bot is not None:
                found.setdefault(target.teams_bot.conversation_id, []).append(route)
    return found


def slack_checks(plan: Plan, connectors: Connectors) -> list[Check]:
    """``auth.test``, then each route's channel: it exists, has the bot, is not archived."""
    from okr_sync.connectors.errors import ConnectorError

    channels = _routes_of(plan, "slack")
    if connectors.slack is None:
        if channels:
            return [Check("slack", "fail", f"routes {', '.join(_all_routes(channels))} post "
                                           "to Slack: set OKR_SYNC_SLACK_BOT_TOKEN")]
        return [Check("slack", "skip", "not configured")]
    client = connectors.slack()
    try:
        try:
            me = client.auth_test()
        except ConnectorError as error:
            return [Check("slack auth", "fail", str(error)),
                    *(Check(f"slack channel {c}", "skip", "the token does not work")
                      for c in channels)]
        bot = str(me.get("user") or "okr-sync")
        checks = [Check("slack auth", "ok", f"the token is {bot}'s in {me.get('team') or '?'}")]
        for channel, routes in channels.items():
            checks.append(_slack_channel(client, channel, routes))
        return checks
    finally:
        client.close()


def _slack_channel(client: SlackClient, channel: str, routes: Sequence[str]) -> Check:
    from okr_sync.connectors.errors import ConnectorError
    from okr_sync.connectors.slack.client import SlackChannelError

    name = f"slack channel {channel}"
    used = f"route {', '.join(routes)}"
    try:
        info = client.conversation_info(channel)
    except SlackChannelError:
        return Check(name, "fail", f"no such channel ({used}), or a private one without the "
                                   f"bot: check the id in the plan, or {INVITE} there")
    except ConnectorError as error:
        return Check(name, "fail", str(error))
    if info.is_archived:
        return Check(name, "fail", f"#{info.name} is archived ({used}): unarchive it or "
                                   "route to another channel")
    if not info.is_member:
        return Check(name, "fail", f"the bot is not a member of #{info.name} ({used}); "
                                   f"invite it with {INVITE}")
    return Check(name, "ok", f"#{info.name}, the bot is a member ({used})")


def _all_routes(by_key: dict[str, list[str]]) -> list[str]:
    return sorted({r for routes in by_key.values() for r in routes})


# -- Teams -----------------------------------------------------------------------------

def teams_checks(settings: Settings, plan: Plan, connectors: Connectors) -> list[Check]:
    """The bot's token (when configured or routed to), the keys that sign Teams check-ins
    (when on), each Workflows URL's shape."""
    return [_teams_bot(plan, connectors), *_teams_checkin_keys(settings),
            *_teams_workflows(plan)]


def _teams_checkin_keys(settings: Settings) -> list[Check]:
    """Whether serve could check Bot Framework requests (OKR_SYNC_TEAMS_BOT_CHECKINS)."""
    from okr_sync.connectors.teams.bot_auth import BotAuthError, BotFrameworkKeys

    if not settings.teams_bot_checkins:
        return []
    keys = BotFrameworkKeys(settings.teams_openid_metadata_url)
    try:
        count = keys.refresh()
    except BotAuthError as error:
        return [Check("teams check-ins", "fail", f"signing keys unavailable: {error}")]
    finally:
        keys.close()
    if count == 0:
        return [Check("teams check-ins", "fail",
                      f"{settings.teams_openid_metadata_url} lists no usable signing key")]
    return [Check("teams check-ins", "ok",
                  f"{count} signing key{'s' if count != 1 else ''} from "
                  f"{settings.teams_openid_metadata_url}")]


def _teams_bot(plan: Plan, connectors: Connectors) -> Check:
    from okr_sync.connectors.errors import ConnectorError

    conversations = _routes_of(plan, "teams_bot")
    if connectors.teams_bot is None:
        if conversations:
            return Check("teams bot", "fail",
                         f"routes {', '.join(_all_routes(conversations))} post through the "
                         "Teams bot: set OKR_SYNC_TEAMS_APP_ID, OKR_SYNC_TEAMS_APP_SECRET and "
                         "OKR_SYNC_TEAMS_TENANT_ID")
        return Check("teams bot", "skip", "not configured")
    bot = connectors.teams_bot()
    try:
        bot.acquire_token()
    except ConnectorError as error:
        return Check("teams bot", "fail", str(error))
    finally:
        bot.close()
    used = f"{len(conversations)} conversations routed" if conversations else "no route uses it"
    return Check("teams bot", "ok", f"token acquired for app {bot.app_id} in tenant "
                                    f"{bot.tenant_id} ({used})")


def _teams_workflows(plan: Plan) -> list[Check]:
    from okr_sync.connectors.teams.client import checked_workflow_url

    variables = _routes_of(plan, "teams_workflow")
    if not variables:
        return [Check("teams workflow", "skip", "no route posts to a Workflows webhook")]
    checks = []
    for variable, routes in variables.items():
        name = f"teams workflow {variable}"
        used = f"route {', '.join(routes)}"
        url = os.environ.get(variable)
        if not url:
            checks.append(Check(name, "fail", f"{variable} is not set ({used}): copy the "
                                              "workflow's webhook URL into it"))
            continue
        try:
            checked_workflow_url(url)
        except ValueError as error:  # its text never quotes the URL
            checks.append(Check(name, "fail", f"{variable}: {error} ({used})"))
            continue
        checks.append(Check(name, "ok", f"set to a well-formed webhook URL ({used}; not posted "
                                        "to, as Workflows has no read-only call)"))
    return checks


# -- the command -----------------------------------------------------------------------

def emit(checks: Sequence[Check], output: OutputFormat) -> None:
    ok = not any(c.status == "fail" for c in checks)
    if output is OutputFormat.json:
        document = {"checks": [c.to_json() for c in checks], "ok": ok}
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
        return
    for check in checks:
        stdout.print(inert(check.line()), markup=False, highlight=False, emoji=False)
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "fail", "skip")}
    verdict = "all checks pass" if ok else "some checks failed"
    stdout.print(f"{verdict}: {counts['ok']} ok, {counts['fail']} failed, "
                 f"{counts['skip']} skipped", markup=False, highlight=False)


def doctor_command(
    plan: PlanOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Check settings, Jira, Slack, Teams and the store, without posting anything.

    \b
    Exit codes:
      0   every check passes (skips allowed)
      1   a check failed (each failing line says what to fix)
      2   settings or plan error
    """
    try:
        settings = load_settings()
        path, loaded = resolve_plan(plan, settings)
    except UsageError as error:
        fail_usage(error)
    checks = run_checks(settings, loaded, path, Connectors.from_settings(settings))
    emit(checks, output)
    failed = any(c.status == "fail" for c in checks)
    raise typer.Exit(ExitCode.FAILURES if failed else ExitCode.OK)
