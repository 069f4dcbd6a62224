"""Structured logs: JSON lines off a terminal, plain text on one, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.logs import MASK, configure_logging, register_secret
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.service.app import Schedule, ServiceHandle, serve
from okr_sync.sync.service.webhooks import sign
from support.paths import DEMO_PLAN


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_configure_logging_given_non_terminal_writes_one_json_object_per_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("okr_sync.test")
    log.info("pass finished", extra={"outcome": "ok", "changes": ["KR1"], "duration_s": 1.25,
                                     "token": SecretStr("xoxb-should-not-show")})
    log.debug("hidden below the level")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("pass failed\nsecond line")
    first, second = lines(stream)
    assert set(first) == {"ts", "level", "logger", "msg", "outcome", "changes", "duration_s",
                          "token"}
    assert (first["level"], first["logger"], first["msg"]) == ("INFO", "okr_sync.test",
                                                               "pass finished")
    assert first["changes"] == ["KR1"] and first["duration_s"] == 1.25
    assert first["token"] == "**********"
    assert str(first["ts"]).endswith("+00:00")
    assert second["msg"] == "pass failed\nsecond line"
    assert "ValueError: boom" in str(second["exc"])


def test_configure_logging_given_terminal_writes_plain_text_with_fields() -> None:
    stream = Terminal()
    configure_logging("INFO", stream=stream)
    logging.getLogger("okr_sync.test").warning("lost leadership", extra={"holder": "a:1"})
    text = stream.getvalue()
    assert "WARNING okr_sync.test: lost leadership holder=\"a:1\"" in text
    assert not text.startswith("{")


def test_configure_logging_given_second_call_replaces_the_first_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", json_mode=True, stream=first)
    configure_logging("DEBUG", json_mode=False, stream=second)
    logging.getLogger("okr_sync.test").debug("once")
    assert first.getvalue() == "" and "once" in second.getvalue()
    assert logging.getLogger().level == logging.DEBUG


def test_logs_given_registered_secret_mask_it_whoever_logs_it() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_mode=True, stream=stream,
                      secrets=[SecretStr("hunter2-webhook-secret"), None, "abc"])
    register_secret("plain-secret-value")
    logging.getLogger("urllib3.test").warning(
        "url https://x/hook?sig=%s and %s", "hunter2-webhook-secret", "plain-secret-value")
    logging.getLogger("x").info("abc is too short to mask")
    text = stream.getvalue()
    assert "hunter2-webhook-secret" not in text and "plain-secret-value" not in text
    assert text.count(MASK) == 2
    assert "abc is too short" in text


def test_serve_given_debug_logging_leaves_no_trace_of_any_token(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json_mode=True, stream=stream)
    webhook_secret = SecretStr("webhook-secret-for-log-test")
    with sandbox_world(tmp_path, issues=120, seed=3) as world:
        plan = load_plan(DEMO_PLAN)
        runtime = world.runtime(plan)
        secrets = [world.jira.basic_auth[1], world.slack.token, world.teams.app_secret,
                   webhook_secret.get_secret_value()]
        stop = threading.Event()
        handles: list[ServiceHandle] = []
        started = threading.Event()

        def on_started(handle: ServiceHandle) -> None:
            handles.append(handle)
            started.set()

        thread = threading.Thread(target=serve, args=(lambda: runtime, Schedule.parse("1h")),
                                  kwargs={"host": "127.0.0.1", "port": 0, "stop_event": stop,
                                          "webhook_secret": webhook_secret,
                                          "on_started": on_started})
        thread.start()
        try:
            assert started.wait(10)
            for _ in range(400):  # bounded: wait for the first pass to finish
                if handles[0].status().passes:
                    break
                stop.wait(0.05)
            assert handles[0].status().last_outcome == "ok"
            body = b'{"webhookEvent": "jira:issue_updated", "issue": {"key": "ENT-1"}}'
            response = requests.post(handles[0].url + "/webhooks/jira", data=body, timeout=10,
                                     headers={"X-Hub-Signature": sign(webhook_secret, body)})
            assert response.status_code == 202
            logging.getLogger("okr_sync.test").error("leaked %s", world.slack.token)
        finally:
            stop.set()
            thread.join(10)
    text = stream.getvalue()
    records = lines(stream)
    assert any(r["msg"] == "pass finished" for r in records)
    assert any(str(r["logger"]).startswith("urllib3") for r in records)
    for secret in secrets:
        assert secret not in text
    assert f"leaked {MASK}" in text
