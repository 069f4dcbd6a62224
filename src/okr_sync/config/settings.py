"""Runtime settings (DESIGN.md A4): environment, ``.env`` and a secrets directory.

Every setting has the prefix ``OKR_SYNC_``. Secrets are :class:`SecretStr`, so
``repr``, ``str`` and logs show ``**********``. Plain ``http://`` URLs are
accepted only for loopback hosts (the sandboxes and tests).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRETS_DIR = Path("/run/secrets")


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OKR_SYNC_",
        env_file=".env",
        env_file_encoding="utf-8",
        secrets_dir=DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    plan: Path = Path("okr-plan.yaml")
    database_url: str = "sqlite:///okr-sync.db"

    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_pat: SecretStr | None = None

    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    teams_app_id: str | None = None
    teams_app_secret: SecretStr | None = None
    teams_tenant_id: str | None = None
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    teams_authority_host: str = "https://login.microsoftonline.com"

    webhook_secret: SecretStr | None = Field(
        default=None, description="shared secret of the Jira webhook (X-Hub-Signature)"
    )

    @field_validator("jira_url", "slack_api_url", "teams_service_url", "teams_authority_host")
    @classmethod
    def _safe_url(cls, value: str | None, info: object) -> str | None:
        if value is None:
            return None
        field_name = getattr(info, "field_name", "url")
        return check_url(value, what=f"OKR_SYNC_{str(field_name).upper()}")

    @model_validator(mode="after")
    def _jira_auth_pairs(self) -> Settings:
        if (self.jira_email is None) != (self.jira_api_token is None):
            raise ValueError(
                "OKR_SYNC_JIRA_EMAIL and OKR_SYNC_JIRA_API_TOKEN go together"
                " (Jira Cloud basic auth)"
            )
        return self
