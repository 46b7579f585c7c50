"""Shared pieces of the fuzz tests (tests/unit/test_fuzz_*.py, docs/fuzzing.md).

Hostile input strategies (control characters, NUL, lone surrogates, digits that
`str.isdigit` accepts but are not ASCII, invalid UTF-8, deep nesting), edits of
valid input, and a CPU-time check that a decoder scales linearly with its input.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Every digit here satisfies str.isdigit(); none is ASCII. Arabic-Indic, extended
# Arabic-Indic (Persian), Devanagari, full-width; superscripts and circled digits
# also pass isdigit() but int() refuses them.
NON_ASCII_DIGITS = "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९０１２３４５６７８９²³¹①⑨"
CONTROL = "".join(chr(c) for c in (*range(32), 127)) + "\x85\u2028\u2029\ufeff"
SURROGATES = "\ud800\udbff\udc00\udfff"
ODD = "\ufffd\U0001f600\u200b\u202e\u00a0é中"
HOSTILE = NON_ASCII_DIGITS + CONTROL + SURROGATES + ODD

# Byte sequences no UTF-8 decoder may accept: a lone continuation byte, bytes never
# used, an overlong NUL, an encoded surrogate, a code point past U+10FFFF, a cut
# three-byte sequence.
INVALID_UTF8 = (
    b"\x80",
    b"\xff",
    b"\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
)


def fuzz_settings(scale: float = 1.0) -> settings:
    """Settings of a fuzz property: the active profile's example count times ``scale``.

    The default run keeps hypothesis' default count (100), the ``deep`` profile
    (``HYPOTHESIS_PROFILE=deep``, tests/conftest.py) many more; no deadline, since a
    shared CI machine makes per-example timing noise, not a finding.
    """
    return settings(
        max_examples=max(10, int(settings.default.max_examples * scale)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def hostile_text(
    alphabet: str = "", *, max_size: int = 80, surrogates: bool = True
) -> st.SearchStrategy[str]:
    """Text mixing ``alphabet`` (the decoder's own characters) with hostile ones.

    ``surrogates=False`` leaves out lone surrogates, for input that was decoded from
    bytes on its way in (a Latin-1 or UTF-8 decode never yields one).
    """
    own = [st.sampled_from(alphabet)] if alphabet else []
    hostile = HOSTILE if surrogates else HOSTILE.translate({ord(c): None for c in SURROGATES})
    chars = st.one_of(
        *own,
        st.sampled_from(hostile),
        st.characters(exclude_categories=() if surrogates else ("Cs",)),
    )
    return st.text(chars, max_size=max_size)


def encoded(text: str) -> bytes:
    """UTF-8 bytes of ``text``, lone surrogates included (as a careless encoder writes them)."""
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated(
    draw: st.DrawFn, base: st.SearchStrategy[str], alphabet: str = "", *, hostile: bool = True
) -> str:
    """A valid string from ``base`` with up to four edits: insert, delete, replace, cut, repeat.

    Inserted characters come from ``alphabet`` and, if ``hostile``, the hostile ones.
    """
    text = draw(base)
    pool = alphabet + (HOSTILE if hostile else "")
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "cut", "repeat"]))
        char = draw(st.sampled_from(pool))
        if op == "insert":
            text = text[:at] + char + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1 :]
        elif op == "replace":
            text = text[:at] + char + text[at + 1 :]
        elif op == "cut":
            text = text[:at]
        else:
            text = text[:at] + text[at:] * 2
    return text


def invalid_utf8() -> st.SearchStrategy[bytes]:
    """Bytes that are not valid UTF-8: valid text with a bad sequence somewhere in it."""
    return st.builds(
        lambda head, bad, tail: head.encode() + bad + tail.encode(),
        st.text(max_size=20),
        st.sampled_from(INVALID_UTF8),
        st.text(max_size=20),
    )


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON-shaped value: scalars (huge ints, non-finite floats), lists and objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value`` as a careless sender writes them (NaN, lone surrogates kept)."""
    return encoded(json.dumps(value, allow_nan=True))


def nested(depth: int, *, inner: bytes = b"1", kind: str = "list") -> bytes:
    """JSON nested ``depth`` levels deep: ``[[[…]]]`` or ``{"a":{"a":…}}``."""
    if kind == "list":
        return b"[" * depth + inner + b"]" * depth
    return b'{"a":' * depth + inner + b"}" * depth


def cpu_seconds(fn: Callable[[], object], *, repeat: int = 3) -> float:
    """The least process CPU time ``fn`` took over ``repeat`` runs.

    CPU time of this process, not wall time: other processes on a shared machine do
    not count, and the minimum drops a garbage-collection pause.
    """
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def assert_scales_linearly(run: Callable[[int], object], size: int, *, factor: int = 8) -> None:
    """Assert ``run(factor * size)`` costs at most 3 × ``factor`` times ``run(size)``.

    Linear work grows ``factor``-fold, quadratic ``factor²``-fold (64 for 8); the
    margin of 3 absorbs timer noise, and a floor of 1 ms keeps a tiny base from
    turning noise into a ratio.
    """
    small = cpu_seconds(lambda: run(size))
    big = cpu_seconds(lambda: run(size * factor))
    limit = max(small, 1e-3) * factor * 3
    assert big <= limit, (
        f"{factor}x the input took {big / max(small, 1e-9):.0f}x the time "
        f"({small * 1000:.1f} ms -> {big * 1000:.1f} ms): not linear"
    )
