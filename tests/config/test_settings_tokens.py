"""Issue 11: a token with a character HTTP headers cannot carry is refused at start."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from okr_sync.config.settings import Settings


def test_settings_given_slack_token_outside_latin1_refuses_it_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, slack_bot_token=SecretStr("xoxb-\u2019secret-value"))

    text = str(raised.value)
    assert "OKR_SYNC_SLACK_BOT_TOKEN has a character that cannot be sent" in text
    assert "secret-value" not in text


def test_settings_given_ascii_slack_token_accepts_it() -> None:
    settings = Settings(_env_file=None, slack_bot_token=SecretStr("xoxb-1-2-abc"))

    assert settings.slack_bot_token is not None
