"""Keyboard-wedge input: read what a USB HID scanner in keyboard mode types into a terminal.

Many handheld scanners ship as a USB keyboard: each scan is typed, then Enter. On a
gateway that is a kiosk console (``/dev/tty2``) or the gateway's own standard input.
`KeyboardInput` opens such a terminal for `gateway.sources.barcode.BarcodeSource`,
with the same ``read(n)``/``close()`` shape as a pyserial port, so the scan handling
is the one serial scanners use. A terminal is switched to non-canonical input with
echo, signals (a scanned Ctrl-C must not stop the gateway), flow control and CR→LF
translation off, so bytes arrive as typed: Enter as CR, GS (0x1D, FNC1 as
keyboard scanners send it, Ctrl-]) intact. Output settings are left alone (log lines
on the same terminal stay readable), and the previous settings are restored on
close. A pipe (``scanner-bridge | coldtrace gateway run``) is read as is.
"""

from __future__ import annotations

import os
import select
import termios
from typing import Any

STDIN = "-"
POLL_S = 0.5  # read() returns b"" after this long without input, like a serial timeout

# termios attribute list indexes
_IFLAG, _LFLAG, _CC = 0, 3, 6


class KeyboardInput:
    """A terminal (or stdin) that a keyboard-mode scanner types into, read byte-wise."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path == STDIN:
            self._fd, self._owned = 0, False
        else:
            self._fd, self._owned = os.open(path, os.O_RDONLY | os.O_NOCTTY), True
        self._saved: list[Any] | None = None
        try:
            if os.isatty(self._fd):
                self._saved = termios.tcgetattr(self._fd)
                termios.tcsetattr(self._fd, termios.TCSANOW, scanner_mode(self._saved))
        except (OSError, termios.error):
            self.close()
            raise

    def read(self, size: int) -> bytes:
        """Return up to ``size`` bytes typed so far, b"" after `POLL_S` of silence.

        Raise `EOFError` at the end of a pipe or when the terminal hangs up.
        """
        ready, _, _ = select.select([self._fd], [], [], POLL_S)
        if not ready:
            return b""
        data = os.read(self._fd, size)
        if not data:
            raise EOFError(f"{self.path}: end of input")
        return data

    def close(self) -> None:
        """Restore the terminal's settings and close it (stdin stays open)."""
        try:
            if self._saved is not None:
                termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)
                self._saved = None
        finally:
            if self._owned and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def scanner_mode(attrs: list[Any]) -> list[Any]:
    """Termios attributes for scanner input: no line editing, echo, signals or CR→LF."""
    new = list(attrs)
    iflag, lflag = int(attrs[_IFLAG]), int(attrs[_LFLAG])
    new[_IFLAG] = iflag & ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
    new[_LFLAG] = lflag & ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
    cc = list(attrs[_CC])
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    new[_CC] = cc
    return new
