"""A simulated barcode scanner, and the labels it finds on goods at receiving.

The scanner is a `LineServer`: the gateway opens it as ``socket://127.0.0.1:<port>``
through pyserial, exactly as it opens a serial-over-network scanner, and each `scan`
arrives as one CR LF terminated line (the scanner default), with the AIM symbology
identifier prefix and GS for FNC1 as scanners send them when so configured.
`goods_in_labels` makes a realistic mix: GS1 DataMatrix and GS1-128, HIBC, MA codes,
and damaged labels (a wrong check digit, an impossible date) that must be recorded
as failed scans.
"""

from __future__ import annotations

import datetime as dt
import random

from firmware_sim.lines import LineServer
from identifiers.gs1 import GS, encode_gs1
from identifiers.gtin import with_check_digit
from identifiers.hibc import encode_concatenated, encode_primary
from identifiers.nmpa_udi import encode_ma


class SimulatedScanner:
    """A scanner that sends each scanned label as one line."""

    def __init__(self, name: str = "scanner", *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = LineServer(name, host=host, port=port)

    async def start(self) -> str:
        """Start serving; return the pyserial URL to open it with."""
        port = await self.server.start()
        return f"socket://{self.server.host}:{port}"

    async def scan(self, text: str) -> None:
        """Send one scan, terminated as the scanner does (CR LF)."""
        await self.server.send(text.encode("latin-1") + b"\r\n")

    async def close(self) -> None:
        """Stop the scanner."""
        await self.server.close()


def goods_in_labels(rng: random.Random, n: int, *, today: dt.date) -> list[str]:
    """Return ``n`` label scans; about one in eight is damaged (bad check or date)."""
    out: list[str] = []
    for i in range(n):
        expiry = today + dt.timedelta(days=rng.randint(30, 900))
        lot = f"L{rng.randint(1000, 9999)}"
        kind = i % 4
        if kind == 0:
            gtin = with_check_digit(f"0{rng.randint(10**11, 10**12 - 1)}")
            text = encode_gs1(gtin=gtin, lot=lot, expiry=f"{expiry:%y%m%d}", serial=str(i))
        elif kind == 1:
            gtin = with_check_digit("0761234500001")
            text = "]C1" + f"01{gtin}17{expiry:%y%m%d}10{lot}" + GS + f"21S{i}"
        elif kind == 2:
            text = (
                encode_concatenated("H123", f"CAT{i}", 1, expiry=expiry, lot=lot)
                if i % 8 == 2
                else encode_primary("H123", f"CAT{i}", 1)
            )
        else:
            text = encode_ma("MA.156.M0.100761.21234561", lot=lot, expiry=expiry, serial=f"{i:06d}")
        if rng.random() < 0.125:
            text = _damage(text)
        out.append(text)
    return out


def _damage(text: str) -> str:
    """Make a label fail its check: change the last character (check digit/char)."""
    last = text[-1]
    return text[:-1] + ("1" if last != "1" else "2")
