"""How numbers are shown to people: the one rounding rule of every surface.

Console (``run``/``status``), Slack, Teams and the HTML report all format a score
or a fraction of the cycle with :func:`percent`, so 32.5 % reads "33%" everywhere.

The rule is **half up** on the decimal value people would write down: 0.325 ->
"33%", 0.285 -> "29%", 0.005 -> "1%". Python's ``round`` (and ``format``'s
``:.0%``) round half to even *on the binary float*, which gives 32 % for 0.325 and
28 % for 0.285 (the float is 0.28499999...); people expect the school rule. The
float is read through its shortest decimal ``repr`` first, so a score that prints as
0.285 rounds like 0.285. JSON keeps the unrounded 4-decimal number (DESIGN A3).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

#: What a missing score (never measured) shows as a percentage.
NO_PERCENT = "—"


def percent_points(fraction: float) -> int:
    """``fraction`` as whole percent, rounded half up (0.325 -> 33, -0.325 -> -33)."""
    if not math.isfinite(fraction):
        raise ValueError(f"not a finite fraction: {fraction!r}")
    hundredths = Decimal(repr(float(fraction))) * 100
    return int(hundredths.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent(fraction: float | None, *, missing: str = NO_PERCENT) -> str:
    """``0.5333`` -> ``"53%"``; ``None`` (not measured) -> ``missing``."""
    if fraction is None:
        return missing
    return f"{percent_points(fraction)}%"


def delta_points(before: float, after: float) -> int:
    """Difference in whole percentage points *as shown*: "30%" -> "42%" is +12,
    never a difference the two shown numbers contradict."""
    return percent_points(after) - percent_points(before)
