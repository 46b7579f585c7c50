"""The password policy: examples by hand, and hypothesis properties of each rule."""

from __future__ import annotations

import string

from hypothesis import assume, given
from hypothesis import strategies as st

from erp_core.auth import password_policy as policy

COMMON = sorted(policy.common_passwords())


def problem(password: str, username: str = "lena.holm", full_name: str = "Lena Holm") -> str | None:
    return policy.problem(password, username=username, full_name=full_name)


def test_the_shipped_list_is_the_top_ten_thousand_with_its_licence() -> None:
    text = (policy.resources.files("erp_core.auth") / "common_passwords.txt").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("MIT License" in line for line in header)
    assert any("xato-net-10-million-passwords-10000.txt" in line for line in header)
    assert len(text.splitlines()) - len(header) == 10_000
    assert {"123456", "password", "qwertyuiop", "1q2w3e4r5t6y"} <= policy.common_passwords()
    assert all(p == p.casefold() for p in COMMON)


def test_examples() -> None:
    refused = {
        "1234567890": "at least 12 characters",
        "123456789012": "only digits",
        "20260315-0815": "only digits",  # a date and a badge number, with a dash
        "Password2026!": "common password",
        "P@ssw0rd2026": "common password",
        "Summer2026!!": "common password",
        "monkey123456": "common password",
        "qwertyuiopas": "run of",
        "abcdefghijklm": "run of",
        "zyxwvutsrqpo": "run of",
        "Trustno1Trustno1": "repeated pattern",
        "aaaaaaaaaaab": "different characters",
        "lena.holm-2026!": "user name",
        "Holm-Tulip-2026": "your name",
        "tab\there-Tulip-2026": "control characters",
        "x" * (policy.MAX_LENGTH + 1): "at most",
    }
    for password, reason in refused.items():
        found = problem(password)
        assert found is not None, password
        assert reason in found, (password, found)
    accepted = [
        "Tulip-Secret-99",
        "correct horse battery staple",
        "Kühlkette bleibt kalt 7",
        "冷链温度一直保持在两到八度",
        "ColdTrace-demo-2026!",
    ]
    for password in accepted:
        assert problem(password) is None, (password, problem(password))


def test_chinese_names_of_two_characters_count() -> None:
    assert problem("李雷-冷链温度保持在两到八度", username="li.lei", full_name="李雷") is not None
    # a two-letter Latin name part is not refused inside a longer password
    assert problem("Tulip-Secret-Li-99", username="li.wei", full_name="Li Wei") is None


@given(st.text(min_size=0, max_size=policy.MIN_LENGTH - 1))
def test_short_passwords_are_refused(password: str) -> None:
    found = problem(password)
    assert found is not None
    assert "at least" in found


@given(st.sampled_from(COMMON), st.text(alphabet=string.digits + "!?.#-_*", max_size=8))
def test_common_passwords_with_digits_or_symbols_added_are_refused(base: str, tail: str) -> None:
    assume(len(base) >= policy.MIN_CORE or len(base + tail) >= policy.MIN_LENGTH)
    password = (base + tail).ljust(policy.MIN_LENGTH, "1")
    found = problem(password.upper(), username="zz", full_name="")
    assert found is not None


@given(
    st.sampled_from(["abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiopasdfghjklzxcvbnm"]),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=policy.MIN_LENGTH, max_value=30),
    st.booleans(),
)
def test_runs_are_refused(run: str, start: int, length: int, backwards: bool) -> None:
    text = (run * 5)[start : start + length]
    found = problem(text[::-1] if backwards else text, username="zz", full_name="")
    assert found is not None


@given(
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=6),
    st.integers(2, 6),
)
def test_repetitions_are_refused(unit: str, times: int) -> None:
    password = unit * max(times, -(-policy.MIN_LENGTH // len(unit)))
    assert problem(password, username="zz", full_name="") is not None


@given(st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=20), st.text(max_size=20))
def test_the_user_name_is_refused_anywhere_in_any_case(username: str, around: str) -> None:
    password = (around + username.upper() + "-Tulip-Secret-99")[: policy.MAX_LENGTH]
    found = policy.problem(password, username=username, full_name="")
    assert found is not None


_WORD = st.text(alphabet="bcdfghjklmnpqrstvwxz", min_size=5, max_size=9)


@given(st.lists(_WORD, min_size=3, max_size=5, unique=True), st.sampled_from([" ", "-", "."]))
def test_passphrases_of_uncommon_words_are_accepted(words: list[str], separator: str) -> None:
    password = separator.join(words)
    assume(len(set(password)) >= policy.MIN_DISTINCT)
    assert problem(password, username="zz", full_name="Ann Example") is None
