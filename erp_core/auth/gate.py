"""The sign-in gate: password checks that cannot exhaust the pool or starve other requests.

Every sign-in (API token, web form, password change) goes through ``LoginGate``:

1. ``admit`` in a short transaction on a pooled connection (``attempts.admit``): lock the
   username and the source, apply the limits, reserve the check — then give the
   connection back;
2. the argon2 check runs in a worker thread with **no** connection held, at most
   ``hash_slots`` at a time; a check that waits longer than ``queue_timeout_s`` for a slot
   is refused with ``LoginBusyError`` (503) instead of piling up;
3. ``settle`` in a second short transaction records the outcome.

At most ``db_slots`` sign-in transactions use the pool at once, so a flood of sign-ins
(made-up names included) leaves the other connections to signed-in users' requests, and
waiting for a slot happens on the event loop, not in the thread pool the other requests
need. One argon2id check costs ~160 ms of one core here (docs/access-and-audit.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import anyio
import anyio.to_thread
from psycopg_pool import ConnectionPool

from erp_core.audit.keys import Keyring
from erp_core.audit.service import set_actor
from erp_core.auth import attempts, passwords, rules, service
from erp_core.auth.attempts import Admission, Conn
from erp_core.auth.errors import LoginBusyError, WeakPasswordError
from erp_core.auth.models import Channel, LoginPolicy, Outcome, User

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GateLimits:
    """How much of the machine sign-ins may use."""

    hash_slots: int = 1  # argon2 checks at once (each takes one core)
    db_slots: int = 2  # pooled connections sign-ins use at once
    queue_timeout_s: float = 10.0  # longest wait for a hashing slot before 503


class LoginGate:
    """Checks passwords for sign-in with bounded CPU and pool use (build in the app's loop).

    ``keyring`` (the record key) verifies each stored hash's binding and binds new ones.
    """

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        policy: LoginPolicy,
        limits: GateLimits,
        keyring: Keyring,
        on_refusal: Callable[[rules.RefusalKind], None] | None = None,
    ) -> None:
        self.pool = pool
        self.policy = policy
        self.limits = limits
        self.keyring = keyring
        self._on_refusal = on_refusal
        # Created here, so the gate must be built inside the running event loop.
        self._hash_queue = anyio.CapacityLimiter(limits.hash_slots)
        self._hash_threads = anyio.CapacityLimiter(limits.hash_slots)
        self._db = anyio.CapacityLimiter(limits.db_slots)

    async def run_db(self, work: Callable[[Conn], T]) -> T:
        """Run ``work`` in one short transaction on a pooled connection (committed)."""

        def call() -> T:
            with self.pool.connection() as conn:
                return work(conn)

        return await anyio.to_thread.run_sync(call, limiter=self._db)

    async def cpu(self, work: Callable[[], T]) -> T:
        """Run CPU-bound ``work`` (argon2) in a hashing slot; LoginBusyError after the wait."""
        started = time.monotonic()
        try:
            with anyio.fail_after(self.limits.queue_timeout_s):
                await self._hash_queue.acquire()
        except TimeoutError as err:
            raise LoginBusyError(round(time.monotonic() - started, 1)) from err
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._hash_threads)
        finally:
            self._hash_queue.release()

    async def authenticate(
        self, *, username: str, password: str, source: str | None, channel: Channel, now: datetime
    ) -> User:
        """The user if the password is right and the account usable; AuthError otherwise."""

        def admit(conn: Conn) -> Admission | rules.Refusal:
            attempts.lock_username(conn, username)
            attempts.lock_source(conn, source)
            return attempts.admit(
                conn,
                username=username,
                source=source,
                channel=channel,
                now=now,
                policy=self.policy,
                found=service.fetch(conn, username),
            )

        decided = await self.run_db(admit)
        if isinstance(decided, rules.Refusal):
            if self._on_refusal is not None:
                self._on_refusal(decided.kind)
            raise service.refusal_error(decided, username=username, source=source)
        outcome: Outcome | None = None  # None: the check never ran (busy, cancelled)
        try:
            outcome = await self.cpu(lambda: self._check(decided, password, now))
        finally:
            # shielded: a client that hangs up must not leave the reservation behind
            with anyio.CancelScope(shield=True):
                await self.run_db(
                    lambda conn: attempts.settle(conn, admission=decided, outcome=outcome, now=now)
                )
        if outcome is not Outcome.SUCCESS or decided.user is None:
            raise service.outcome_error(outcome or Outcome.UNKNOWN_USER, username=username)
        return decided.user

    def _check(self, admission: Admission, password: str, now: datetime) -> Outcome:
        if admission.user is None or admission.stored is None:
            passwords.burn_time(password)  # as slow as a real check: no user enumeration
            return Outcome.UNKNOWN_USER
        ok = passwords.check_password(admission.stored.password_hash, password)
        # the binding only for the right password: a guess learns nothing about it
        bound = (
            ok and service.binding_problem(self.keyring, admission.user, admission.stored) is None
        )
        return service.outcome_of(
            admission.user, password_ok=ok, bound=bound, now=now, policy=self.policy
        )

    async def change_password(  # noqa: PLR0913 - the whole change is explicit
        self,
        *,
        username: str,
        current_password: str,
        new_password: str,
        source: str | None,
        now: datetime,
        on_stored: Callable[[Conn, User], object] | None = None,
    ) -> User:
        """Replace a user's own password after checking the current one (audited).

        The current password goes through the limits like a sign-in (channel
        ``password_change``); the new one must pass the policy and differ from it.
        ``on_stored`` runs in the same transaction as the update (ending web sessions).
        """
        user = await self.authenticate(
            username=username,
            password=current_password,
            source=source,
            channel=Channel.PASSWORD_CHANGE,
            now=now,
        )
        service.check_new_password(user, new_password)
        if new_password == current_password:
            raise WeakPasswordError("must differ from the current password")
        new_hash = await self.cpu(lambda: passwords.hash_password(new_password))

        def store(conn: Conn) -> User:
            set_actor(conn, user=user.username, reason="password changed by the user")
            service.store_password(
                conn,
                user=user,
                password_hash=new_hash,
                now=now,
                must_change=False,
                keyring=self.keyring,
            )
            changed = service.get_user(conn, username=user.username)
            if on_stored is not None:
                on_stored(conn, changed)
            return changed

        return await self.run_db(store)
