"""A sandbox world whose every credential is a distinctive secret, and the checks for leaks.

Each secret contains :data:`MARK`, so one search over an artefact finds any of them;
:func:`leaks` also looks for the encodings a secret travels in (Basic auth's base64,
URL quoting), so a logged header or URL would be caught too.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sandbox.teams.server import TeamsSandbox
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, DEMO_CONVERSATION, SandboxWorld
from support.paths import DEMO_PLAN

MARK = "s3cr3tQx7"
JIRA_EMAIL = "okr-bot@example.com"
JIRA_TOKEN = f"jira-token-{MARK}-a1"
JIRA_PAT = f"jira-pat-{MARK}-b2"
SLACK_TOKEN = f"xoxb-slack-{MARK}-c3"
TEAMS_SECRET = f"teams-secret-{MARK}-d4"
WEBHOOK_SECRET = f"webhook-{MARK}-e5"
DB_PASSWORD = f"dbpw-{MARK}-f6"
WORKFLOW_SIG = f"wfsig-{MARK}-g7"
SECRETS = (JIRA_TOKEN, JIRA_PAT, SLACK_TOKEN, TEAMS_SECRET, WEBHOOK_SECRET, DB_PASSWORD,
           WORKFLOW_SIG)


def _encodings(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    basic = base64.b64encode(f"{JIRA_EMAIL}:{secret}".encode()).decode()
    return forms | {basic}


#: Every string whose presence in an artefact is a leak.
NEEDLES = sorted({MARK} | {form for s in SECRETS for form in _encodings(s)})


def leaks(where: str, text: str | bytes) -> list[str]:
    """``where: needle`` for each secret (in any encoding) found in ``text``."""
    haystack = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [f"{where}: {needle}" for needle in NEEDLES if needle.encode() in haystack]


def all_leaks(artefacts: Iterable[tuple[str, str | bytes]]) -> list[str]:
    return [leak for where, text in artefacts for leak in leaks(where, text)]


def with_password(database_url: str) -> str:
    """``database_url`` with :data:`DB_PASSWORD` (the test PostgreSQL trusts any password)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return database_url
    return url.set(password=DB_PASSWORD).render_as_string(hide_password=False)


def database_dump(database_url: str) -> bytes:
    """Every row of every table, as text; SQLite: the raw file bytes and its WAL as well,
    PostgreSQL: a ``pg_dump`` too (when the client is installed)."""
    url = make_url(database_url)
    parts: list[bytes] = []
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-journal"):
            path = Path(url.database + suffix)
            if path.exists():
                parts.append(path.read_bytes())
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            for table in tables.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    parts.append(repr(tuple(row)).encode())
    finally:
        engine.dispose()
    pg_dump = shutil.which("pg_dump")
    if url.get_backend_name() == "postgresql" and pg_dump is not None:
        dumped = subprocess.run(
            [pg_dump, "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432),
             "--username", url.username or "postgres", "--no-password", url.database or ""],
            capture_output=True, timeout=120, check=True)
        parts.append(dumped.stdout)
    return b"\n".join(parts)


@dataclass
class SecretWorld:
    world: SandboxWorld
    plan: Path

    def environment(self) -> dict[str, str]:
        """The CLI's environment: every secret set, everything pointed at the sandboxes."""
        teams = self.world.teams
        return {
            **self.world.environment(),
            "OKR_SYNC_PLAN": str(self.plan),
            "OKR_SYNC_TEAMS_APP_ID": teams.app_id,
            "OKR_SYNC_TEAMS_APP_SECRET": TEAMS_SECRET,
            "OKR_SYNC_TEAMS_TENANT_ID": teams.tenant_id,
            "OKR_SYNC_TEAMS_SERVICE_URL": teams.service_url,
            "OKR_SYNC_TEAMS_AUTHORITY_HOST": teams.url,
            "OKR_SYNC_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "OKR_SYNC_LOG_LEVEL": "DEBUG",
        }


def cli_plan(tmp_path: Path, text: str | None = None) -> Path:
    """The demo plan (or ``text``) without its Teams bot route: the CLI cannot reach a
    Microsoft login (the in-process tests cover the bot, through the sandbox's login)."""
    source = DEMO_PLAN.read_text() if text is None else text
    plan = tmp_path / "plan.yaml"
    plan.write_text(source.replace(
        '    - {teams_bot: {conversation_id: "19:demo@thread.tacv2"}}\n', ""))
    return plan


@contextmanager
def secret_world(workdir: Path, database_url: str, *, issues: int = 200, seed: int = 5,
                 deployment: str = "cloud") -> Iterator[SandboxWorld]:
    """The sandboxes with the distinctive credentials (``deployment="dc"``: Jira takes the
    PAT), over ``database_url`` (with the distinctive password when it is PostgreSQL)."""
    data = generate_dataset(seed=seed, issues=issues)
    with (
        JiraSandbox(data, deployment=deployment,  # type: ignore[arg-type]
                    email=JIRA_EMAIL, api_token=JIRA_TOKEN, pat=JIRA_PAT) as jira,
        SlackSandbox(channels=(DEMO_CHANNEL,), token=SLACK_TOKEN) as slack,
        TeamsSandbox(conversations=(DEMO_CONVERSATION,), app_secret=TEAMS_SECRET) as teams,
    ):
        teams.add_workflow("demo", sig=WORKFLOW_SIG)
        yield SandboxWorld(jira, slack, teams, "demo", with_password(database_url))

