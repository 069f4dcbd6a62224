"""Hypothesis strategies for scorecards with arbitrary (and hostile) shapes and text.

Needs the ``test`` extra (hypothesis); never imported by the application.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import strategies as st

from okr_sync.scoring.scorecard import (
    Change,
    CycleInfo,
    ItemCounts,
    KeyResultScore,
    KpiScore,
    ObjectiveScore,
    PerspectiveScore,
    Scorecard,
    ScoringWarning,
)
from support.scorecards import HOSTILE_TITLE, JIRA

NASTY = (
    HOSTILE_TITLE,
    "[x](javascript:alert(1)) **b** _i_ <at>all</at> @channel #general",
    "*" * 500,
    "&" * 700,
    "🚀" * 400,
    "<" * 1000,
    "\n- item\n1. item\n# h",
    "|>" * 300,
)

texts = st.one_of(
    st.text(max_size=400),
    st.sampled_from(NASTY),
    st.text(alphabet=st.sampled_from("&<>[]()*_|\\`~#!🚀é "), max_size=300),
)
ids = st.one_of(st.from_regex(r"[A-Z]{1,4}-[0-9]{1,3}(\.KR[0-9]{1,2})?", fullmatch=True), texts)
scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
numbers = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
confidences = st.sampled_from(("blocked", "off_track", "at_risk", "on_track"))
links = st.one_of(
    st.builds(lambda n: f"{JIRA}/browse/ENT-{n}", st.integers(1, 99999)),
    st.sampled_from(("ENT-1", "/issues/?filter=1", "javascript:alert(1)", f"{JIRA}/x|<!here>")),
    texts,
)

key_results = st.builds(
    KeyResultScore,
    id=ids,
    title=texts,
    value=numbers,
    baseline=st.none() | numbers,
    target=numbers,
    score=scores,
    band=texts,
    confidence=confidences,
    weight=st.sampled_from((0.0, 1.0, 2.5)),
    direction=st.sampled_from((None, "at_least", "at_most")),
    items=st.none() | st.builds(ItemCounts, st.integers(0, 10**6), st.integers(0, 10**6)),
    too_easy=st.booleans(),
    links=st.lists(links, max_size=6).map(tuple),
    measure_kind=st.sampled_from(("done_ratio", "count", "sum", "milestone", "manual")),
)

objectives = st.builds(
    ObjectiveScore,
    id=ids,
    title=texts,
    perspective=st.none() | texts,
    parent=st.none() | ids,
    score=scores,
    band=texts,
    confidence=confidences,
    weight=st.sampled_from((0.0, 1.0)),
    key_results=st.lists(key_results, max_size=12).map(tuple),
)

changes = st.builds(
    Change,
    kr=ids,
    from_score=st.none() | scores,
    to_score=scores,
    reasons=st.lists(texts, max_size=4).map(tuple),
    from_band=st.none() | texts,
    to_band=st.none() | texts,
    from_confidence=st.none() | confidences,
    to_confidence=st.none() | confidences,
)

scorecards = st.builds(
    Scorecard,
    cycle=st.builds(
        CycleInfo,
        name=texts,
        start=st.just(date(2026, 10, 1)),
        end=st.just(date(2026, 12, 31)),
        as_of=st.datetimes(
            min_value=datetime(2026, 9, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
        ),
        elapsed=scores,
    ),
    objectives=st.lists(objectives, max_size=14).map(tuple),
    perspectives=st.lists(
        st.builds(PerspectiveScore, texts, texts, st.none() | scores, st.none() | texts),
        max_size=14,
    ).map(tuple),
    kpis=st.lists(
        st.builds(
            KpiScore,
            texts,
            texts,
            st.none() | texts,
            st.none() | numbers,
            st.sampled_from((None, "green", "yellow", "red")),
        ),
        max_size=14,
    ).map(tuple),
    changes=st.lists(changes, max_size=50).map(tuple),
    warnings=st.lists(st.builds(ScoringWarning, texts, st.none() | ids), max_size=6).map(tuple),
)
