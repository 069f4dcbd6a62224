"""The results files of :mod:`benchmarks.run`: one per size, each scenario with its provenance.

``results/size-N.json`` holds, per scenario, what was measured and when::

    {"format": 2, "issues": N, "seed": 1, "latency_s": 0.02, "key_results": 400,
     "routes": 30, "minimum": {...},
     "scenarios": {"cold": {"commit": "abc1234", "started": ..., "finished": ...,
                            "load_before": [...], "load_after": [...], "complete": true,
                            "runs": [{...}, ...]},
                   "naive": {..., "runs": [...]},
                   "webhooks": {..., "summary": {...}}}}

A run that measures only some scenarios (``--scenarios``) replaces those and keeps the
others as they were, with the commit and time they were measured; the report says when
one size's scenarios come from different commits. Files of the first format (one commit
for the whole size: ``repeats``, ``naive``, ``webhooks``) are read as if every scenario in
them had been measured at that commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Every scenario, in the order they run and are reported.
PASS_SCENARIOS = ("cold", "no_change", "changed_1pct", "resync_full")
SIZE_SCENARIOS = (*PASS_SCENARIOS, "naive", "webhooks")
SCENARIOS = (*SIZE_SCENARIOS, "startup")
FORMAT = 2
_PROVENANCE = ("commit", "started", "finished", "load_before", "load_after")


def parse_scenarios(text: str) -> tuple[str, ...]:
    """``"cold,webhooks"`` -> ``("cold", "webhooks")`` in run order; ``all`` is every one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return SCENARIOS
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; "
                         f"choose among {', '.join(SCENARIOS)} (or all)")
    return tuple(s for s in SCENARIOS if s in names)


def save(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` whole or not at all (a run cut short leaves the previous file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """A size's results in the current format (a first-format file converted, not changed)."""
    if data.get("format") == FORMAT:
        return data
    provenance = {k: data.get(k) for k in _PROVENANCE}
    complete = bool(data.get("complete"))
    scenarios: dict[str, dict[str, Any]] = {}
    repeats = data.get("repeats") or []
    for name in PASS_SCENARIOS:
        runs = [r[name] for r in repeats if name in r]
        if runs:
            scenarios[name] = {**provenance, "complete": complete, "runs": runs}
    if data.get("naive"):
        scenarios["naive"] = {**provenance, "complete": complete, "runs": data["naive"]}
    if (data.get("webhooks") or {}).get("passes"):
        scenarios["webhooks"] = {**provenance, "complete": complete,
                                 "summary": data["webhooks"]}
    head = {k: v for k, v in data.items()
            if k not in ("repeats", "naive", "webhooks", "complete", *_PROVENANCE)}
    return {**head, "format": FORMAT, "scenarios": scenarios}


def load_results(directory: Path) -> dict[int, dict[str, Any]]:
    """Every ``size-N.json`` in ``directory``, by size, in the current format."""
    found = {}
    for path in sorted(directory.glob("size-*.json")):
        data = normalize(json.loads(path.read_text(encoding="utf-8")))
        found[int(data["issues"])] = data
    return found


def scenario(data: dict[str, Any], name: str) -> dict[str, Any]:
    """One scenario's entry of a size (empty when it was never measured)."""
    entry: dict[str, Any] = (data.get("scenarios") or {}).get(name) or {}
    return entry


def runs(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = scenario(data, name).get("runs") or []
    return found


def provenance(entry: dict[str, Any]) -> str:
    """``abc1234, 2026-12-06T07:52:47+00:00 to ...`` for one scenario's entry."""
    state = "" if entry.get("complete") else ", PARTIAL (interrupted; what finished)"
    return (f"{entry.get('commit') or 'an unrecorded commit'}, {entry.get('started', '?')} to "
            f"{entry.get('finished', '?')}{state}")


def commits(data: dict[str, Any]) -> set[str]:
    """The commits a size's scenarios were measured at."""
    return {str(e.get("commit")) for e in (data.get("scenarios") or {}).values() if e}


def is_done(data: dict[str, Any], name: str, commit: str, wanted: int) -> bool:
    """True when ``name`` was measured in full at ``commit``: ``wanted`` runs (webhook
    passes for ``webhooks``) or more, so a resumed run need not measure it again."""
    entry = scenario(data, name)
    if not entry.get("complete") or entry.get("commit") != commit:
        return False
    if name == "webhooks":
        return int((entry.get("summary") or {}).get("passes") or 0) >= wanted
    return len(entry.get("runs") or []) >= wanted
