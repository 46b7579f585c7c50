"""The password binding (erp_core.auth.binding): a MAC over every bound field, keyed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_core.audit.keys import PASSWORD, SIGNATURE, Keyring, RecordKey
from erp_core.auth import binding
from erp_core.auth.binding import Binding, PasswordRecord, Problem
from erp_core.auth.models import Role, User
from erp_core.auth.resets import ResetRequest, confirmer_problem

KEY_A = RecordKey("2026a", bytes(range(32)))
KEY_B = RecordKey("2026b", bytes(range(1, 33)))
RING = Keyring((KEY_A, KEY_B))
T0 = datetime(2026, 12, 8, 9, 30, 15, 123456, tzinfo=UTC)

records = st.builds(
    PasswordRecord,
    user_id=st.integers(min_value=1, max_value=2**31 - 1),
    username=st.from_regex(r"[a-z0-9][a-z0-9._-]{1,20}", fullmatch=True),
    password_hash=st.text(min_size=1, max_size=120),
    changed_at=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    must_change=st.booleans(),
    serial=st.integers(min_value=0, max_value=2**62),
)


def _changed(record: PasswordRecord, field: str, data: st.DataObject) -> PasswordRecord:
    """``record`` with ``field`` set to any other value of its type."""
    old = getattr(record, field)
    match field:
        case "user_id" | "serial":
            new = data.draw(st.integers(min_value=0, max_value=2**62).filter(lambda v: v != old))
        case "username" | "password_hash":
            new = data.draw(st.text(min_size=1, max_size=60).filter(lambda v: v != old))
        case "changed_at":
            new = old + data.draw(
                st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=9999))
            ) * data.draw(st.sampled_from([1, -1]))
        case _:
            new = not old
    return dataclasses.replace(record, **{field: new})


@given(records)
def test_a_binding_verifies_with_its_key_and_any_ring_that_holds_it(
    record: PasswordRecord,
) -> None:
    made = binding.bind(KEY_A, record)
    assert made.key_id == "2026a"
    assert len(made.mac) == 64
    assert binding.problem(RING, record, made) is None
    assert binding.problem(Keyring((KEY_A,)), record, made) is None


@given(records, st.sampled_from([f.name for f in dataclasses.fields(PasswordRecord)]), st.data())
def test_any_change_of_any_bound_field_breaks_the_binding(
    record: PasswordRecord, field: str, data: st.DataObject
) -> None:
    made = binding.bind(KEY_B, record)
    other = _changed(record, field, data)
    assert binding.problem(RING, other, made) is Problem.MISMATCH


@given(records, st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_a_made_up_mac_does_not_verify(record: PasswordRecord, mac: str) -> None:
    genuine = binding.bind(KEY_A, record).mac
    if mac != genuine:
        assert binding.problem(RING, record, Binding("2026a", mac)) is Problem.MISMATCH


@given(records)
def test_missing_binding_and_unknown_key_are_named(record: PasswordRecord) -> None:
    assert binding.problem(RING, record, None) is Problem.UNBOUND
    elsewhere = binding.bind(RecordKey("other", bytes(32)), record)
    assert binding.problem(RING, record, elsewhere) is Problem.UNKNOWN_KEY
    # after a rotation that dropped the old key, old bindings are unknown, not valid
    assert binding.problem(Keyring((KEY_B,)), record, binding.bind(KEY_A, record)) is (
        Problem.UNKNOWN_KEY
    )
    # the same id with another secret: a mismatch
    impostor = binding.bind(RecordKey("2026a", bytes(32)), record)
    assert binding.problem(RING, record, impostor) is Problem.MISMATCH


def test_copied_to_another_user_the_binding_fails() -> None:
    qa = PasswordRecord(7, "qa", "$argon2id$v=19$m=65536,t=3,p=4$abc$def", T0, False, 3)
    made = binding.bind(KEY_A, qa)
    for other in (dataclasses.replace(qa, user_id=8), dataclasses.replace(qa, username="op")):
        assert binding.problem(RING, other, made) is Problem.MISMATCH


def test_fields_cannot_run_into_each_other() -> None:
    # "ab" + "c" and "a" + "bc" are different records with different messages
    one = PasswordRecord(1, "ab", "c", T0, False, 1)
    two = PasswordRecord(1, "a", "bc", T0, False, 1)
    assert binding.message(one) != binding.message(two)
    assert binding.bind(KEY_A, one).mac != binding.bind(KEY_A, two).mac


def test_the_time_is_the_instant_whatever_its_zone() -> None:
    here = T0.astimezone(timezone(timedelta(hours=8)))
    record = PasswordRecord(1, "qa", "h", T0, True, 1)
    assert (
        binding.problem(
            RING, dataclasses.replace(record, changed_at=here), binding.bind(KEY_A, record)
        )
        is None
    )
    with pytest.raises(ValueError, match="timezone"):
        binding.message(dataclasses.replace(record, changed_at=T0.replace(tzinfo=None)))


def test_the_password_key_is_not_the_signature_key() -> None:
    message = binding.message(PasswordRecord(1, "qa", "h", T0, False, 1))
    assert KEY_A.mac(PASSWORD, message) != KEY_A.mac(SIGNATURE, message)
    assert repr(binding.StoredPassword("secret-hash", None, 1)).count("secret-hash") == 0


def _user(uid: int, name: str, *roles: Role, must_change: bool = False) -> User:
    return User(
        uid, name, name.title(), frozenset(roles), True, T0, must_change_password=must_change
    )


def test_who_may_confirm_a_reset() -> None:
    reset = ResetRequest(
        1, user_id=5, username="qa", requested_by="ida", requested_at=T0, reason="forgot it"
    )
    qam = _user(9, "qam", Role.QA_MANAGER)
    assert confirmer_problem(reset, qam) is None
    assert "own password" in str(confirmer_problem(reset, _user(5, "qa", Role.QA_MANAGER)))
    by_qam = dataclasses.replace(reset, requested_by="qam")
    assert "requested" in str(confirmer_problem(by_qam, qam))
    assert "qa_manager" in str(confirmer_problem(reset, _user(6, "lena", Role.QA)))
    assert "qa_manager" in str(confirmer_problem(reset, _user(3, "ada", Role.ADMIN)))
    disabled = dataclasses.replace(qam, active=False)
    assert confirmer_problem(reset, disabled) is not None
    pending = _user(9, "qam", Role.QA_MANAGER, must_change=True)
    assert "one-time" in str(confirmer_problem(reset, pending))
