"""Release rules in the reader's language: every outcome has words, in English and Chinese."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.release.pages import wording
from erp_core.release.rules import Evidence, Excursion, recommend
from erp_core.release.wording import EVIDENCE, RULE_NAMES

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
EN, ZH = wording("en"), wording("zh_CN")

excursions = st.lists(
    st.builds(
        Excursion,
        id=st.integers(1, 10_000),
        sensor=st.sampled_from(["FRIDGE-3", "T-1"]),
        started_at=st.just(NOW - timedelta(days=1)),
        peak=st.floats(-30, 40),
        duration_s=st.floats(0, 10_000),
        disposition=st.sampled_from([None, "use_as_is", "reject", "investigate"]),
    ),
    max_size=3,
)
evidence = st.builds(
    Evidence,
    lot_status=st.sampled_from(["quarantine", "on_hold", "released", "rejected", "recalled"]),
    expiry=st.sampled_from([None, NOW - timedelta(days=3), NOW + timedelta(days=300)]),
    now=st.just(NOW),
    excursions=excursions.map(tuple),
    mkt=st.none() | st.floats(-10, 40),
    mkt_limit=st.none() | st.floats(0, 30),
    tor_cumulative_min=st.floats(0, 5000),
    tor_budget_min=st.none() | st.floats(0, 600),
    coverage=st.floats(0, 1),
    coverage_gaps=st.sampled_from([(), ((NOW - timedelta(hours=5), NOW - timedelta(hours=4)),)]),
    inspections_failed=st.integers(0, 3),
    inspections_pending=st.integers(0, 3),
    open_deviations=st.lists(st.sampled_from(["DEV-1", "DEV-2"]), max_size=2).map(tuple),
)


@given(evidence)
def test_every_rule_result_has_a_name_and_evidence_in_both_languages(ev: Evidence) -> None:
    for result in recommend(ev).results:
        assert result.rule in RULE_NAMES
        assert result.code in EVIDENCE
        json.dumps(result.values)  # signed content is canonical JSON
        assert EN.evidence(result)
        chinese = ZH.evidence(result)
        assert chinese != result.evidence, result  # worded, not the signed English
        assert "%(" not in chinese
        assert ZH.name(result) != result.rule


def test_the_mkt_evidence_in_chinese_has_locale_numbers() -> None:
    ev = Evidence(lot_status="quarantine", expiry=None, now=NOW, mkt=8.556, mkt_limit=8.0)
    (mkt,) = [r for r in recommend(ev).results if r.rule == "mean kinetic temperature"]
    assert not mkt.passed
    assert ZH.name(mkt) == "平均动力学温度"
    assert ZH.evidence(mkt) == "MKT 8.56 °C，上限 8.00 °C"
    assert EN.evidence(mkt) == "MKT 8.56 °C, limit 8.00 °C" == mkt.evidence


def test_a_stored_result_without_a_code_keeps_its_signed_english() -> None:
    stored = {"rule": "no open deviation", "passed": False, "evidence": "open: DEV-9"}
    assert ZH.evidence(stored) == "open: DEV-9"
    assert ZH.name(stored) == "无未关闭偏差"
    odd = {"rule": "a rule of a later version", "passed": True, "evidence": "fine", "code": "x"}
    assert (ZH.name(odd), ZH.evidence(odd)) == ("a rule of a later version", "fine")
