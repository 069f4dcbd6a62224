"""Hypothesis profiles: the full one in CI (``CI=true``), a smaller one for local runs.

``HYPOTHESIS_PROFILE=ci`` runs the full profile locally. Tests that pick their own
example counts say them through :func:`examples`, so the profile scales them too.
"""

from __future__ import annotations

import os

from hypothesis import settings

FULL = "ci"
QUICK = "dev"
#: A local run tries this share of each test's examples (at least a few).
QUICK_SHARE = 0.2

settings.register_profile(FULL, deadline=None, print_blob=True)
settings.register_profile(QUICK, deadline=None, max_examples=20)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    FULL if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else QUICK)
settings.load_profile(PROFILE)


def examples(full: int) -> int:
    """``full`` under the CI profile, a fifth of it (at least 5) otherwise."""
    return full if PROFILE == FULL else max(5, int(full * QUICK_SHARE))
