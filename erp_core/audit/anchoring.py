"""Write and check the audit chain's external anchors (the anchor file, see ``anchor``).

``checkpoint`` appends the current chain head — after checking that the entries since
the last anchor still chain onto it, so a rewritten chain is never anchored. It does
not start an anchor file by itself once the chain has entries (``start``), and refuses a
file that lost the line its caller wrote last (``expect``): otherwise deleting or
truncating the file and rewriting the chain was forgotten at the next periodic
checkpoint, which anchored the rewritten head (red team, issue 9).
``verify_anchored`` walks the whole chain and holds it against every anchor: what
``coldtrace audit verify`` and ``GET /api/audit/verify`` report. ``acknowledge_restore``
records, signed, that a restore from an older backup lost the entries after the last
one that still matches, so the chain can be anchored again from there.

The file is appended under an exclusive ``flock`` (the ERP jobs and the CLI may write
at the same time) and fsync'd; readers take a shared lock. The database connection
comes from the caller; nothing here writes to the database.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from erp_core.audit import anchor as anchors_
from erp_core.audit.anchor import Anchor, AnchorReport
from erp_core.audit.chain import ChainHead
from erp_core.audit.errors import AnchorError
from erp_core.audit.keys import Keyring
from erp_core.audit.service import Conn, VerifyResult, verify
from erp_core.audit.service import head as chain_head


@dataclass(frozen=True, slots=True)
class AnchoredResult:
    """The chain's own check and the anchors' (None when no anchor could be checked)."""

    chain: VerifyResult
    anchors: AnchorReport | None
    unanchored_reason: str | None = None

    @property
    def broken(self) -> bool:
        """The chain is broken or contradicts an anchor."""
        return not self.chain.ok or bool(self.anchors and self.anchors.problems)

    @property
    def status(self) -> str:
        """``intact`` (chain and anchors hold), ``broken``, or ``unanchored``."""
        if self.broken:
            return "broken"
        if self.anchors is None or self.anchors.newest is None:
            return "unanchored"
        return "intact"


@contextmanager
def _locked(path: Path, *, write: bool) -> Iterator[IO[str]]:
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if write else os.O_RDONLY
    created = write and not path.exists()
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as err:
        raise AnchorError(f"anchor file {path}: {err.strerror or err}") from err
    with os.fdopen(fd, "a+" if write else "r", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        if created:  # the new file's name must survive a crash too
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        f.seek(0)
        yield f


@dataclass(frozen=True, slots=True)
class _Contents:
    anchors: list[Anchor]
    problems: list[str]
    lines: int

    @property
    def last_mac(self) -> str:
        """The MAC a new line must name as its predecessor (writers refuse on problems)."""
        return self.anchors[-1].mac if self.anchors else ""


def _read(f: IO[str], keyring: Keyring) -> _Contents:
    lines = f.read().splitlines()
    found, problems = anchors_.read(lines, keyring)
    return _Contents(found, problems, len(lines))


def _append(f: IO[str], line: str, keyring: Keyring, contents: _Contents) -> Anchor:
    f.write(line + "\n")
    f.flush()
    os.fsync(f.fileno())
    return anchors_.parse_line(line, keyring, number=contents.lines + 1)[0]


def read_anchors(path: Path, keyring: Keyring) -> tuple[list[Anchor], list[str]]:
    """The verified anchors of ``path`` and the problems with its lines."""
    if not path.exists():
        return [], []
    with _locked(path, write=False) as f:
        contents = _read(f, keyring)
    return contents.anchors, contents.problems


def verify_anchored(
    conn: Conn, *, keyring: Keyring | None, anchor_file: Path | None
) -> AnchoredResult:
    """Verify the whole chain and hold it against every anchor of ``anchor_file``."""
    if keyring is None or anchor_file is None:
        unset = "no record key or anchor file configured (COLDTRACE_RECORD_*)"
        return AnchoredResult(verify(conn), None, unset)
    if not anchor_file.exists():
        return AnchoredResult(verify(conn), None, f"the anchor file {anchor_file} does not exist")
    found, problems = read_anchors(anchor_file, keyring)
    result = verify(conn, want={a.seq for a in found})
    chain_end = result.head.seq if result.ok else max(result.hashes, default=0)
    report = anchors_.check(found, problems=problems, hashes=result.hashes, chain_end=chain_end)
    empty = None if report.newest else f"the anchor file {anchor_file} holds no anchor yet"
    return AnchoredResult(result, report, empty)


def checkpoint(  # noqa: PLR0913 - what to anchor, where, and the two safeguards
    conn: Conn,
    *,
    keyring: Keyring,
    anchor_file: Path,
    now: datetime,
    start: bool = False,
    expect: str | None = None,
) -> Anchor | None:
    """Anchor the chain head now; None when it has not moved since the last anchor.

    Raises AnchorError, writing nothing, when the file has a bad line or the chain does
    not continue the last anchor (rewritten, or shorter after a restore); when the file
    holds no anchor but the chain has entries, unless ``start`` (a person starts
    anchoring an existing trail); and when ``expect`` (the MAC of the line the caller
    wrote last) is no longer in the file.
    """
    with _locked(anchor_file, write=True) as f:
        contents = _read(f, keyring)
        if contents.problems:
            msg = f"refusing to extend a damaged anchor file: {contents.problems[0]}"
            raise AnchorError(msg)
        found = contents.anchors
        if expect is not None and all(a.mac != expect for a in found):
            msg = (
                f"the anchor file {anchor_file} no longer holds the checkpoint written last "
                "by this process: lines were removed or the file was replaced. Treat it as a "
                "deviation and investigate before anchoring again (docs/backup-restore.md)"
            )
            raise AnchorError(msg)
        if not found and not start:
            head = chain_head(conn)
            if head is None or head.seq > 0:
                entries = "entries" if head is None else f"{head.seq} entries"
                msg = (
                    f"the anchor file {anchor_file} holds no anchor, but the audit chain "
                    f"already has {entries}: the file was lost or replaced (a deviation: "
                    "docs/backup-restore.md), or anchoring starts only now — then a person "
                    "runs `coldtrace audit checkpoint --start`"
                )
                raise AnchorError(msg)
        lost = anchors_.superseded(found)
        live = [a for a in found if a not in lost]
        last = max(live, key=lambda a: (a.seq, a.line)) if live else None
        after = None if last is None else ChainHead(last.seq, last.hash)
        result = verify(conn, after=after)
        if result.broken is not None:
            b = result.broken
            msg = f"refusing to anchor: the chain is broken at seq {b.seq}: {b.problem}"
            raise AnchorError(msg)
        if after is not None and result.head == after:
            return None
        key = keyring.current
        line = anchors_.make_line(
            key,
            kind=anchors_.CHECKPOINT,
            seq=result.head.seq,
            hash_=result.head.hash,
            at=now,
            prev_mac=contents.last_mac,
        )
        return _append(f, line, keyring, contents)


def acknowledge_restore(  # noqa: PLR0913 - who, why and when are explicit
    conn: Conn,
    *,
    keyring: Keyring,
    anchor_file: Path,
    now: datetime,
    actor: str,
    reason: str,
) -> Anchor:
    """Record that entries after the last still-matching anchor were lost in a restore.

    The chain itself must be intact; the new line anchors its current head. Raises
    AnchorError when the anchors already hold (nothing was lost) or the file is damaged.
    """
    if not reason.strip():
        raise AnchorError("say why entries were lost (the restore, its ticket)")
    with _locked(anchor_file, write=True) as f:
        contents = _read(f, keyring)
        if contents.problems:
            msg = f"refusing to extend a damaged anchor file: {contents.problems[0]}"
            raise AnchorError(msg)
        found = contents.anchors
        result = verify(conn, want={a.seq for a in found})
        if result.broken is not None:
            b = result.broken
            raise AnchorError(f"the chain itself is broken at seq {b.seq}: {b.problem}")
        report = anchors_.check(found, problems=[], hashes=result.hashes, chain_end=result.head.seq)
        if not report.problems:
            raise AnchorError("every anchor matches the chain: nothing was lost")
        live = [a for a in found if a not in report.superseded]
        matching = [
            a.seq for a in live if a.seq <= result.head.seq and result.hashes.get(a.seq) == a.hash
        ]
        line = anchors_.make_line(
            keyring.current,
            kind=anchors_.RESTORE,
            seq=result.head.seq,
            hash_=result.head.hash,
            at=now,
            prev_mac=contents.last_mac,
            matched=max(matching, default=0),
            actor=actor,
            reason=reason,
        )
        return _append(f, line, keyring, contents)
