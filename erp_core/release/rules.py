"""Release rules, pure: from a lot's evidence to a recommendation a QA person can read.

Every rule yields a result with its evidence in words, passed or not, so the release
panel and the signed record show *why*. The decision function then says who may do
what: with every rule passed, ``qa`` or ``qa_manager`` may release; with any rule
failed, only a ``qa_manager`` may release, as an override with a written
justification. Such an override takes two different QA managers (four eyes): one
proposes it, another approves it (``approval_refusal``), and each first confirms every
failed rule by name (``unconfirmed``). Rejecting is always open to both roles. No I/O,
no clock of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What QA asks to do with the lot."""

    RELEASE = "release"
    REJECT = "reject"


class Verdict(StrEnum):
    """The outcome of asking."""

    ALLOWED = "allowed"
    OVERRIDE = "override"  # allowed as a justified qa_manager override of failed rules
    REFUSED = "refused"


SIGNING_ROLES = frozenset({"qa", "qa_manager"})
MIN_JUSTIFICATION = 20  # characters: a justification is a sentence, not "ok"
# The Part 11 meanings of the two signatures of an override (the database checks them).
OVERRIDE_PROPOSED = "Proposed override"
OVERRIDE_APPROVED = "Approved override"


@dataclass(frozen=True, slots=True)
class Excursion:
    """An excursion episode that touched the lot, with its disposition if any."""

    id: int
    sensor: str
    started_at: datetime
    peak: float
    duration_s: float
    disposition: str | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the rules look at for one lot (gathered by the service from the DB)."""

    lot_status: str
    expiry: datetime | None
    now: datetime
    excursions: tuple[Excursion, ...] = ()
    mkt: float | None = None
    mkt_limit: float | None = None
    tor_cumulative_min: float = 0.0
    tor_budget_min: float | None = None
    coverage: float = 0.0  # share of the lot's life with readings, 0..1
    coverage_gaps: tuple[tuple[datetime, datetime], ...] = ()
    inspections_failed: int = 0
    inspections_pending: int = 0
    open_deviations: tuple[str, ...] = ()
    required_coverage: float = 0.999


# A value a rule's evidence names: a number, a count, a code, an ISO date or time.
Value = str | int | float | list[dict[str, str | int | float]]


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's outcome with the evidence behind it.

    ``rule`` is the rule's stable name (signers confirm it by name), ``evidence`` the
    English text as signed; ``code`` and ``values`` say the same as data, so a page or
    report words it in the reader's language (``erp_core.release.wording``).
    """

    rule: str
    passed: bool
    evidence: str
    code: str = ""
    values: dict[str, Value] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """All rule results; ``release_recommended`` when every one passed."""

    results: tuple[RuleResult, ...]

    @property
    def release_recommended(self) -> bool:
        """True when every rule passed."""
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        """The rules that did not pass."""
        return tuple(r for r in self.results if not r.passed)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a user may take an action on the lot now, and why."""

    verdict: Verdict
    reason: str
    recommendation: Recommendation = field(repr=False)


def _pass(
    name: str, evidence: str, code: str, values: dict[str, Value] | None = None
) -> RuleResult:
    return RuleResult(name, passed=True, evidence=evidence, code=code, values=values or {})


def _fail(
    name: str, evidence: str, code: str, values: dict[str, Value] | None = None
) -> RuleResult:
    return RuleResult(name, passed=False, evidence=evidence, code=code, values=values or {})


def _excursions(ev: Evidence) -> RuleResult:
    open_ = [x for x in ev.excursions if not x.disposition]
    name = "excursions dispositioned"
    if not ev.excursions:
        return _pass(name, "no excursion touched the lot", "excursions_none")
    if open_:
        ids = ", ".join(f"#{x.id} ({x.sensor}, peak {x.peak:.1f} °C)" for x in open_)
        items: Value = [{"id": x.id, "sensor": x.sensor, "peak": x.peak} for x in open_]
        return _fail(
            name,
            f"without disposition: {ids}",
            "excursions_open",
            {"items": items},
        )
    done = ", ".join(f"#{x.id}: {x.disposition}" for x in ev.excursions)
    items = [{"id": x.id, "disposition": x.disposition or ""} for x in ev.excursions]
    return _pass(
        name,
        f"all dispositioned ({done})",
        "excursions_done",
        {"items": items},
    )


def _mkt(ev: Evidence) -> RuleResult:
    name = "mean kinetic temperature"
    if ev.mkt_limit is None:
        return _pass(name, "the item sets no MKT limit", "mkt_no_limit")
    if ev.mkt is None:
        return _fail(name, "no readings, so MKT cannot be computed", "mkt_no_readings")
    ok = ev.mkt <= ev.mkt_limit
    return (_pass if ok else _fail)(
        name,
        f"MKT {ev.mkt:.2f} °C, limit {ev.mkt_limit:.2f} °C",
        "mkt",
        {"mkt": round(ev.mkt, 2), "limit": round(ev.mkt_limit, 2)},
    )


def _tor(ev: Evidence) -> RuleResult:
    name = "time out of range within budget"
    used = f"{ev.tor_cumulative_min:.0f} min out of range"
    minutes = round(ev.tor_cumulative_min)
    if ev.tor_budget_min is None:
        ok = ev.tor_cumulative_min == 0
        return (_pass if ok else _fail)(
            name, f"{used}; the item allows none", "tor_no_budget", {"minutes": minutes}
        )
    ok = ev.tor_cumulative_min <= ev.tor_budget_min
    return (_pass if ok else _fail)(
        name,
        f"{used} of a {ev.tor_budget_min:.0f} min budget",
        "tor",
        {"minutes": minutes, "budget": round(ev.tor_budget_min)},
    )


def _coverage(ev: Evidence) -> RuleResult:
    name = "temperature record complete"
    text = f"readings cover {ev.coverage:.1%} of the lot's life"
    values: dict[str, Value] = {"share": round(ev.coverage, 4)}
    code = "coverage"
    if ev.coverage_gaps:
        start, end = ev.coverage_gaps[0]
        gaps = len(ev.coverage_gaps)
        text += f"; {gaps} gap(s), first {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
        code = "coverage_gaps"
        values |= {"gaps": gaps, "start": start.isoformat(), "end": end.isoformat()}
    return (_pass if ev.coverage >= ev.required_coverage else _fail)(name, text, code, values)


def _inspections(ev: Evidence) -> RuleResult:
    name = "inspections passed"
    if ev.inspections_failed:
        n = ev.inspections_failed
        return _fail(name, f"{n} failed inspection(s)", "inspections_failed", {"n": n})
    if ev.inspections_pending:
        n = ev.inspections_pending
        return _fail(
            name,
            f"{n} inspection(s) pending",
            "inspections_pending",
            {"n": n},
        )
    return _pass(name, "no failed or pending inspection", "inspections_ok")


def _deviations(ev: Evidence) -> RuleResult:
    name = "no open deviation"
    if ev.open_deviations:
        numbers = ", ".join(ev.open_deviations)
        return _fail(name, "open: " + numbers, "deviations_open", {"numbers": numbers})
    return _pass(name, "no open deviation", "deviations_none")


def _status_and_expiry(ev: Evidence) -> RuleResult:
    name = "lot in quarantine and not expired"
    status: dict[str, Value] = {"status": ev.lot_status}
    if ev.lot_status not in ("quarantine", "on_hold"):
        return _fail(name, f"lot is {ev.lot_status}", "lot_status", status)
    if ev.expiry is not None and ev.expiry <= ev.now:
        return _fail(
            name,
            f"expired on {ev.expiry:%Y-%m-%d}",
            "expired",
            {"date": f"{ev.expiry:%Y-%m-%d}"},
        )
    return _pass(name, f"lot is {ev.lot_status}", "lot_status", status)


RULES = (_status_and_expiry, _excursions, _mkt, _tor, _coverage, _inspections, _deviations)


def recommend(evidence: Evidence) -> Recommendation:
    """Evaluate every release rule on the lot's evidence."""
    return Recommendation(tuple(rule(evidence) for rule in RULES))


def decide(  # noqa: PLR0911 - one return per outcome, each with its reason
    evidence: Evidence, *, action: Action, roles: frozenset[str], justification: str | None
) -> Decision:
    """Say whether a user holding ``roles`` may take ``action`` now, and why."""
    rec = recommend(evidence)
    if not roles & SIGNING_ROLES:
        return Decision(Verdict.REFUSED, "only qa or qa_manager may decide on a lot", rec)
    if action is Action.REJECT:
        if evidence.lot_status not in ("quarantine", "on_hold", "recalled"):
            return Decision(Verdict.REFUSED, f"a {evidence.lot_status} lot cannot be rejected", rec)
        return Decision(Verdict.ALLOWED, "rejecting needs no rule to pass", rec)
    status = rec.results[0]
    if not status.passed:  # never overridable: wrong status or expired
        return Decision(Verdict.REFUSED, status.evidence, rec)
    if rec.release_recommended:
        return Decision(Verdict.ALLOWED, "every release rule passed", rec)
    failed = "; ".join(f"{r.rule}: {r.evidence}" for r in rec.failed)
    if "qa_manager" not in roles:
        return Decision(
            Verdict.REFUSED, f"rules failed, only a qa_manager may override ({failed})", rec
        )
    if not justification or len(justification.strip()) < MIN_JUSTIFICATION:
        return Decision(
            Verdict.REFUSED,
            f"an override needs a written justification of at least {MIN_JUSTIFICATION} characters",
            rec,
        )
    return Decision(Verdict.OVERRIDE, f"override of failed rules: {failed}", rec)


def unconfirmed(rec: Recommendation, confirmed: Collection[str]) -> tuple[RuleResult, ...]:
    """The failed rules that the signer of an override has not confirmed by name."""
    return tuple(r for r in rec.failed if r.rule not in confirmed)


def _events(code: str, values: Mapping[str, object]) -> set[str]:
    """The discrete events a failed rule names (excursions, deviations): empty for others."""
    if code == "excursions_open":
        items = values.get("items")
        listed = items if isinstance(items, list) else []
        return {f"#{x['id']}" for x in listed if isinstance(x, dict) and "id" in x}
    if code == "deviations_open":
        return {n.strip() for n in str(values.get("numbers", "")).split(",") if n.strip()}
    return set()


def approval_refusal(
    *,
    proposer: str,
    approver: str,
    proposed_failed: Collection[str],
    rec: Recommendation,
    proposed_events: Mapping[str, Collection[str]] | None = None,
) -> str | None:
    """Why ``approver`` may not approve ``proposer``'s override now (None: they may).

    ``proposed_events``: per failed rule, the excursions and deviations the proposal named
    (``proposal_events``). One added since — a rule that still fails by name, over an
    excursion the proposer never saw — was justified by nobody, so it is refused too.
    """
    if approver == proposer:
        return (
            f"{approver} proposed this override and cannot also approve it: "
            "a second, different qa_manager approves"
        )
    new = [r.rule for r in rec.failed if r.rule not in proposed_failed]
    if new:
        return (
            "rules failed since the override was proposed (" + ", ".join(new) + "): "
            "propose it again with a justification that covers them"
        )
    if proposed_events is not None:
        added = [
            f"{r.rule}: " + ", ".join(sorted(extra))
            for r in rec.failed
            if (extra := _events(r.code, r.values) - set(proposed_events.get(r.rule, ())))
        ]
        if added:
            return (
                "evidence found since the override was proposed (" + "; ".join(added) + "): "
                "propose it again with a justification that covers it"
            )
    return None


def proposal_events(failed: Collection[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Per rule, the excursions and deviations a stored proposal's failed rules named."""
    out: dict[str, set[str]] = {}
    for f in failed:
        values = f.get("values")
        out[str(f.get("rule"))] = _events(
            str(f.get("code", "")), values if isinstance(values, Mapping) else {}
        )
    return out
