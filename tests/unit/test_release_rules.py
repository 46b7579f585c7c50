"""Release rules and who may decide: every outcome and its stated reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_core.release.rules import (
    Action,
    Evidence,
    Excursion,
    Recommendation,
    RuleResult,
    Verdict,
    approval_refusal,
    decide,
    proposal_events,
    recommend,
    unconfirmed,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
CLEAN = Evidence(
    lot_status="quarantine",
    expiry=NOW + timedelta(days=365),
    now=NOW,
    mkt=5.1,
    mkt_limit=8.0,
    tor_cumulative_min=0,
    tor_budget_min=120,
    coverage=1.0,
)
EXC = Excursion(
    7, "FRIDGE-3", NOW - timedelta(days=2), peak=11.4, duration_s=5400, disposition=None
)
QA = frozenset({"qa"})
QAM = frozenset({"qa_manager"})
WHY = "Stability data for this product cover 48 h at 15 °C; peak was 11.4 °C for 90 min."


def test_clean_lot_is_recommended_and_qa_may_release() -> None:
    assert recommend(CLEAN).release_recommended
    assert (
        decide(CLEAN, action=Action.RELEASE, roles=QA, justification=None).verdict
        is Verdict.ALLOWED
    )


def test_undispositioned_excursion_blocks_qa() -> None:
    ev = replace(CLEAN, excursions=(EXC,))
    rec = recommend(ev)
    assert not rec.release_recommended
    assert [r.rule for r in rec.failed] == ["excursions dispositioned"]
    assert "#7 (FRIDGE-3, peak 11.4 °C)" in rec.failed[0].evidence
    d = decide(ev, action=Action.RELEASE, roles=QA, justification=WHY)
    assert d.verdict is Verdict.REFUSED
    assert "only a qa_manager may override" in d.reason


def test_manager_override_needs_a_real_justification() -> None:
    ev = replace(CLEAN, excursions=(EXC,))
    assert (
        decide(ev, action=Action.RELEASE, roles=QAM, justification="ok").verdict is Verdict.REFUSED
    )
    assert (
        decide(ev, action=Action.RELEASE, roles=QAM, justification=None).verdict is Verdict.REFUSED
    )
    d = decide(ev, action=Action.RELEASE, roles=QAM, justification=WHY)
    assert d.verdict is Verdict.OVERRIDE
    assert "excursions dispositioned" in d.reason


def test_dispositioned_excursion_passes() -> None:
    ev = replace(CLEAN, excursions=(replace(EXC, disposition="no impact"),))
    assert recommend(ev).release_recommended


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        ({"mkt": 8.4}, "mean kinetic temperature", "MKT 8.40 °C, limit 8.00 °C"),
        ({"mkt": None}, "mean kinetic temperature", "cannot be computed"),
        (
            {"tor_cumulative_min": 121},
            "time out of range within budget",
            "121 min out of range of a 120",
        ),
        (
            {"tor_budget_min": None, "tor_cumulative_min": 3},
            "time out of range within budget",
            "allows none",
        ),
        ({"coverage": 0.9}, "temperature record complete", "90.0%"),
        ({"inspections_failed": 1}, "inspections passed", "1 failed"),
        ({"inspections_pending": 2}, "inspections passed", "2 inspection(s) pending"),
        ({"open_deviations": ("DEV-12",)}, "no open deviation", "DEV-12"),
    ],
)
def test_each_rule_fails_with_its_evidence(
    change: dict[str, object], rule: str, words: str
) -> None:
    rec = recommend(replace(CLEAN, **change))
    assert [r.rule for r in rec.failed] == [rule]
    assert words in rec.failed[0].evidence


def test_coverage_gap_is_named() -> None:
    gap = (NOW - timedelta(hours=5), NOW - timedelta(hours=3))
    rec = recommend(replace(CLEAN, coverage=0.95, coverage_gaps=(gap,)))
    assert "1 gap(s), first 2026-11-25 07:00–09:00 UTC" in rec.failed[0].evidence


@pytest.mark.parametrize("status", ["released", "rejected", "recalled"])
def test_status_is_never_overridable(status: str) -> None:
    ev = replace(CLEAN, lot_status=status)
    d = decide(ev, action=Action.RELEASE, roles=QAM, justification=WHY)
    assert d.verdict is Verdict.REFUSED
    assert status in d.reason


def test_expired_lot_cannot_be_released_even_by_override() -> None:
    ev = replace(CLEAN, expiry=NOW - timedelta(days=1))
    assert (
        decide(ev, action=Action.RELEASE, roles=QAM, justification=WHY).verdict is Verdict.REFUSED
    )


def test_reject_is_open_to_qa_whatever_the_rules() -> None:
    ev = replace(CLEAN, excursions=(EXC,), mkt=30.0)
    assert decide(ev, action=Action.REJECT, roles=QA, justification=None).verdict is Verdict.ALLOWED


@pytest.mark.parametrize("roles", [frozenset(), frozenset({"warehouse"}), frozenset({"admin"})])
def test_non_qa_roles_may_not_decide(roles: frozenset[str]) -> None:
    for action in Action:
        assert (
            decide(CLEAN, action=action, roles=roles, justification=WHY).verdict is Verdict.REFUSED
        )


@given(
    mkt=st.floats(0, 30),
    tor=st.floats(0, 500),
    coverage=st.floats(0, 1),
    n_open=st.integers(0, 3),
    qam=st.booleans(),
)
def test_qa_release_allowed_exactly_when_every_rule_passes(
    mkt: float, tor: float, coverage: float, n_open: int, qam: bool
) -> None:
    ev = replace(
        CLEAN,
        mkt=mkt,
        tor_cumulative_min=tor,
        coverage=coverage,
        excursions=tuple(replace(EXC, id=i) for i in range(n_open)),
    )
    expected_ok = mkt <= 8.0 and tor <= 120 and coverage >= 0.999 and n_open == 0
    d = decide(ev, action=Action.RELEASE, roles=QA, justification=WHY)
    assert (d.verdict is Verdict.ALLOWED) == expected_ok
    if qam:
        d2 = decide(ev, action=Action.RELEASE, roles=QAM, justification=WHY)
        assert d2.verdict is (Verdict.ALLOWED if expected_ok else Verdict.OVERRIDE)


def _rec(*failed: str) -> Recommendation:
    status = RuleResult("lot in quarantine and not expired", passed=True, evidence="ok")
    bad = (RuleResult(name, passed=False, evidence=f"{name} failed") for name in failed)
    return Recommendation((status, *bad))


@given(
    st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=1),
    st.sets(st.sampled_from(["a", "b", "c", "d"])),
)
def test_every_failed_rule_must_be_confirmed_by_name(failed: set[str], seen: set[str]) -> None:
    missing = {r.rule for r in unconfirmed(_rec(*sorted(failed)), seen)}
    assert missing == failed - seen


def test_an_override_is_approved_by_a_second_qa_manager_only() -> None:
    rec = _rec("excursions dispositioned")
    same = approval_refusal(
        proposer="mei", approver="mei", proposed_failed={"excursions dispositioned"}, rec=rec
    )
    assert same is not None
    assert "cannot also approve" in same
    assert (
        approval_refusal(
            proposer="mei", approver="uwe", proposed_failed={"excursions dispositioned"}, rec=rec
        )
        is None
    )
    newer = approval_refusal(
        proposer="mei",
        approver="uwe",
        proposed_failed={"excursions dispositioned"},
        rec=_rec("excursions dispositioned", "mean kinetic temperature"),
    )
    assert newer is not None
    assert "mean kinetic temperature" in newer


def test_an_excursion_or_deviation_found_after_the_proposal_refuses_the_approval() -> None:
    """The same rules fail, but over an excursion (or deviation) the proposal did not name."""
    seen = [
        {"rule": "excursions dispositioned", "code": "excursions_open",
         "values": {"items": [{"id": 1, "sensor": "T1", "peak": 12.0}]}},
        {"rule": "no open deviation", "code": "deviations_open",
         "values": {"numbers": "DEV-00001"}},
    ]  # fmt: skip
    events = proposal_events(seen)
    assert events == {"excursions dispositioned": {"#1"}, "no open deviation": {"DEV-00001"}}
    failed = {"excursions dispositioned", "no open deviation"}

    def refusal(*results: RuleResult) -> str | None:
        rec = Recommendation(results)
        return approval_refusal(
            proposer="mei", approver="uwe", proposed_failed=failed, rec=rec,
            proposed_events=events,
        )  # fmt: skip

    def excursions(*ids: int) -> RuleResult:
        items: list[dict[str, str | int | float]] = [{"id": i, "sensor": "T1"} for i in ids]
        return RuleResult("excursions dispositioned", False, "…", "excursions_open",
                          {"items": items})  # fmt: skip

    def deviations(numbers: str) -> RuleResult:
        return RuleResult("no open deviation", False, "…", "deviations_open",
                          {"numbers": numbers})  # fmt: skip

    assert refusal(excursions(1), deviations("DEV-00001")) is None
    assert refusal(excursions(1)) is None  # one closed since: fewer, not more
    newer = refusal(excursions(1, 2), deviations("DEV-00001, DEV-00002"))
    assert newer is not None
    assert "#2" in newer
    assert "DEV-00002" in newer
    assert "#1" not in newer
