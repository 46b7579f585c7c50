"""Anchor lines and record keys, pure: what verifies, what does not, and why."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_core.audit import anchor, keys
from erp_core.audit.chain import GENESIS_HASH, ChainEntry, ChainHead, entry_hash, first_break
from erp_core.audit.errors import RecordKeyError

K1 = keys.RecordKey("k1", bytes(range(32)))
K2 = keys.RecordKey("k2", bytes(range(1, 33)))
RING = keys.Keyring((K1, K2))
AT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def lines(*specs: tuple[int, str], key: keys.RecordKey = K2) -> list[str]:
    out: list[str] = []
    prev = ""
    for i, (seq, h) in enumerate(specs):
        line = anchor.make_line(
            key,
            kind=anchor.CHECKPOINT,
            seq=seq,
            hash_=h,
            at=AT + timedelta(minutes=i),
            prev_mac=prev,
        )
        prev = json.loads(line)["mac"]
        out.append(line)
    return out


def test_a_line_reads_back_as_written() -> None:
    (line,) = lines((7, "a" * 64))
    (found,), problems = anchor.read([line], RING)
    assert problems == []
    assert (found.kind, found.seq, found.hash, found.at, found.key_id) == (
        "checkpoint",
        7,
        "a" * 64,
        AT,
        "k2",
    )


@given(st.data())
def test_no_change_of_a_character_yields_another_valid_anchor(data: st.DataObject) -> None:
    (line,) = lines((7, "a" * 64))
    i = data.draw(st.integers(0, len(line) - 1))
    c = data.draw(st.characters(codec="utf-8").filter(lambda ch: ch != line[i]))
    mutated = line[:i] + c + line[i + 1 :]
    found, problems = anchor.read([mutated], RING)
    original = anchor.read([line], RING)[0][0]
    assert found in ([], [original])
    if not found:
        assert len(problems) == 1


def test_lines_must_follow_each_other() -> None:
    a, b, c = lines((1, "a" * 64), (2, "b" * 64), (3, "c" * 64))
    assert anchor.read([a, b, c], RING)[1] == []
    assert anchor.read([a, c], RING)[1] == [
        "anchor line 2 does not follow the line before it: anchor lines were removed or re-ordered"
    ]
    assert anchor.read([b, a, c], RING)[1][0].startswith("anchor line 1 does not follow")


def test_old_keys_verify_and_unknown_keys_are_named() -> None:
    (old,) = lines((1, "a" * 64), key=K1)
    assert anchor.read([old], RING)[1] == []
    assert anchor.read([old], keys.Keyring((K2,)))[1] == [
        "anchor line 1 is signed with key k1, which the key file does not hold"
    ]


def test_the_chain_must_reach_the_newest_anchor_and_keep_its_hashes() -> None:
    found, _ = anchor.read(lines((2, "b" * 64), (5, "e" * 64)), RING)
    ok = anchor.check(found, problems=[], hashes={2: "b" * 64, 5: "e" * 64}, chain_end=6)
    assert ok.problems == ()
    assert ok.newest == found[1]
    short = anchor.check(found, problems=[], hashes={2: "b" * 64}, chain_end=3)
    assert "entries 4..5 are missing" in short.problems[0]
    rewritten = anchor.check(found, problems=[], hashes={2: "x" * 64, 5: "e" * 64}, chain_end=6)
    assert "entry 2 no longer has the anchored hash" in rewritten.problems[0]


def test_a_restore_line_supersedes_the_anchors_above_what_still_matched() -> None:
    a, b = lines((2, "b" * 64), (5, "e" * 64))
    restore = anchor.make_line(
        K2,
        kind=anchor.RESTORE,
        seq=3,
        hash_="f" * 64,
        at=AT + timedelta(hours=1),
        prev_mac=json.loads(b)["mac"],
        matched=2,
        actor="cli:ops",
        reason="RITM-7",
    )
    found, problems = anchor.read([a, b, restore], RING)
    assert problems == []
    report = anchor.check(found, problems=[], hashes={2: "b" * 64, 3: "f" * 64}, chain_end=3)
    assert report.problems == ()
    assert report.superseded == (found[1],)
    assert report.newest == found[2]
    assert "entries after 2 were lost (RITM-7)" in report.notes[0]


def test_key_file_rotation_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "record.key"
    first = keys.new_key_file(path, key_id="2026a")
    assert path.stat().st_mode & 0o777 == 0o600
    second = keys.new_key_file(path, key_id="2026b")
    ring = keys.load(path)
    assert ring.keys == (first, second)
    assert ring.current == second
    with pytest.raises(RecordKeyError, match="already holds a key 2026a"):
        keys.new_key_file(path, key_id="2026a")
    for text, message in (
        ("k1 abcd\n", "line 1: the secret needs 32+ bytes"),
        ("# c\n\nk1 zz\n", "line 3: the secret is not hex digits"),
        (f"k1 {'00' * 32}\nk1 {'11' * 32}\n", "line 2: key id k1 appears twice"),
        ("k/1 00\n", "line 1: expected '<key id> <hex secret>'"),
        ("# nothing\n", "no key in the file"),
    ):
        with pytest.raises(RecordKeyError, match=re.escape(message)):
            keys.parse(text, source="f")
    with pytest.raises(RecordKeyError, match="No such file"):
        keys.load(tmp_path / "missing.key")


def test_anchor_and_signature_keys_are_derived_apart() -> None:
    derived = {K1.derived(keys.ANCHOR), K1.derived(keys.SIGNATURE), K2.derived(keys.ANCHOR)}
    assert len(derived) == 3
    assert K1.secret not in derived
    assert "secret" not in repr(K1).replace("<secret>", "")
    assert K1.secret.hex() not in repr(K1)


def _entries(n: int) -> list[ChainEntry]:
    out: list[ChainEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        draft = ChainEntry(
            seq, seq, AT, "erp.lots", "INSERT", f'{{"id": {seq}}}', None, "{}", "a", None, prev, ""
        )
        h = entry_hash(draft, prev_hash=prev)
        out.append(ChainEntry(*[*[getattr(draft, f) for f in draft.__slots__][:11], h]))
        prev = h
    return out


def test_a_walk_can_start_behind_an_anchored_entry() -> None:
    chain = _entries(6)
    head = ChainHead(6, chain[-1].hash)
    assert first_break(chain, head=head) is None
    after = ChainHead(3, chain[2].hash)
    assert first_break(chain[3:], head=head, after=after) is None
    wrong = ChainHead(3, "0" * 64)
    broken = first_break(chain[3:], head=head, after=wrong)
    assert broken is not None
    assert broken.seq == 4
    assert "previous-hash link" in broken.problem
