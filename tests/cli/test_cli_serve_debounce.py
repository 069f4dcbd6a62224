"""`okr-sync serve` hands OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS to the service loop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import typer

from okr_sync.cli.serve import serve_command
from okr_sync.sync.service import app
from support.paths import DEMO_PLAN


def test_serve_command_given_webhook_debounce_setting_passes_it_to_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OKR_SYNC_PLANS", "OKR_SYNC_PLAN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OKR_SYNC_WEBHOOK_DEBOUNCE_SECONDS", "0.25")
    seen: dict[str, Any] = {}

    def fake_serve(_factory: object, _schedule: object, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(app, "serve", fake_serve)
    with pytest.raises(typer.Exit):
        serve_command(plan=DEMO_PLAN, plans=None, interval="5m", cron=None, port=0,
                      host="127.0.0.1")
    assert seen["debounce"] == timedelta(seconds=0.25)
