"""Pure access, audit-chain and signature rules: exact examples and hypothesis properties."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_core.audit.chain import GENESIS_HASH, ChainEntry, ChainHead, entry_hash, first_break
from erp_core.auth import rules, tokens
from erp_core.auth.errors import InvalidTokenError
from erp_core.auth.models import Channel, LoginAttempt, LoginPolicy, Outcome, Role
from erp_core.signatures.canonical import canonical_json, manifestation, record_hash
from erp_core.signatures.errors import UnsignableContentError

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = LoginPolicy(max_failures=5, window=timedelta(minutes=15), lock=timedelta(minutes=15))


def at(minutes: float, outcome: Outcome = Outcome.BAD_PASSWORD) -> LoginAttempt:
    return LoginAttempt(
        username="u",
        at=T0 + timedelta(minutes=minutes),
        source="10.0.0.1",
        channel=Channel.LOGIN,
        outcome=outcome,
    )


def lock(attempts: list[LoginAttempt], now_min: float) -> datetime | None:
    return rules.locked_until(attempts, now=T0 + timedelta(minutes=now_min), policy=POLICY)


# --- separation of duties ---------------------------------------------------------------


def test_separation_of_duties_by_hand() -> None:
    conflicting = [{"admin", "qa"}, {"admin", "qa_manager"}, {"admin", "qa", "operator"}]
    allowed = [{"admin"}, {"admin", "operator", "warehouse"}, {"qa", "qa_manager"}, set()]
    for roles in conflicting:
        assert rules.separation_conflict(Role(r) for r in roles), roles
    for roles in allowed:
        assert not rules.separation_conflict(Role(r) for r in roles), roles


def test_separation_of_duties_over_every_role_set() -> None:
    for n in range(len(Role) + 1):
        for combo in itertools.combinations(list(Role), n):
            names = {str(r) for r in combo}
            expected = "admin" in names and ("qa" in names or "qa_manager" in names)
            assert rules.separation_conflict(combo) is expected


def test_password_rules() -> None:
    assert rules.password_problem("short-1", username="anna") is not None
    assert rules.password_problem("xx-ANNA-is-here", username="anna") is not None
    assert rules.password_problem("aaaaaaaaaaaa", username="anna") is not None
    assert rules.password_problem("Tulip-Secret-99", username="anna") is None


# --- login limiting ---------------------------------------------------------------------


def test_five_failures_in_fifteen_minutes_lock_for_fifteen() -> None:
    attempts = [at(m) for m in (0, 2, 4, 6, 8)]
    assert lock(attempts, 8) == T0 + timedelta(minutes=23)
    assert lock(attempts, 22.99) == T0 + timedelta(minutes=23)
    assert lock(attempts, 23) is None
    assert lock(attempts[:4], 8) is None


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    # Any 15-minute window (open at its start) holds at most four of these.
    attempts = [at(m) for m in (0, 4, 8, 12, 16, 20, 24)]
    assert lock(attempts, 24) is None
    # ...but five within 15 minutes do: 1, 4, 8, 12, 15.9.
    assert lock([at(m) for m in (1, 4, 8, 12, 15.9)], 16) == T0 + timedelta(minutes=30.9)


def test_success_resets_and_refusals_while_locked_do_not_count() -> None:
    reset = [at(0), at(1), at(2), at(3), at(4, Outcome.SUCCESS), at(5)]
    assert lock(reset, 5) is None
    locked = [*(at(m) for m in range(5)), at(6, Outcome.LOCKED), at(7, Outcome.LOCKED)]
    assert lock(locked, 7) == T0 + timedelta(minutes=19)
    # After the lock ends, the old failures do not count again: one new failure is one.
    assert lock([*locked, at(20)], 20) is None
    assert (
        rules.recent_failures([*locked, at(20)], now=T0 + timedelta(minutes=20), policy=POLICY) == 1
    )


def test_every_failing_outcome_counts() -> None:
    mixed = [
        at(0, Outcome.UNKNOWN_USER),
        at(1, Outcome.DISABLED),
        at(2),
        at(3, Outcome.BAD_PASSWORD),
        at(4, Outcome.DISABLED),
    ]
    assert lock(mixed, 4) == T0 + timedelta(minutes=19)


outcomes = st.sampled_from(list(Outcome))
attempt_lists = st.lists(
    st.tuples(st.floats(min_value=0, max_value=120, allow_nan=False), outcomes), max_size=30
).map(lambda xs: [at(m, o) for m, o in xs])


@given(attempt_lists, st.floats(min_value=0, max_value=150, allow_nan=False))
def test_lock_properties(attempts: list[LoginAttempt], now_min: float) -> None:
    now = T0 + timedelta(minutes=now_min)
    until = rules.locked_until(attempts, now=now, policy=POLICY)
    failures = [a for a in attempts if rules.is_failure(a.outcome) and a.at <= now]
    if len(failures) < POLICY.max_failures:
        assert until is None
    if until is not None:
        assert now < until <= now + POLICY.lock
        # The lock starts at a failure preceded by enough failures within the window.
        start = until - POLICY.lock
        inside = [a for a in failures if start - POLICY.window < a.at <= start]
        assert len(inside) >= POLICY.max_failures
    # Order of the input does not matter.
    assert rules.locked_until(list(reversed(attempts)), now=now, policy=POLICY) == until


@given(st.integers(min_value=5, max_value=12), st.floats(min_value=0, max_value=2.9))
def test_consecutive_fast_failures_always_lock(n: int, gap: float) -> None:
    attempts = [at(i * gap) for i in range(n)]
    fifth = attempts[4].at
    assert rules.locked_until(attempts, now=fifth, policy=POLICY) == fifth + POLICY.lock


# --- tokens -----------------------------------------------------------------------------

SECRET = "unit-test-secret-0123456789abcdef0123"


def test_token_roundtrip_and_expiry_boundary() -> None:
    token = tokens.issue(username="anna", secret=SECRET, now=T0, lifetime=timedelta(minutes=30))
    assert tokens.subject(token, secret=SECRET, now=T0 + timedelta(minutes=29)) == "anna"
    with pytest.raises(InvalidTokenError, match="expired"):
        tokens.subject(token, secret=SECRET, now=T0 + timedelta(minutes=30))
    with pytest.raises(InvalidTokenError):
        tokens.subject(token, secret=SECRET + "x", now=T0)
    header, payload, sig = token.split(".")
    with pytest.raises(InvalidTokenError):
        tokens.subject(f"{header}.{payload}.{sig[::-1]}", secret=SECRET, now=T0)


# --- signature canonical form -----------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
contents = st.dictionaries(st.text(min_size=1, max_size=6), json_scalars, min_size=1, max_size=6)


@given(contents)
def test_record_hash_ignores_key_order(content: dict[str, object]) -> None:
    shuffled = dict(reversed(list(content.items())))
    a = record_hash(table="erp.lots", key={"id": 1}, content=content)
    assert a == record_hash(table="erp.lots", key={"id": 1}, content=shuffled)


@given(contents, st.data())
def test_record_hash_changes_with_any_value_key_or_table(
    content: dict[str, object], data: st.DataObject
) -> None:
    base = record_hash(table="erp.lots", key={"id": 1}, content=content)
    field = data.draw(st.sampled_from(sorted(content)))
    new_value = data.draw(
        json_scalars.filter(lambda v: canonical_json(v) != canonical_json(content[field]))
    )
    assert (
        record_hash(table="erp.lots", key={"id": 1}, content={**content, field: new_value}) != base
    )
    assert record_hash(table="erp.lots", key={"id": 2}, content=content) != base
    assert record_hash(table="erp.deviations", key={"id": 1}, content=content) != base


def test_record_hash_by_hand_and_time_zones() -> None:
    cet = timezone(timedelta(hours=1))
    content = {"released_at": datetime(2026, 11, 25, 13, 0, tzinfo=cet), "qty": 3}
    text = (
        '{"content":{"qty":3,"released_at":"2026-11-25T12:00:00Z"},'
        '"key":{"id":9},"table":"erp.lots"}'
    )
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert record_hash(table="erp.lots", key={"id": 9}, content=content) == expected
    with pytest.raises(UnsignableContentError):
        canonical_json({"t": datetime(2026, 11, 25, 13, 0)})  # noqa: DTZ001 - the point
    with pytest.raises(UnsignableContentError):
        canonical_json({"x": float("nan")})


def test_manifestation_text() -> None:
    signed = datetime(2026, 11, 25, 14, 5, 9, 500, tzinfo=timezone(timedelta(hours=1)))
    assert manifestation(
        full_name="Lena Holm", username="qa-lena", signed_at=signed, meaning="Released"
    ) == ("Signed by Lena Holm (qa-lena) on 2026-11-25 13:05:09 UTC, meaning: Released")


# --- audit chain ------------------------------------------------------------------------


def build_chain(n: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        e = ChainEntry(
            id=100 + i,
            seq=i,
            at=T0 + timedelta(seconds=i),
            table_name="erp.lots",
            action="UPDATE",
            row_key=f'{{"id": {i}}}',
            old_values='{"qty": 1}',
            new_values='{"qty": 2}',
            actor="anna",
            reason=None,
            prev_hash=prev,
            hash="",
        )
        e = dataclasses.replace(e, hash=entry_hash(e, prev_hash=prev))
        entries.append(e)
        prev = e.hash
    return entries


def head_of(chain: list[ChainEntry]) -> ChainHead:
    return (
        ChainHead(seq=chain[-1].seq, hash=chain[-1].hash) if chain else ChainHead(0, GENESIS_HASH)
    )


def test_entry_hash_by_hand() -> None:
    e = build_chain(1)[0]
    text = (
        '1:1;27:2026-11-25T08:00:01.000000Z;8:erp.lots;6:UPDATE;9:{"id": 1};10:{"qty": 1};'
        f'10:{{"qty": 2}};4:anna;~;64:{GENESIS_HASH};'
    )
    assert e.hash == hashlib.sha256(text.encode()).hexdigest()


@given(st.integers(min_value=1, max_value=8), st.data())
def test_any_edit_or_deletion_is_named(n: int, data: st.DataObject) -> None:
    chain = build_chain(n)
    head = head_of(chain)
    assert first_break(chain, head=head) is None
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    name = data.draw(st.sampled_from(["actor", "reason", "new_values", "old_values", "table_name"]))
    edited = list(chain)
    edited[k] = dataclasses.replace(chain[k], **{name: "mallory"})
    broken = first_break(edited, head=head)
    assert broken is not None
    assert broken.entry_id == chain[k].id
    deleted = chain[:k] + chain[k + 1 :]
    broken = first_break(deleted, head=head)
    assert broken is not None
    assert broken.entry_id == (chain[k + 1].id if k + 1 < n else None)
