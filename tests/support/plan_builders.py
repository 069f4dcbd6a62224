"""Builders for plans in tests: start from a valid minimal plan and change what matters."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan_text


def manual_kr(
    kr_id: str, *, target: float, current: float | None = None, **extra: Any
) -> dict[str, Any]:
    kr: dict[str, Any] = {"id": kr_id, "title": f"KR {kr_id}", "measure": {"kind": "manual"},
                          "target": target}
    if current is not None:
        kr["current"] = current
    kr.update(extra)
    return kr


def objective(obj_id: str, *key_results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": obj_id, "title": f"Objective {obj_id}",
                           "key_results": list(key_results)}
    doc.update(extra)
    return doc


class PlanBuilder:
    """A plan document as plain data, rendered to YAML or a validated :class:`Plan`."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "version": 1,
            "cycle": {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                      "timezone": "UTC"},
            "objectives": [],
        }

    def with_cycle(self, **fields: Any) -> PlanBuilder:
        self.doc["cycle"].update(fields)
        return self

    def with_objective(self, obj: dict[str, Any]) -> PlanBuilder:
        self.doc["objectives"].append(obj)
        return self

    def with_kpi(self, kpi: dict[str, Any]) -> PlanBuilder:
        self.doc.setdefault("kpis", []).append(kpi)
        return self

    def with_bands(self, *bands: tuple[str, float]) -> PlanBuilder:
        self.doc["scoring"] = {"bands": [{"name": n, "min": m} for n, m in bands]}
        return self

    def set(self, key: str, value: Any) -> PlanBuilder:
        self.doc[key] = value
        return self

    def yaml(self) -> str:
        return yaml.safe_dump(copy.deepcopy(self.doc), sort_keys=False)

    def write(self, path: Path) -> Path:
        path.write_text(self.yaml(), encoding="utf-8")
        return path

    def build(self) -> Plan:
        return load_plan_text(self.yaml())
