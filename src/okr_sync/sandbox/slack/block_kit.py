"""Block Kit limits as Slack enforces them on ``chat.postMessage`` / ``chat.update``.

Used by the Slack sandbox; usable by any test that wants Slack's verdict on a
payload. Limits: 50 blocks; section text 3000 and at most 10 fields of 2000;
header plain_text 150; context at most 10 elements; actions 25 (a button's text plain
up to 75, ``action_id`` 255 and unique, ``value`` 2000); markdown 12000; ``block_id`` at
most 255 and unique; known block types only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

MAX_BLOCKS = 50
KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions", "context", "divider", "file", "header", "image", "input",
        "markdown", "rich_text", "section", "table", "video",
    }
)  # fmt: skip
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


class BlockProblems(NamedTuple):
    code: str
    errors: list[str]


def _text_errors(obj: Any, pointer: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES:
        return [f"must be a text object [json-pointer:{pointer}]"]
    if plain_only and obj["type"] != "plain_text":
        return [f"must be plain_text [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be a non-empty string [json-pointer:{pointer}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _list_errors(value: Any, pointer: str, most: int) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"must be a non-empty array [json-pointer:{pointer}]"]
    if len(value) > most:
        return [f"must contain at most {most} items [json-pointer:{pointer}]"]
    return []


# Arrays inside blocks: (key, most items, text limit of each item or None).
LIST_RULES = {
    "section": ("fields", 10, 2000), "context": ("elements", 10, 3000),
    "actions": ("elements", 25, None), "rich_text": ("elements", 100, None),
}  # fmt: skip


def _button_errors(element: Any, pointer: str) -> list[str]:
    """A button's limits: plain_text text up to 75, action_id 255, value 2000."""
    if not isinstance(element, dict) or element.get("type") != "button":
        return []
    errors = _text_errors(element.get("text"), f"{pointer}/text", 75, plain_only=True)
    for key, most in (("action_id", 255), ("value", 2000)):
        value = element.get(key)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= most):
            errors.append(f"must be 1 to {most} characters [json-pointer:{pointer}/{key}]")
    return errors


def _block_errors(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        return [f"unsupported type: {kind} [json-pointer:{pointer}/type]"]
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > 255):
        return [f"must be a string of at most 255 characters [json-pointer:{pointer}/block_id]"]
    errors: list[str] = []
    if kind == "section" and "text" not in block and "fields" not in block:
        errors.append(f"must provide text or fields [json-pointer:{pointer}]")
    if kind == "header" or (kind == "section" and "text" in block):
        limit, plain = (150, True) if kind == "header" else (3000, False)
        errors += _text_errors(block.get("text"), f"{pointer}/text", limit, plain_only=plain)
    if kind in LIST_RULES and (kind != "section" or "fields" in block):
        key, most, item_limit = LIST_RULES[kind]
        found = _list_errors(block.get(key), f"{pointer}/{key}", most)
        items = [] if found or item_limit is None else list(enumerate(block[key]))
        for index, item in items:
            if not (isinstance(item, dict) and item.get("type") == "image"):
                found += _text_errors(item, f"{pointer}/{key}/{index}", item_limit or 0)
        errors += found
    if kind == "actions" and isinstance(block.get("elements"), list):
        for index, element in enumerate(block["elements"]):
            errors += _button_errors(element, f"{pointer}/elements/{index}")
    if kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 12_000:
            errors.append(f"must be 1 to 12000 characters [json-pointer:{pointer}/text]")
    if kind == "image":
        if not isinstance(block.get("alt_text"), str):
            errors.append(f"missing required field: alt_text [json-pointer:{pointer}]")
        if "image_url" not in block and "slack_file" not in block:
            errors.append(f"missing required field: image_url [json-pointer:{pointer}]")
    return errors


def _text_length(value: Any) -> int:
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _text_length(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    return 0


def block_problems(blocks: Any, *, max_total_text: int | None = None) -> BlockProblems | None:
    """Slack's verdict on a message's ``blocks``: ``None`` when it would accept them.

    Otherwise the error code (``invalid_blocks`` or ``msg_blocks_too_long``) and
    Slack-style messages with a JSON pointer to each offending field.
    """
    if not isinstance(blocks, list):
        return BlockProblems("invalid_blocks", ["must be an array [json-pointer:/blocks]"])
    if len(blocks) > MAX_BLOCKS:
        too_many = f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        return BlockProblems("invalid_blocks", [too_many])
    errors = [e for i, b in enumerate(blocks) for e in _block_errors(b, f"/blocks/{i}")]
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(ids) != len(set(ids)):
        errors.append("block_id must be unique [json-pointer:/blocks]")
    actions = [e.get("action_id") for b in blocks if isinstance(b, dict)
               and b.get("type") == "actions" and isinstance(b.get("elements"), list)
               for e in b["elements"] if isinstance(e, dict) and e.get("action_id")]
    if len(actions) != len(set(actions)):
        errors.append("action_id must be unique [json-pointer:/blocks]")
    if errors:
        return BlockProblems("invalid_blocks", errors)
    if max_total_text is not None and _text_length(blocks) > max_total_text:
        return BlockProblems("msg_blocks_too_long", [f"block text exceeds {max_total_text}"])
    return None
