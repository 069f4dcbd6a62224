"""The full soak runs only when asked for (``pytest -m soak``); its short form is ``slow``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in str(config.getoption("markexpr") or "").replace("not soak", ""):
        return
    skip = pytest.mark.skip(reason="the full soak runs with: pytest -m soak")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
