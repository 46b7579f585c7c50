"""The login limits per (user, source), per source and per account, and the exact count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.auth import rules
from erp_core.auth.models import Channel, LoginAttempt, LoginPolicy, Outcome
from erp_core.auth.rules import LoginHistory, RefusalKind

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = LoginPolicy(
    max_failures=5,
    window=timedelta(minutes=15),
    lock=timedelta(minutes=15),
    source_max_failures=20,
    account_max_failures=50,
)
OFFICE = "10.0.0.5"  # where the real user works
STRANGER = "10.0.0.66"


def attempt(
    minute: float,
    *,
    user: str = "qam",
    source: str = STRANGER,
    outcome: Outcome = Outcome.BAD_PASSWORD,
) -> LoginAttempt:
    return LoginAttempt(user, T0 + timedelta(minutes=minute), source, Channel.LOGIN, outcome)


def decide(
    user_attempts: list[LoginAttempt],
    *,
    source: str,
    minute: float,
    source_attempts: list[LoginAttempt] | None = None,
    **pending: object,
) -> rules.Refusal | None:
    if source_attempts is None:
        source_attempts = [a for a in user_attempts if a.source == source]
    history = LoginHistory(user_attempts, source_attempts, **pending)  # type: ignore[arg-type]
    return rules.refusal(history, source=source, now=T0 + timedelta(minutes=minute), policy=POLICY)


def test_a_stranger_locks_only_their_own_address() -> None:
    guesses = [attempt(m) for m in range(5)]
    stranger = decide(guesses, source=STRANGER, minute=5)
    assert stranger == rules.Refusal(RefusalKind.PAIR_LOCKED, T0 + timedelta(minutes=19))
    assert decide(guesses, source=OFFICE, minute=5) is None  # the QA manager still signs in


def test_one_address_trying_many_names_is_throttled_for_every_name() -> None:
    sprayed = [attempt(m * 0.1, user=f"made-up-{m}") for m in range(20)]
    refused = decide([], source=STRANGER, minute=2, source_attempts=sprayed)
    assert refused is not None
    assert refused.kind is RefusalKind.SOURCE_THROTTLED
    assert refused.until == sprayed[-1].at + POLICY.lock
    assert decide([], source=STRANGER, minute=2, source_attempts=sprayed[:19]) is None
    # refusals from the address count too (a throttled flood records nothing)
    refusals = [attempt(m * 0.1, outcome=Outcome.LOCKED) for m in range(20)]
    assert decide([], source=STRANGER, minute=2, source_attempts=refusals) is not None


def test_guessing_from_many_addresses_locks_the_account_except_where_it_signed_in() -> None:
    # four guesses from each of 13 addresses: no pair lock, 52 failures on the account
    spread = [
        attempt(i * 0.2 + k * 0.01, source=f"10.9.{i}.1") for i in range(13) for k in range(4)
    ]
    new_place = decide(spread, source="10.9.99.1", minute=3)
    assert new_place is not None
    assert new_place.kind is RefusalKind.ACCOUNT_LOCKED
    assert decide(spread, source=OFFICE, minute=3, known_source=True) is None


def test_checks_in_progress_count_as_failures() -> None:
    three = [attempt(m) for m in range(3)]
    assert decide(three, source=STRANGER, minute=3, pending_pair=1) is None
    busy = decide(three, source=STRANGER, minute=3, pending_pair=2)
    assert busy is not None
    assert busy.kind is RefusalKind.BUSY
    assert busy.until == T0 + timedelta(minutes=3) + rules.BUSY_RETRY


def test_a_success_ends_the_streak_of_its_pair() -> None:
    history = [*(attempt(m) for m in range(4)), attempt(4, outcome=Outcome.SUCCESS), attempt(5)]
    assert decide(history, source=STRANGER, minute=5) is None


def test_lock_state_for_administrators() -> None:
    history = [attempt(m) for m in range(5)] + [attempt(6, source=OFFICE)]
    state = rules.lock_state(history, now=T0 + timedelta(minutes=7), policy=POLICY)
    assert state.locked_until == T0 + timedelta(minutes=19)
    assert state.recent_failures == 6


@given(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=11),
    st.integers(min_value=1, max_value=60),
)
def test_concurrent_wrong_passwords_admit_exactly_the_limit(
    limit: int, earlier: int, concurrent: int
) -> None:
    """Admissions are serialised; each one admitted is pending until it ends as a failure."""
    policy = LoginPolicy(max_failures=limit, source_max_failures=1000, account_max_failures=1000)
    now = T0 + timedelta(minutes=1)
    done = [attempt(0.5) for _ in range(min(earlier, limit - 1))]
    admitted = 0
    for _ in range(concurrent):
        history = LoginHistory(done, done, pending_pair=admitted, pending_source=admitted)
        if rules.refusal(history, source=STRANGER, now=now, policy=policy) is None:
            admitted += 1
    assert admitted == min(concurrent, limit - len(done))
    # once they have all failed, the pair is locked
    failed = done + [attempt(1) for _ in range(admitted)]
    if len(failed) == limit:
        after = rules.refusal(LoginHistory(failed, failed), source=STRANGER, now=now, policy=policy)
        assert after is not None
        assert after.kind is RefusalKind.PAIR_LOCKED


sources = st.sampled_from([OFFICE, STRANGER, "10.0.0.7"])
outcomes = st.sampled_from(list(Outcome))
histories = st.lists(
    st.tuples(st.floats(min_value=0, max_value=60, allow_nan=False), sources, outcomes),
    max_size=40,
).map(lambda xs: [attempt(m, source=s, outcome=o) for m, s, o in xs])


@given(histories, sources, st.floats(min_value=0, max_value=90, allow_nan=False))
def test_refusal_properties(history: list[LoginAttempt], source: str, minute: float) -> None:
    now = T0 + timedelta(minutes=minute)
    refused = decide(history, source=source, minute=minute)
    pair = [a for a in history if a.source == source and rules.is_failure(a.outcome)]
    from_source = [a for a in history if a.source == source and a.outcome is not Outcome.SUCCESS]
    if refused is None:
        pair_lock = rules.locked_until(
            [a for a in history if a.source == source], now=now, policy=POLICY
        )
        assert pair_lock is None
    else:
        assert refused.until > now
        if refused.kind is RefusalKind.PAIR_LOCKED:
            assert len(pair) >= POLICY.max_failures
        if refused.kind is RefusalKind.SOURCE_THROTTLED:
            assert len(from_source) >= POLICY.source_max_failures
    # another address's failures never lock this one's pair
    others = [a for a in history if a.source != source]
    alone = decide(others, source=source, minute=minute, source_attempts=[])
    assert alone is None or alone.kind is RefusalKind.ACCOUNT_LOCKED
