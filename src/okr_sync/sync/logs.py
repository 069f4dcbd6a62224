"""Logging for okr-sync: one JSON object per line off a terminal, plain text on one.

JSON lines carry ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and ``msg``, plus
every ``extra={...}`` field of the call, so log pipelines can filter on
``kr``, ``outcome`` or ``duration_s`` without parsing sentences.

Secrets never reach a log line: :class:`~pydantic.SecretStr` values format as
``**********``, and every value registered with :func:`register_secret`
(``configure_logging(secrets=...)``) is masked in the final text, whichever
library logged it and however it was formatted.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import IO, Any

from pydantic import SecretStr

MASK = "[redacted]"
#: Shorter values are too likely to occur by chance to be masked meaningfully.
MIN_SECRET_CHARS = 6

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName"}

#: The names ``OKR_SYNC_LOG_LEVEL`` takes (any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogLevelError(ValueError):
    """``OKR_SYNC_LOG_LEVEL`` names no level (a settings error, exit 2)."""


def parse_level(text: str) -> int:
    """The level named by ``text`` (``debug``, ``INFO``...); numbers and aliases are refused
    so a typo never silently means "log everything" or "log nothing"."""
    name = text.strip().upper()
    if name not in LOG_LEVELS:
        raise LogLevelError(
            f"OKR_SYNC_LOG_LEVEL {text!r} is not a log level: use one of {', '.join(LOG_LEVELS)}"
        )
    return logging.getLevelNamesMapping()[name]


_secrets: set[str] = set()
_secrets_guard = threading.Lock()


def register_secret(value: str | SecretStr | None) -> None:
    """Mask ``value`` wherever it would appear in a log line from now on."""
    if value is None:
        return
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if len(raw) >= MIN_SECRET_CHARS:
        with _secrets_guard:
            _secrets.add(raw)


def redact(text: str) -> str:
    with _secrets_guard:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra={...}`` fields of a record (anything not a standard attribute)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(doc, default=_jsonable, ensure_ascii=False))


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = extra_fields(record)
        if extras:
            pairs = " ".join(
                f"{key}={json.dumps(value, default=_jsonable, ensure_ascii=False)}"
                for key, value in extras.items()
            )
            first, newline, rest = text.partition("\n")
            text = f"{first} {pairs}{newline}{rest}"
        return redact(text)


class _OkrSyncHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler :func:`configure_logging` installed, so a second call replaces it."""


def configure_logging(
    level: int | str = "INFO",
    json_mode: bool | None = None,
    *,
    stream: IO[str] | None = None,
    secrets: Iterable[str | SecretStr | None] = (),
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr): JSON unless it is a terminal.

    ``json_mode=None`` decides by ``stream.isatty()``. Calling again replaces the
    handler installed before. ``secrets`` are registered with :func:`register_secret`.
    """
    target = stream if stream is not None else sys.stderr
    if json_mode is None:
        isatty = getattr(target, "isatty", None)
        json_mode = not (callable(isatty) and isatty())
    for secret in secrets:
        register_secret(secret)
    handler = _OkrSyncHandler(target)
    handler.setFormatter(JsonFormatter() if json_mode else HumanFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OkrSyncHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(parse_level(level) if isinstance(level, str) else level)
    return handler
