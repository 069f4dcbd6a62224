"""What the Slack sandbox holds: messages with their edit history, and its request log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MessageVersion:
    """An earlier version of an edited message."""

    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None


@dataclass
class SandboxMessage:
    """A message as the sandbox holds it (current version plus earlier ones)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    metadata: dict[str, Any] | None
    edits: list[MessageVersion] = field(default_factory=list)
    edited_ts: str | None = None

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    def as_json(self, *, with_metadata: bool = True) -> dict[str, Any]:
        optional = {
            "blocks": self.blocks, "thread_ts": self.thread_ts,
            "edited": self.edited_ts and {"user": "U0SANDBOX", "ts": self.edited_ts},
            "metadata": self.metadata if with_metadata else None,
        }  # fmt: skip
        data = {"type": "message", "user": "U0SANDBOX", "bot_id": "B0SANDBOX", "ts": self.ts,
                "text": self.text}  # fmt: skip
        return data | {key: value for key, value in optional.items() if value is not None}


@dataclass(frozen=True)
class SlackRequestRecord:
    method: str
    channel: str | None
    status: int
    error: str | None
