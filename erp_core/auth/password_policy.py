"""The password policy: what a new password must not be (pure; the list is package data).

NIST SP 800-63B style: length and a block-list rather than composition rules. A new
password needs ``MIN_LENGTH`` characters and must not be

* one of the 10 000 most common passwords (``common_passwords.txt``, compared without
  case), nor one of them with digits or symbols around it (``Password2026!``) or with
  look-alike digits and symbols for letters (``P@ssw0rd``);
* contain the user name or a part of the full name;
* only digits, with or without separators (a date, a phone or a badge number is the
  first thing an insider tries);
* a run of the alphabet, the digits or a keyboard row (``qwertyuiopas``), a repetition
  of a shorter part (``abcabcabcabc``), or made of fewer than ``MIN_DISTINCT`` characters;
* contain control characters (they cannot be typed reliably on every terminal).

Anything else is accepted: no "one upper case, one digit, one symbol" rule, because such
rules push people to ``Summer2026!`` and do not add the strength they promise (800-63B
§3.1.1.2). Why each limit: docs/access-and-audit.md, "Password policy".
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import resources

MIN_LENGTH = 12
MAX_LENGTH = 1024
MIN_DISTINCT = 5
# The shortest core (password without leading/trailing digits and symbols) looked up in
# the common list: shorter cores ("abc", "pw") match too much to mean anything.
MIN_CORE = 4
# The shortest user name / name part that may not appear inside the password: shorter
# ones ("qa", "Li") are in too many good passwords by chance.
MIN_NAME_PART = 3

_SEPARATORS = string.punctuation + string.whitespace
_EDGES = string.digits + _SEPARATORS
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "qwertyuiopasdfghjklzxcvbnm",  # the letter rows, left to right, top to bottom
    "qwertzuiopasdfghjklyxcvbnm",  # German layout
    "azertyuiopqsdfghjklmwxcvbn",  # French layout
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",  # the columns
)
# Look-alike digits and symbols people put for letters; "1" is tried as "i" and as "l".
_LEET = (
    str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "$": "s", "5": "s", "7": "t",
                   "1": "i", "!": "i", "8": "b", "9": "g", "+": "t"}),
    str.maketrans({"1": "l", "|": "l"}),
)  # fmt: skip


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, case-folded (read once)."""
    text = resources.files("erp_core.auth").joinpath("common_passwords.txt").read_text("utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return frozenset(_fold(line) for line in lines[start:] if line)


def problem(
    password: str,
    *,
    username: str,
    full_name: str = "",
    common: frozenset[str] | None = None,
) -> str | None:
    """Why ``password`` may not be set for this user, or None if it is acceptable."""
    folded = _fold(password)
    checks: tuple[Callable[[], str | None], ...] = (
        lambda: _length(password),
        lambda: _personal(folded, username=username, full_name=full_name),
        lambda: _shape(folded),
        lambda: _common_problem(folded, common_passwords() if common is None else common),
    )
    for check in checks:
        found = check()
        if found is not None:
            return found
    return None


def is_repetition(text: str) -> bool:
    """True if ``text`` is a shorter part repeated (``abab``, ``passwordpassword``)."""
    return len(text) > 1 and (text + text).find(text, 1) < len(text)


def is_run(text: str) -> bool:
    """True if ``text`` is a stretch of one of the runs, forwards or backwards, wrapping."""
    return any(text in run * 3 or text in (run * 3)[::-1] for run in _RUNS)


def _length(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters (a few words in a row are easy to remember)"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in password):
        return "must not contain control characters"
    return None


def _shape(folded: str) -> str | None:
    if "".join(c for c in folded if c not in _SEPARATORS).isdigit():
        return "must not be only digits (dates, phone and badge numbers are guessed first)"
    if len(set(folded)) < MIN_DISTINCT:
        return f"needs at least {MIN_DISTINCT} different characters"
    if is_repetition(folded):
        return "must not be a repeated pattern"
    if is_run(folded):
        return "must not be a run of the alphabet, the digits or the keyboard"
    return None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _personal(folded: str, *, username: str, full_name: str) -> str | None:
    name = _fold(username)
    if (len(name) >= MIN_NAME_PART and name in folded) or folded == name:
        return "must not contain the user name"
    parts = [p for p in re.split(r"[\s.,'_-]+", _fold(full_name)) if p]
    whole = "".join(parts)
    for part in {*parts, whole}:
        long_enough = len(part) >= MIN_NAME_PART or (len(part) >= 2 and not part.isascii())
        if long_enough and part in folded:
            return "must not contain your name"
    return None


def _common_problem(folded: str, common: frozenset[str]) -> str | None:
    if folded in common:
        return "is one of the most common passwords"
    cores = _cores(folded, _longest(common)) | {folded}
    candidates = cores | {core.translate(table) for core in cores for table in _LEET}
    if any(c in common for c in candidates if len(c) >= MIN_CORE):
        return "is a common password with digits or symbols added or swapped in"
    return None


@cache
def _longest(common: frozenset[str]) -> int:
    return max(map(len, common), default=0)


def _cores(text: str, longest: int) -> set[str]:
    """``text`` without runs of digits and symbols at its start and/or end.

    Only cores of at most ``longest`` characters (the longest common password) are made,
    so a long password of digits and symbols costs O(n · longest), not O(n²).
    """
    trailing = len(text) - len(text.rstrip(_EDGES))
    leading = len(text) - len(text.lstrip(_EDGES))
    ends = range(len(text) - trailing, len(text) + 1)
    starts = range(leading + 1)
    return {text[a:b] for a in starts for b in ends if 0 < b - a <= longest}
