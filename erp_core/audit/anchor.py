"""Checkpoints of the audit chain kept outside the database, signed with the record key; pure.

The hash chain alone shows an edit only to someone who did not also re-hash every later
entry and move ``erp.audit_head`` — which a database superuser (or the owner of the
table) can do with the database's own ``erp.audit_hash``. An anchor is one line of an
append-only file: ``{"kind": "checkpoint", "seq": N, "hash": H, "at": T, "key": K,
"prev": P, "mac": M}``, where M is an HMAC with the record key (which the database does
not hold) over the other fields and P is the MAC of the line before, so lines cannot be
forged, edited, dropped from the middle or re-ordered without the MAC check failing.

``check`` compares the anchors with the chain: the entry at every anchored ``seq`` must
still carry the anchored hash (a rewrite anywhere at or before it changes that hash),
and the chain must reach the newest anchor (a restore from an older backup, or entries
deleted at the end, fall short of it). What was appended after the newest anchor is
protected by the chain only — the window between checkpoints.

A ``restore`` line records that entries after ``matched`` were knowingly lost (a restore
from an older backup): anchors of higher sequence numbers written before it are then
superseded, and the line itself anchors the restored chain's head.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from erp_core.audit.keys import ANCHOR, Keyring, RecordKey

CHECKPOINT = "checkpoint"
RESTORE = "restore"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Anchor:
    """One anchor line, its MAC verified."""

    line: int
    kind: str
    seq: int
    hash: str
    at: datetime
    key_id: str
    mac: str
    matched: int | None = None  # restore: the last seq that still matched its anchors
    actor: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AnchorReport:
    """What the anchors say about the chain: problems (empty = consistent) and notes."""

    anchors: tuple[Anchor, ...]
    problems: tuple[str, ...]
    superseded: tuple[Anchor, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def newest(self) -> Anchor | None:
        """The newest anchor still in force."""
        live = [a for a in self.anchors if a not in self.superseded]
        return max(live, key=lambda a: (a.seq, a.line)) if live else None


def _canonical(fields: Mapping[str, object]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc_text(at: datetime) -> str:
    """``at`` in UTC as the anchor file writes it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_line(  # noqa: PLR0913 - the fields of one anchor are explicit
    key: RecordKey,
    *,
    kind: str,
    seq: int,
    hash_: str,
    at: datetime,
    prev_mac: str,
    matched: int | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> str:
    """One signed anchor line (no newline) following the line whose MAC is ``prev_mac``."""
    fields: dict[str, object] = {
        "v": VERSION,
        "kind": kind,
        "seq": seq,
        "hash": hash_,
        "at": utc_text(at),
        "key": key.key_id,
        "prev": prev_mac,
    }
    if kind == RESTORE:
        fields |= {"matched": matched, "actor": actor, "reason": reason}
    return _canonical(fields | {"mac": key.mac(ANCHOR, _canonical(fields))})


def _anchor(number: int, fields: dict[str, object], mac: str) -> Anchor:
    def integer(name: str) -> int:
        value = fields.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} is not a sequence number")
        return value

    def text(name: str) -> str:
        value = fields.get(name)
        if not isinstance(value, str):
            raise TypeError(f"{name} is missing")
        return value

    kind = text("kind")
    if kind not in (CHECKPOINT, RESTORE) or fields.get("v") != VERSION:
        raise ValueError(f"unknown kind {kind!r} or version")
    restore = kind == RESTORE
    return Anchor(
        line=number,
        kind=kind,
        seq=integer("seq"),
        hash=text("hash"),
        at=datetime.strptime(text("at"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
        key_id=text("key"),
        mac=mac,
        matched=integer("matched") if restore else None,
        actor=text("actor") if restore else None,
        reason=text("reason") if restore else None,
    )


def _object(raw: str) -> dict[str, object]:
    fields = json.loads(raw)
    if not isinstance(fields, dict):
        raise TypeError("not a JSON object")
    return fields


def parse_line(raw: str, keyring: Keyring, *, number: int = 1) -> tuple[Anchor, str]:
    """One line's anchor and the MAC it says precedes it; ValueError if it does not verify."""
    try:
        fields = _object(raw)
        mac = str(fields.pop("mac", ""))
        stated_prev = str(fields.get("prev"))
        anchor = _anchor(number, fields, mac)
    except (ValueError, TypeError) as err:
        raise ValueError(f"anchor line {number} is not an anchor record ({err})") from err
    key = keyring.get(anchor.key_id)
    if key is None:
        raise ValueError(
            f"anchor line {number} is signed with key {anchor.key_id}, "
            "which the key file does not hold"
        )
    # As bytes: compare_digest refuses str with non-ASCII characters (an edited line may have).
    if not hmac.compare_digest(key.mac(ANCHOR, _canonical(fields)).encode(), mac.encode()):
        raise ValueError(f"anchor line {number} is forged or edited: its MAC does not match")
    return anchor, stated_prev


def read(lines: Iterable[str], keyring: Keyring) -> tuple[list[Anchor], list[str]]:
    """The anchors of a file's lines and the problems found (bad MAC, broken order)."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    prev_mac = ""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            anchor, stated_prev = parse_line(raw, keyring, number=number)
        except ValueError as err:
            problems.append(str(err))
            prev_mac = _stated_mac(raw)
            continue
        if stated_prev != prev_mac:
            problems.append(
                f"anchor line {number} does not follow the line before it: "
                "anchor lines were removed or re-ordered"
            )
        else:
            anchors.append(anchor)
        prev_mac = anchor.mac
    return anchors, problems


def _stated_mac(raw: str) -> str:
    try:
        fields = json.loads(raw)
    except ValueError:
        return ""
    return str(fields.get("mac", "")) if isinstance(fields, dict) else ""


def superseded(anchors: list[Anchor]) -> list[Anchor]:
    """Anchors written before a restore line and above the seq it matched: knowingly lost."""
    out = []
    for i, anchor in enumerate(anchors):
        later = [r for r in anchors[i + 1 :] if r.kind == RESTORE and r.matched is not None]
        if any(anchor.seq > r.matched for r in later if r.matched is not None):
            out.append(anchor)
    return out


def check(
    anchors: list[Anchor], *, problems: list[str], hashes: Mapping[int, str], chain_end: int
) -> AnchorReport:
    """Compare the anchors with the chain: ``hashes`` of the anchored entries, its last seq."""
    found = list(problems)
    lost = superseded(anchors)
    notes = [
        f"restore on {utc_text(r.at)} by {r.actor}: entries after {r.matched} were lost"
        f" ({r.reason}); {sum(1 for a in lost if a.line < r.line)} earlier anchors superseded"
        for r in anchors
        if r.kind == RESTORE
    ]
    for anchor in anchors:
        if anchor in lost:
            continue
        where = f"anchor line {anchor.line} ({utc_text(anchor.at)})"
        if anchor.seq > chain_end:
            found.append(
                f"{where} records entry {anchor.seq}, but the chain ends at entry {chain_end}: "
                f"entries {chain_end + 1}..{anchor.seq} are missing (deleted, or a restore "
                "from an older backup)"
            )
        elif anchor.seq > 0 and hashes.get(anchor.seq) != anchor.hash:
            found.append(
                f"{where}: entry {anchor.seq} no longer has the anchored hash: the chain was "
                f"rewritten at or before entry {anchor.seq}"
            )
    return AnchorReport(tuple(anchors), tuple(found), tuple(lost), tuple(notes))
