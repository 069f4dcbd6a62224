"""Settings of several Jira sources (issue 14 item 1): OKR_SYNC_JIRA__<NAME>__* connect the
plan's further sources; the flat OKR_SYNC_JIRA_* stay the source ``main``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from okr_sync.config.settings import Settings, UnknownVariableError, check_variables

PAT = "legacy-pat-Wq93-secret"
HOOK = "legacy-hook-Wq93-secret"


def test_settings_given_nested_variables_connect_a_named_source_beside_main(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA_URL", "https://acme.atlassian.net")
    monkeypatch.setenv("OKR_SYNC_JIRA_PAT", "main-pat")
    monkeypatch.setenv("OKR_SYNC_JIRA__LEGACY__URL", "https://jira.acme.internal")
    monkeypatch.setenv("OKR_SYNC_JIRA__LEGACY__PAT", PAT)
    monkeypatch.setenv("OKR_SYNC_JIRA__BU_TWO__URL", "https://bu2.atlassian.net")
    monkeypatch.setenv("OKR_SYNC_JIRA__BU_TWO__EMAIL", "bot@acme.test")
    monkeypatch.setenv("OKR_SYNC_JIRA__BU_TWO__API_TOKEN", "bu2-token")

    settings = Settings(_env_file=None)

    main, legacy, bu_two = (settings.jira_source(n) for n in ("main", "legacy", "bu_two"))
    assert main is not None and main.url == "https://acme.atlassian.net"
    assert legacy is not None and legacy.url == "https://jira.acme.internal"
    assert legacy.pat is not None and legacy.pat.get_secret_value() == PAT
    assert bu_two is not None and bu_two.email == "bot@acme.test" and bu_two.pat is None
    assert settings.jira_source("Legacy") == legacy  # plan names compare in lower case
    assert settings.jira_source("other") is None
    assert settings.connected_sources() == {"main", "legacy", "bu_two"}
    assert settings.jira_sites() == ["https://acme.atlassian.net", "https://bu2.atlassian.net",
                                     "https://jira.acme.internal"]


def test_settings_given_named_source_in_dotenv_reads_it_and_never_shows_its_secrets(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"OKR_SYNC_JIRA__LEGACY__URL=http://127.0.0.1:9\n"
                      f"OKR_SYNC_JIRA__LEGACY__PAT={PAT}\n"
                      f"OKR_SYNC_JIRA__LEGACY__WEBHOOK_SECRET={HOOK}\n")

    settings = Settings(_env_file=dotenv)

    legacy = settings.jira_source("legacy")
    assert legacy is not None and legacy.webhook_secret is not None
    assert legacy.webhook_secret.get_secret_value() == HOOK
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(legacy)):
        assert PAT not in shown and HOOK not in shown
    assert {s.get_secret_value() for s in settings.secret_values()} >= {PAT, HOOK}


@pytest.mark.parametrize(("variables", "message"), [
    ({"OKR_SYNC_JIRA__LEGACY__URL": "http://jira.example.com"},
     "OKR_SYNC_JIRA__LEGACY__URL must use https://"),
    ({"OKR_SYNC_JIRA__LEGACY__EMAIL": "bot@acme.test"},
     "OKR_SYNC_JIRA__LEGACY__EMAIL and OKR_SYNC_JIRA__LEGACY__API_TOKEN go together"),
    ({"OKR_SYNC_JIRA_URL": "https://a.atlassian.net",
      "OKR_SYNC_JIRA__MAIN__URL": "https://b.atlassian.net"}, "the source main is set twice"),
])
def test_settings_given_bad_named_source_refuses_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)


def test_settings_given_main_by_nested_variables_is_the_source_main(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKR_SYNC_JIRA__MAIN__URL", "https://a.atlassian.net")
    monkeypatch.setenv("OKR_SYNC_JIRA__MAIN__PAT", "p")
    main = Settings(_env_file=None).jira_source("main")
    assert main is not None and main.url == "https://a.atlassian.net"


def test_check_variables_given_named_source_keys_accepts_them_and_refuses_typos() -> None:
    check_variables([f"OKR_SYNC_JIRA__LEGACY__{key}" for key in
                     ("URL", "EMAIL", "API_TOKEN", "PAT", "WEBHOOK_SECRET")])
    with pytest.raises(UnknownVariableError) as error:
        check_variables(["OKR_SYNC_JIRA__LEGACY__PATT", "OKR_SYNC_JIRA_EMIAL"])
    assert str(error.value) == (
        "unknown setting OKR_SYNC_JIRA__LEGACY__PATT: did you mean OKR_SYNC_JIRA__LEGACY__PAT?; "
        "unknown setting OKR_SYNC_JIRA_EMIAL: did you mean OKR_SYNC_JIRA_EMAIL?"
    )


def test_settings_given_named_source_in_secrets_dir_reads_it_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OKR_SYNC_JIRA__LEGACY__PAT").write_text(PAT + "\n")
    (secrets / "OKR_SYNC_JIRA__LEGACY__URL").write_text("https://from-file.example.com")
    monkeypatch.setenv("OKR_SYNC_JIRA__LEGACY__URL", "https://jira.acme.internal")

    legacy = Settings(_env_file=None, _secrets_dir=secrets).jira_source("legacy")

    assert legacy is not None and legacy.url == "https://jira.acme.internal"
    assert legacy.pat is not None and legacy.pat.get_secret_value() == PAT
