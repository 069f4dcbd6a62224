from __future__ import annotations

import pytest
from pydantic import ValidationError

from okr_sync.config.settings import (
    Settings,
    UnknownVariableError,
    check_variables,
    prefixed_names,
)

TOKEN = "xoxb-super-secret-token-123"


def test_settings_given_environment_reads_prefixed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA_URL", "https://acme.atlassian.net")
    monkeypatch.setenv("OKR_SYNC_JIRA_EMAIL", "bot@acme.test")
    monkeypatch.setenv("OKR_SYNC_JIRA_API_TOKEN", "jira-secret")
    monkeypatch.setenv("OKR_SYNC_DATABASE_URL", "sqlite:///x.db")
    settings = Settings(_env_file=None)
    assert settings.jira_url == "https://acme.atlassian.net"
    assert settings.jira_api_token is not None
    assert settings.jira_api_token.get_secret_value() == "jira-secret"
    assert settings.database_url == "sqlite:///x.db"


def test_settings_given_defaults_match_contract() -> None:
    settings = Settings(_env_file=None)
    assert str(settings.plan) == "okr-plan.yaml"
    assert settings.database_url == "sqlite:///okr-sync.db"
    assert settings.slack_api_url == "https://slack.com/api/"


def test_settings_given_secrets_never_shows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKR_SYNC_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("OKR_SYNC_TEAMS_APP_SECRET", TOKEN)
    monkeypatch.setenv("OKR_SYNC_JIRA_PAT", TOKEN)
    settings = Settings(_env_file=None)
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in settings.model_dump_json()


def test_settings_given_dotenv_file_and_secrets_dir_reads_both(tmp_path, monkeypatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OKR_SYNC_SLACK_API_URL=http://127.0.0.1:9999/api/\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OKR_SYNC_SLACK_BOT_TOKEN").write_text(TOKEN)
    settings = Settings(_env_file=env_file, _secrets_dir=secrets)
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2",
                                 "https://jira.example.com"])
def test_settings_given_https_or_loopback_http_accepts(url: str, monkeypatch) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA_URL", url)
    assert Settings(_env_file=None).jira_url == url


@pytest.mark.parametrize("url", ["http://jira.example.com", "http://10.0.0.5", "ftp://x", "jira"])
def test_settings_given_plain_http_to_remote_host_refuses(url: str, monkeypatch) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA_URL", url)
    with pytest.raises(ValidationError, match="OKR_SYNC_JIRA_URL must"):
        Settings(_env_file=None)


def test_settings_given_email_without_token_refuses(monkeypatch) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA_EMAIL", "bot@acme.test")
    with pytest.raises(ValidationError, match="go together"):
        Settings(_env_file=None)


def test_check_variables_given_typo_refuses_with_did_you_mean() -> None:
    with pytest.raises(UnknownVariableError) as error:
        check_variables(["OKR_SYNC_DATABSE_URL", "OKR_SYNC_PLAN"])
    assert str(error.value) == (
        "unknown setting OKR_SYNC_DATABSE_URL: did you mean OKR_SYNC_DATABASE_URL?")


@pytest.mark.parametrize("name", [
    "OKR_SYNC_JIRA__STAGING__URL", "OKR_SYNC_JIRA__EU_SITE__API_TOKEN",
    "OKR_SYNC_JIRA__DC__PAT", "OKR_SYNC_JIRA__DC__EMAIL",
    "OKR_SYNC_TEST_DATABASE_URL", "OKR_SYNC_UPDATE_GOLDEN", "OKR_SYNC_LOG_LEVEL",
    "OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED", "OKR_SYNC_TEAMS_AUTHORITY_HOST",
])
def test_check_variables_given_known_reserved_or_test_names_accepts(name: str) -> None:
    check_variables([name])


def test_check_variables_given_name_the_plan_allows_accepts() -> None:
    check_variables(["OKR_SYNC_WF_ENTERPRISE"], allowed=["OKR_SYNC_WF_ENTERPRISE"])
    with pytest.raises(UnknownVariableError):
        check_variables(["OKR_SYNC_WF_ENTERPRISE"])


def test_prefixed_names_given_environment_and_dotenv_reads_both_upper_cased(tmp_path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("okr_sync_plna=x.yaml\nOTHER=1\n")
    names = prefixed_names({"OKR_SYNC_PLAN": "p", "HOME": "/root"}, dotenv)
    assert names == ["OKR_SYNC_PLAN", "OKR_SYNC_PLNA"]


def test_settings_given_allow_unsigned_webhooks_reads_it_and_defaults_to_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).webhook_allow_unsigned is False
    monkeypatch.setenv("OKR_SYNC_WEBHOOK_ALLOW_UNSIGNED", "true")
    assert Settings(_env_file=None).webhook_allow_unsigned is True


def test_settings_given_webhook_debounce_reads_seconds_defaults_to_5_and_refuses_negative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).webhook_debounce_seconds == 5.0
    monkeypatch.setenv("OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS", "0.25")
    assert Settings(_env_file=None).webhook_debounce_seconds == 0.25
    monkeypatch.setenv("OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS", "-1")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_settings_given_bot_checkins_without_app_id_refuses_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKR_SYNC_TEAMS_BOT_CHECKINS", "true")
    with pytest.raises(ValueError, match="OKR_SYNC_TEAMS_BOT_CHECKINS needs OKR_SYNC_TEAMS_APP_ID"):
        Settings(_env_file=None)
    monkeypatch.setenv("OKR_SYNC_TEAMS_APP_ID", "00000000-0000-4000-8000-0000000000b0")
    settings = Settings(_env_file=None)
    assert settings.teams_bot_checkins
    assert settings.teams_openid_metadata_url == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration")


def test_settings_given_plain_http_openid_metadata_off_loopback_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKR_SYNC_TEAMS_OPENID_METADATA_URL", "http://login.example/x")
    with pytest.raises(ValueError, match="OKR_SYNC_TEAMS_OPENID_METADATA_URL must use https"):
        Settings(_env_file=None)


def test_settings_given_teams_tenant_ids_reads_a_comma_list_and_unset_means_any(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).teams_tenant_id_set is None
    monkeypatch.setenv("OKR_SYNC_TEAMS_TENANT_IDS", " t-1 , t-2,,")
    assert Settings(_env_file=None).teams_tenant_id_set == frozenset({"t-1", "t-2"})
