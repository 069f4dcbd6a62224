"""The plan's YAML event stream from libyaml's C parser, when it reads it as ruamel does.

:mod:`okr_sync.config.plan_yaml` builds the plan from an event stream. ruamel's pure
Python parser (the reference: YAML 1.2) took 0.5 s of CPU for a 400-KR plan, paid by
every pass of ``okr-sync run``; libyaml (PyYAML's C parser) gives the same events about
20x faster. Both streams go through the same reader (its own tag resolution and
bounds), so what differs is only the scanner: libyaml reads YAML 1.1, which treats
three characters as line breaks that YAML 1.2 reads as text; a text holding one of them,
or one libyaml refuses, goes to ruamel, which also words every refusal.
"""

from __future__ import annotations

import re
from typing import Any

#: Characters YAML 1.1 (libyaml) reads as line breaks and YAML 1.2 (ruamel) as text.
_YAML11_BREAKS = re.compile("[\x85\u2028\u2029]")


def libyaml_events(text: str) -> tuple[list[Any], dict[type, str]] | None:
    """The event stream from libyaml's C parser (PyYAML), ~20x faster than ruamel's pure
    Python one: a 400-KR plan took 0.5 s of CPU to parse, on every pass. None when it is
    not installed or the text parses differently (or not at all) there: ruamel, the
    reference, then reads it, and tells any refusal with its own message."""
    if _YAML11_BREAKS.search(text):
        return None
    try:
        # Optional, and only needed when a plan is read.
        import yaml
        from yaml import events
        from yaml._yaml import CParser as parser
    except ImportError:  # PyYAML absent, or built without libyaml
        return None
    kinds: dict[type, str] = {
        events.DocumentStartEvent: "document",
        events.MappingStartEvent: "mapping",
        events.SequenceStartEvent: "sequence",
        events.MappingEndEvent: "end",
        events.SequenceEndEvent: "end",
        events.ScalarEvent: "scalar",
        events.AliasEvent: "alias",
    }
    try:
        loader = parser(text)
        try:
            stream = []
            while loader.check_event():
                stream.append(loader.get_event())
        finally:
            loader.dispose()
    except yaml.YAMLError:
        return None
    return stream, kinds
