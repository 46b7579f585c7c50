"""Pure access rules: separation of duties, password strength and login limiting.

No I/O here, so the rules are tested exhaustively (tests/unit/test_auth_rules.py); the
database enforces separation of duties a second time with a trigger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from erp_core.auth.models import SIGNING_ROLES, LoginAttempt, LoginPolicy, Outcome, Role

MIN_PASSWORD_LENGTH = 10
NOT_FAILURES = frozenset({Outcome.SUCCESS, Outcome.LOCKED})


def separation_conflict(roles: Iterable[Role]) -> bool:
    """True if ``roles`` let one person both administer accounts and sign releases."""
    held = frozenset(roles)
    return Role.ADMIN in held and bool(held & SIGNING_ROLES)


def password_problem(password: str, *, username: str) -> str | None:
    """Why ``password`` may not be set, or None if it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"at least {MIN_PASSWORD_LENGTH} characters"
    if username.lower() in password.lower():
        return "must not contain the username"
    if len(set(password)) < 4:
        return "too few different characters"
    return None


def is_failure(outcome: Outcome) -> bool:
    """Whether ``outcome`` counts towards the lock (refusals while locked do not)."""
    return outcome not in NOT_FAILURES


def locked_until(
    attempts: Iterable[LoginAttempt], *, now: datetime, policy: LoginPolicy
) -> datetime | None:
    """When the lock that is in force at ``now`` ends, or None if the account is not locked.

    ``policy.max_failures`` failures within ``policy.window`` (no success in between) lock
    the account for ``policy.lock`` from the last of them; failures before a lock or a
    success do not count again. ``attempts`` must cover at least ``window + lock`` before
    ``now`` (``history_span``); attempts after ``now`` are ignored.
    """
    until: datetime | None = None
    streak: list[datetime] = []
    # ties in time: a success counts as first, so the result does not depend on input order
    for attempt in sorted(attempts, key=lambda a: (a.at, is_failure(a.outcome))):
        if attempt.at > now:
            break
        if attempt.outcome is Outcome.SUCCESS:
            streak.clear()
        elif is_failure(attempt.outcome):
            if until is not None and attempt.at < until:
                continue  # recorded while locked (should not happen): not counted
            streak = [t for t in streak if t > attempt.at - policy.window]
            streak.append(attempt.at)
            if len(streak) >= policy.max_failures:
                until = attempt.at + policy.lock
                streak.clear()
    return until if until is not None and until > now else None


def recent_failures(attempts: Iterable[LoginAttempt], *, now: datetime, policy: LoginPolicy) -> int:
    """Failed attempts within the window before ``now`` since the last success."""
    count = 0
    for attempt in sorted(attempts, key=lambda a: (a.at, is_failure(a.outcome))):
        if attempt.at > now:
            break
        if attempt.outcome is Outcome.SUCCESS:
            count = 0
        elif is_failure(attempt.outcome) and attempt.at > now - policy.window:
            count += 1
    return count


def history_span(policy: LoginPolicy) -> timedelta:
    """How far back ``locked_until`` needs attempts (window + lock)."""
    return policy.window + policy.lock
