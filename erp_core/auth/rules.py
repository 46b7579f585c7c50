"""Pure access rules: separation of duties and login limiting.

No I/O here, so the rules are tested exhaustively (tests/unit/test_auth_rules.py and
tests/unit/test_login_limits.py); the database enforces separation of duties a second
time with a trigger. The password policy lives in ``erp_core.auth.password_policy``.

Login limiting (docs/access-and-audit.md, "Login throttling") has three counters, so
that a stranger cannot lock a real account and cannot guess from many places at once:

* per (username, source): ``max_failures`` failures within ``window`` lock that pair for
  ``lock`` — the person at their own workstation is not locked out by someone else;
* per source, across every username: ``source_max_failures`` failures or refusals
  within ``window`` throttle the source for ``lock`` — made-up names count here;
* per username, across every source: ``account_max_failures`` failures within
  ``window`` lock the account for ``lock`` for every source that has not signed in as
  that user successfully within ``known_source_age`` (guessing from many addresses).

Checks still running count as failures until they end (``pending_*``), so concurrent
wrong passwords let exactly the limit through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from erp_core.auth import password_policy
from erp_core.auth.models import SIGNING_ROLES, LoginAttempt, LoginPolicy, Outcome, Role

MIN_PASSWORD_LENGTH = password_policy.MIN_LENGTH
NOT_FAILURES = frozenset({Outcome.SUCCESS, Outcome.LOCKED})
# How long a client waits when the limit is only reached by checks still running.
BUSY_RETRY = timedelta(seconds=2)


def separation_conflict(roles: Iterable[Role]) -> bool:
    """True if ``roles`` let one person both administer accounts and sign releases."""
    held = frozenset(roles)
    return Role.ADMIN in held and bool(held & SIGNING_ROLES)


def needs_confirmed_reset(roles: Iterable[Role]) -> bool:
    """True if an account with ``roles`` gets a password only through a QA manager.

    An account that signs (``SIGNING_ROLES``) must never hold a password an administrator
    knows, or separation of duties is void: the administrator could sign as it.
    """
    return bool(frozenset(roles) & SIGNING_ROLES)


def password_problem(password: str, *, username: str, full_name: str = "") -> str | None:
    """Why ``password`` may not be set, or None (see ``password_policy.problem``)."""
    return password_policy.problem(password, username=username, full_name=full_name)


def is_failure(outcome: Outcome) -> bool:
    """Whether ``outcome`` counts towards the lock (refusals while locked do not)."""
    return outcome not in NOT_FAILURES


@dataclass(frozen=True, slots=True)
class Streak:
    """The lock in force at ``now`` (if any) and the failures counting towards the next."""

    locked_until: datetime | None
    failures: int


def streak(  # noqa: PLR0913 - the counting rule and its three parameters, all explicit
    attempts: Iterable[LoginAttempt],
    *,
    now: datetime,
    limit: int,
    window: timedelta,
    lock: timedelta,
    success_resets: bool = True,
) -> Streak:
    """Count failures towards a lock of ``lock`` after ``limit`` failures within ``window``.

    Failures before a lock do not count again after it; a success ends the streak when
    ``success_resets``. Attempts after ``now`` are ignored, and the input order does not
    matter (at equal times a success counts first).
    """
    until: datetime | None = None
    times: list[datetime] = []
    for attempt in sorted(attempts, key=lambda a: (a.at, is_failure(a.outcome))):
        if attempt.at > now:
            break
        if attempt.outcome is Outcome.SUCCESS:
            if success_resets:
                times.clear()
        elif is_failure(attempt.outcome):
            if until is not None and attempt.at < until:
                continue  # recorded while locked (only by a race elsewhere): not counted
            times = [t for t in times if t > attempt.at - window]
            times.append(attempt.at)
            if len(times) >= limit:
                until = attempt.at + lock
                times.clear()
    current = until if until is not None and until > now else None
    recent = sum(1 for t in times if t > now - window)
    return Streak(locked_until=current, failures=recent)


def locked_until(
    attempts: Iterable[LoginAttempt], *, now: datetime, policy: LoginPolicy
) -> datetime | None:
    """When the lock of ``policy.max_failures`` in force at ``now`` ends, or None.

    ``attempts`` must cover at least ``window + lock`` before ``now`` (``history_span``).
    """
    return streak(
        attempts, now=now, limit=policy.max_failures, window=policy.window, lock=policy.lock
    ).locked_until


def recent_failures(attempts: Iterable[LoginAttempt], *, now: datetime, policy: LoginPolicy) -> int:
    """Failed attempts within the window before ``now`` since the last success or lock."""
    return streak(
        attempts, now=now, limit=policy.max_failures, window=policy.window, lock=policy.lock
    ).failures


def history_span(policy: LoginPolicy) -> timedelta:
    """How far back the rules need attempts (window + lock)."""
    return policy.window + policy.lock


class RefusalKind(StrEnum):
    """Why a password entry is refused without checking the password."""

    PAIR_LOCKED = "pair_locked"  # this username from this source
    SOURCE_THROTTLED = "source_throttled"  # this source, whatever the username
    ACCOUNT_LOCKED = "account_locked"  # this username from any source not known for it
    BUSY = "busy"  # the checks already running could reach a limit


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal and until when it holds."""

    kind: RefusalKind
    until: datetime


@dataclass(frozen=True, slots=True)
class LoginHistory:
    """What the rules need to decide one password entry of ``username`` from ``source``.

    ``user_attempts``: the username's attempts from every source since ``history_span``
    before now (and since its last password change); ``source_attempts``: the failures
    and refusals from the source for any username over the same span; ``pending_*``:
    password checks admitted but not finished yet; ``known_source``: the user signed in
    successfully from this source within ``policy.known_source_age``.
    """

    user_attempts: Sequence[LoginAttempt]
    source_attempts: Sequence[LoginAttempt]
    pending_pair: int = 0
    pending_user: int = 0
    pending_source: int = 0
    known_source: bool = False


def counts_for_source(outcome: Outcome) -> bool:
    """Whether ``outcome`` counts towards the source's throttle (everything but success)."""
    return outcome is not Outcome.SUCCESS


def refusal(
    history: LoginHistory, *, source: str | None, now: datetime, policy: LoginPolicy
) -> Refusal | None:
    """The reason to refuse the next password entry without checking it, or None."""
    pair = streak(
        (a for a in history.user_attempts if a.source == source),
        now=now,
        limit=policy.max_failures,
        window=policy.window,
        lock=policy.lock,
    )
    if pair.locked_until is not None:
        return Refusal(RefusalKind.PAIR_LOCKED, pair.locked_until)
    from_source = streak(
        (
            LoginAttempt(a.username, a.at, a.source, a.channel, Outcome.BAD_PASSWORD)
            for a in history.source_attempts
            if counts_for_source(a.outcome)
        ),
        now=now,
        limit=policy.source_max_failures,
        window=policy.window,
        lock=policy.lock,
        success_resets=False,
    )
    if from_source.locked_until is not None:
        return Refusal(RefusalKind.SOURCE_THROTTLED, from_source.locked_until)
    account = streak(
        history.user_attempts,
        now=now,
        limit=policy.account_max_failures,
        window=policy.window,
        lock=policy.lock,
    )
    guarded = not history.known_source
    if guarded and account.locked_until is not None:
        return Refusal(RefusalKind.ACCOUNT_LOCKED, account.locked_until)
    if (
        pair.failures + history.pending_pair >= policy.max_failures
        or from_source.failures + history.pending_source >= policy.source_max_failures
        or (guarded and account.failures + history.pending_user >= policy.account_max_failures)
    ):
        return Refusal(RefusalKind.BUSY, now + BUSY_RETRY)
    return None


@dataclass(frozen=True, slots=True)
class LockState:
    """What an administrator sees of one user's login limits."""

    locked_until: datetime | None  # the latest lock in force from any source, if any
    recent_failures: int  # failures within the window since the last success, all sources


def lock_state(
    attempts: Sequence[LoginAttempt], *, now: datetime, policy: LoginPolicy
) -> LockState:
    """The user's lock state over ``attempts`` (every source) at ``now``."""
    ends = [
        locked_until([a for a in attempts if a.source == source], now=now, policy=policy)
        for source in {a.source for a in attempts}
    ]
    account = streak(
        attempts,
        now=now,
        limit=policy.account_max_failures,
        window=policy.window,
        lock=policy.lock,
    )
    ends.append(account.locked_until)
    found = [e for e in ends if e is not None]
    return LockState(
        locked_until=max(found) if found else None,
        recent_failures=streak(
            attempts,
            now=now,
            limit=len(attempts) + 1,  # never locks: a plain count since the last success
            window=policy.window,
            lock=policy.lock,
        ).failures,
    )
