"""Adaptive Card checks as Teams applies them: the 1.5 schema, version, attachments.

The schema is a copy of ``microsoft/AdaptiveCards`` ``schemas/1.5.0/adaptive-card.json``
shipped in the package (``data/``), so validation works wherever okr-sync is
installed. Teams renders cards up to version 1.5 and allows its own
``msteams`` key, which the schema (``additionalProperties: false``) forbids.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError, best_match

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
HIGHEST_CARD_VERSION = (1, 5)


@functools.cache
def _card_validator() -> Draft6Validator:
    raw = resources.files("okr_sync.sandbox.teams") / "data" / "adaptive-card-1.5.schema.json"
    schema = json.loads(raw.read_text(encoding="utf-8"))
    # Validate against the AdaptiveCard definition itself: the root ``anyOf``
    # would collapse every problem into "not valid under any of the schemas".
    wrapped = {
        "$schema": schema["$schema"],
        "definitions": schema["definitions"],
        "allOf": [{"$ref": "#/definitions/AdaptiveCard"}],
    }
    return Draft6Validator(wrapped)


def card_errors(card: Any) -> list[str]:
    """Why Teams would refuse this top-level Adaptive Card (empty when it is fine)."""
    if not isinstance(card, dict):
        return ["the card is not a JSON object"]
    problems: list[str] = []
    version = card.get("version")
    try:
        parsed = tuple(int(part) for part in str(version).split("."))
    except ValueError:
        parsed = ()
    if not isinstance(version, str) or not parsed:
        problems.append("version: a top-level card needs a version such as '1.5'")
    elif parsed > HIGHEST_CARD_VERSION:
        problems.append(f"version: {version} is above 1.5, the highest Teams renders")
    # ``msteams`` (e.g. {"width": "Full"}) is a Teams extension the schema forbids.
    stripped = {key: value for key, value in card.items() if key != "msteams"}
    error = best_match(_card_validator().iter_errors(stripped))
    if error is not None:
        error = _narrow(error)
        where = "/".join(str(part) for part in error.absolute_path) or "(card)"
        problems.append(f"{where}: {error.message[:300]}")
    return problems


def _narrow(error: ValidationError) -> ValidationError:
    """For "not valid under any of the given schemas", the error of the element's own type.

    Elements are an ``anyOf`` over every type; the branch whose ``type`` matched
    tells what is actually wrong (e.g. "'text' is a required property").
    """
    for _depth in range(20):
        if error.validator != "anyOf" or not error.context:
            return error
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        matching = [
            errors for errors in branches.values()
            if not any(list(e.relative_path) == ["type"] for e in errors)
        ]  # fmt: skip
        if len(matching) != 1:
            return error
        narrowed = best_match(matching[0])
        if narrowed is None:
            return error
        error = narrowed
    return error


def attachment_errors(attachments: Any, *, require_cards: bool) -> list[str]:
    if not isinstance(attachments, list) or (require_cards and not attachments):
        return ["attachments must be a non-empty array"]
    problems: list[str] = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            problems.append(f"attachments/{index}: not an object")
        elif attachment.get("contentType") != ADAPTIVE_CARD:
            if require_cards:
                problems.append(f"attachments/{index}/contentType: must be {ADAPTIVE_CARD}")
        else:
            found = card_errors(attachment.get("content"))
            problems += [f"attachments/{index}/content/{problem}" for problem in found]
    return problems
