"""Runtime settings (DESIGN.md A4): environment, ``.env`` and a secrets directory.

Every setting has the prefix ``OKR_SYNC_``. Secrets are :class:`SecretStr`, so
``repr``, ``str`` and logs show ``**********``. Plain ``http://`` URLs are
accepted only for loopback hosts (the sandboxes and tests).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_SECRETS_DIR = Path("/run/secrets")
PREFIX = "OKR_SYNC_"
#: The source the flat OKR_SYNC_JIRA_* settings connect (and a measure without `source:`).
MAIN_SOURCE = "main"
#: Read outside :class:`Settings`: the log level (by the CLI's start) and the Workflows
#: URL of the built-in demo plan (its `url_env`, set by the sandbox world).
OTHER_VARIABLES = frozenset({"OKR_SYNC_LOG_LEVEL", "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"})
#: The test-suite's own switches: never read by okr-sync, so never a typo of a setting.
TEST_VARIABLES = frozenset({"OKR_SYNC_TEST_DATABASE_URL", "OKR_SYNC_UPDATE_GOLDEN"})
#: What a further Jira source (``jira.<name>`` in the plan) is connected with:
#: ``OKR_SYNC_JIRA__<NAME>__<KEY>`` (DESIGN.md A4).
NESTED_JIRA_KEYS = ("URL", "EMAIL", "API_TOKEN", "PAT", "WEBHOOK_SECRET")
_NESTED_JIRA = re.compile(r"^OKR_SYNC_JIRA__([A-Z0-9_]+?)__(" + "|".join(NESTED_JIRA_KEYS) + ")$")
_NESTED_JIRA_ANY = re.compile(r"^OKR_SYNC_JIRA__([A-Z0-9_]+?)__([A-Z0-9_]*)$")


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, what: str) -> str:
    """Accept ``https://`` anywhere and ``http://`` only on loopback hosts."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return value
    if parts.scheme == "http":
        raise ValueError(f"{what} must use https:// (plain http:// is allowed only for loopback)")
    raise ValueError(f"{what} must be an https:// URL")


class JiraSourceSettings(BaseModel):
    """How one Jira source is connected: its site and credentials (Cloud: email + API
    token; Data Center: a personal access token), and the secret its webhooks are signed
    with when it is not the service-wide ``OKR_SYNC_WEBHOOK_SECRET``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    pat: SecretStr | None = None
    webhook_secret: SecretStr | None = None

    def secrets(self) -> list[SecretStr]:
        return [s for s in (self.api_token, self.pat, self.webhook_secret) if s is not None]


class NestedJiraSecrets(PydanticBaseSettingsSource):
    """Files ``OKR_SYNC_JIRA__<NAME>__<KEY>`` in the secrets directory: the secrets source
    of pydantic-settings reads only flat names, so a further Jira source's PAT mounted as
    a Docker or Kubernetes secret would otherwise be ignored."""

    def __init__(self, settings_cls: type[BaseSettings], secrets: PydanticBaseSettingsSource,
                 ) -> None:
        super().__init__(settings_cls)
        directory = getattr(secrets, "secrets_dir", None)
        self.directory = Path(directory) if isinstance(directory, (str, Path)) else None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        if self.directory is None or not self.directory.is_dir():
            return {}
        sources: dict[str, dict[str, str]] = {}
        for path in sorted(self.directory.iterdir()):
            match = _NESTED_JIRA.match(path.name.upper())
            if match and path.is_file():
                key = match.group(2).lower()
                sources.setdefault(match.group(1).lower(), {})[key] = path.read_text().strip()
        return {"jira": sources} if sources else {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OKR_SYNC_",
        # OKR_SYNC_JIRA__LEGACY__URL -> jira["legacy"].url: the plan's further sources.
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        secrets_dir=DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    plan: Path = Path("okr-plan.yaml")
    plans: Path | None = Field(
        default=None, description="a folder of plan files that `serve` runs together"
    )
    database_url: str = "sqlite:///okr-sync.db"

    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_pat: SecretStr | None = None
    #: Further Jira sources by plan name (lower case), from OKR_SYNC_JIRA__<NAME>__*.
    jira: dict[str, JiraSourceSettings] = Field(default_factory=dict)

    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="the Slack app's signing secret: serve answers its slash command and "
                    "interactivity (check-ins from Slack), and messages carry Check in buttons",
    )

    teams_app_id: str | None = None
    teams_app_secret: SecretStr | None = None
    teams_tenant_id: str | None = None
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    teams_authority_host: str = "https://login.microsoftonline.com"
    teams_bot_checkins: bool = Field(
        default=False,
        description="the bot's change notes and reminders carry a check-in form, and serve "
                    "answers it at POST /api/messages (the bot's messaging endpoint)",
    )
    teams_openid_metadata_url: str = Field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration",
        description="where serve finds the keys that sign Bot Framework requests",
    )
    teams_tenant_ids: str | None = Field(
        default=None,
        description="comma-separated Microsoft Entra tenant ids whose Teams activities "
                    "serve takes at POST /api/messages (unset: any tenant)",
    )

    webhook_secret: SecretStr | None = Field(
        default=None, description="shared secret of the Jira webhook (X-Hub-Signature)"
    )
    webhook_allow_unsigned: bool = Field(
        default=False, description="let serve accept Jira webhooks without a secret"
    )
    webhook_debounce_seconds: float = Field(
        default=5.0, ge=0, le=3600,
        description="how long serve waits after a Jira webhook for more before it runs "
                    "one pass for them all (a bulk edit sends one webhook per issue); "
                    "never longer than 12 times this after the first",
    )

    retention_days: int = Field(
        default=30, ge=8, le=36500,
        description="days of runs, snapshots and delivered outbox rows kept in full "
                    "(`db prune`, and serve once a day); at least 8, so the weekly "
                    "digest's comparison with a week earlier stays exact",
    )
    serve_prune: bool = Field(
        default=True, description="let serve prune the store once a day (retention_days)"
    )

    @field_validator("jira_url", "slack_api_url", "teams_service_url", "teams_authority_host",
                     "teams_openid_metadata_url")
    @classmethod
    def _safe_url(cls, value: str | None, info: object) -> str | None:
        if value is None:
            return None
        field_name = getattr(info, "field_name", "url")
        return check_url(value, what=f"OKR_SYNC_{str(field_name).upper()}")

    @property
    def teams_tenant_id_set(self) -> frozenset[str] | None:
        """The tenants of OKR_SYNC_TEAMS_TENANT_IDS, or None when it is not set."""
        if self.teams_tenant_ids is None or not self.teams_tenant_ids.strip():
            return None
        return frozenset(t.strip() for t in self.teams_tenant_ids.split(",") if t.strip())

    @field_validator("slack_bot_token")
    @classmethod
    def _header_safe(cls, value: SecretStr | None) -> SecretStr | None:
        # The token travels in an HTTP header, which carries Latin-1 only: a pasted
        # curly quote would fail every delivery with an encoding error instead.
        if value is not None:
            try:
                value.get_secret_value().encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(
                    "OKR_SYNC_SLACK_BOT_TOKEN has a character that cannot be sent in an HTTP "
                    "header (a curly quote or dash pasted with it?)"
                ) from None
        return value

    def __repr_args__(self) -> Iterable[tuple[str | None, object]]:
        # The database URL is a plain string (every store call takes it) that may carry
        # a password: repr and str show it masked, like the SecretStr settings.
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = mask_url_password(value)
            yield name, value

    @field_serializer("database_url", when_used="json")
    def _database_url_json(self, value: str) -> str:
        return mask_url_password(value)

    @field_validator("jira", mode="before")
    @classmethod
    def _source_names(cls, value: object) -> object:
        # Variable names are upper case, plan names are compared in lower case.
        if isinstance(value, Mapping):
            return {str(name).lower(): source for name, source in value.items()}
        return value

    @model_validator(mode="after")
    def _jira_auth_pairs(self) -> Settings:
        if (self.jira_email is None) != (self.jira_api_token is None):
            raise ValueError(
                "OKR_SYNC_JIRA_EMAIL and OKR_SYNC_JIRA_API_TOKEN go together"
                " (Jira Cloud basic auth)"
            )
        for name, source in self.jira.items():
            prefix = f"OKR_SYNC_JIRA__{name.upper()}__"
            if name == MAIN_SOURCE and self.jira_url is not None:
                raise ValueError(f"the source main is set twice: by OKR_SYNC_JIRA_URL and {prefix}*"
                                 " (keep one)")
            if source.url is not None:
                check_url(source.url, what=f"{prefix}URL")
            if (source.email is None) != (source.api_token is None):
                raise ValueError(f"{prefix}EMAIL and {prefix}API_TOKEN go together"
                                 " (Jira Cloud basic auth)")
        if self.teams_bot_checkins and not self.teams_app_id:
            raise ValueError(
                "OKR_SYNC_TEAMS_BOT_CHECKINS needs OKR_SYNC_TEAMS_APP_ID (Bot Framework requests "
                "are checked to be addressed to this app id)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The usual order, and after the flat secrets the nested ones (lowest priority).
        nested = NestedJiraSecrets(settings_cls, file_secret_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings, nested

    def jira_source(self, name: str) -> JiraSourceSettings | None:
        """The settings of the plan's Jira source ``name`` (None: settings do not name it).

        The flat ``OKR_SYNC_JIRA_*`` are the source ``main``.
        """
        if name == MAIN_SOURCE and self.jira.get(MAIN_SOURCE) is None:
            if self.jira_url is None and self.jira_pat is None and self.jira_api_token is None:
                return None
            return JiraSourceSettings(url=self.jira_url, email=self.jira_email,
                                      api_token=self.jira_api_token, pat=self.jira_pat,
                                      webhook_secret=self.webhook_secret)
        return self.jira.get(name.lower())

    def connected_sources(self) -> frozenset[str]:
        """The Jira sources settings give a site to (``main`` always counts: its missing
        settings are told when a pass connects, as before several sources)."""
        named = {name for name, source in self.jira.items() if source.url is not None}
        return frozenset(named | {MAIN_SOURCE})

    def jira_sites(self) -> list[str]:
        """The site addresses of every connected Jira source, ``main`` first."""
        main = self.jira_source(MAIN_SOURCE)
        sites = [main.url] if main is not None and main.url else []
        return sites + [s.url for n, s in sorted(self.jira.items()) if n != MAIN_SOURCE and s.url]

    def jira_source_sites(self) -> dict[str, str]:
        """The site address of each connected Jira source, by its lower-case name."""
        sites = {}
        for name in self.connected_sources():
            source = self.jira_source(name)
            if source is not None and source.url:
                sites[name.lower()] = source.url
        return sites

    def secret_values(self) -> list[SecretStr]:
        """Every secret these settings hold (for log masking)."""
        flat = (self.jira_api_token, self.jira_pat, self.slack_bot_token,
                self.slack_signing_secret, self.teams_app_secret, self.webhook_secret)
        return [s for s in flat if s is not None] + [
            s for source in self.jira.values() for s in source.secrets()]


def mask_url_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


class UnknownVariableError(ValueError):
    """An ``OKR_SYNC_*`` variable that no setting reads: most likely a typo (exit 2)."""


def known_variables() -> frozenset[str]:
    fields = frozenset(PREFIX + name.upper() for name in Settings.model_fields)
    return fields | OTHER_VARIABLES | TEST_VARIABLES


def prefixed_names(environ: Mapping[str, str], env_file: Path | None) -> list[str]:
    """The ``OKR_SYNC_*`` names set in ``environ`` and in ``env_file`` (upper-cased, as
    settings compare names case-insensitively)."""
    from dotenv import dotenv_values

    names = set(environ)
    if env_file is not None and env_file.is_file():
        names |= set(dotenv_values(env_file))
    return sorted({n.upper() for n in names if n.upper().startswith(PREFIX)})


def check_variables(names: Iterable[str], allowed: Iterable[str] = ()) -> None:
    """Refuse every name that is neither a setting nor ``allowed`` (the variables a plan
    names itself, such as a Teams Workflows ``url_env``), with a "did you mean"."""
    known = known_variables()
    extra = {a.upper() for a in allowed}
    problems = []
    for name in names:
        if name in known or name in extra or _NESTED_JIRA.match(name):
            continue
        close = difflib.get_close_matches(name, sorted(known - TEST_VARIABLES), n=1)
        nested = _NESTED_JIRA_ANY.match(name)
        if nested:
            # A further source's variable with a misspelt key: suggest the key, not a
            # flat setting.
            keys = difflib.get_close_matches(nested.group(2), NESTED_JIRA_KEYS, n=1)
            close = [f"OKR_SYNC_JIRA__{nested.group(1)}__{keys[0]}"] if keys else []
        hint = f": did you mean {close[0]}?" if close else ""
        problems.append(f"unknown setting {name}{hint}")
    if problems:
        raise UnknownVariableError("; ".join(problems))
