"""The scorecard codec: KRs' freshness (``measured_at``, ``stale``) and unmeasured nulls."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from okr_sync.scoring.scorecard import (
    CycleInfo,
    KeyResultScore,
    ObjectiveScore,
    Scorecard,
    scorecard_from_json,
    scorecard_to_json,
)

AS_OF = "2026-11-15T00:00:00+00:00"


def _old_document() -> dict[str, Any]:
    """A stored scorecard from before KRs carried their freshness."""
    return {
        "version": 1,
        "cycle": {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                  "as_of": AS_OF, "elapsed": 0.5},
        "objectives": [{
            "id": "CO-1", "title": "Win", "perspective": "customer", "parent": None,
            "weight": 1, "score": 0.42, "band": "progress", "confidence": "at_risk",
            "key_results": [{"id": "CO-1.KR1", "title": "SSO", "value": 0.42, "baseline": 0,
                             "target": 1, "score": 0.42, "band": "progress",
                             "confidence": "at_risk", "weight": 1, "measure": "done_ratio"}],
        }],
    }


def test_scorecard_from_json_given_old_document_without_freshness_reads_measured_at_as_of() -> None:
    card = scorecard_from_json(_old_document())
    kr = card.key_result("CO-1.KR1")
    assert kr.measured_at == datetime(2026, 11, 15, tzinfo=UTC)
    assert kr.stale is False
    assert kr.to_json()["measured_at"] == AS_OF and kr.to_json()["stale"] is False


def test_scorecard_codec_given_stale_and_unmeasured_krs_reads_back_equal() -> None:
    measured_at = datetime(2026, 11, 14, 21, 0, tzinfo=UTC)
    stale = KeyResultScore("O.1", "a", 0.5, 0, 1, 0.5, "progress", "at_risk",
                           measure_kind="count", measured_at=measured_at, stale=True)
    never = KeyResultScore("O.2", "b", None, 0, 1, None, None, None, measure_kind="count")
    card = Scorecard(
        CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                  datetime(2026, 11, 15, tzinfo=UTC), 0.5),
        (ObjectiveScore("O", "t", None, None, 0.5, "progress", "at_risk",
                        key_results=(stale, never)),
         ObjectiveScore("P", "u", None, None, None, None, None)),
    )
    doc = scorecard_to_json(card)
    krs = doc["objectives"][0]["key_results"]
    assert (krs[0]["stale"], krs[0]["measured_at"]) == (True, "2026-11-14T21:00:00+00:00")
    assert (krs[1]["value"], krs[1]["score"], krs[1]["band"], krs[1]["measured_at"]) == (
        None, None, None, None)
    assert scorecard_from_json(doc) == card
