"""A simulated fixed RFID reader speaking LLRP 1.0.1, for the gateway's LLRP source.

Written from the LLRP specification's binary layout, not from a client library: a
message is a 10-byte header (3 reserved bits, 3-bit version, 10-bit type, 32-bit
length including the header, 32-bit message id) and a body of fields and parameters;
a parameter is TLV (16-bit type with 6 reserved bits, 16-bit length including the
header) or, for the small ones inside tag reports, TV (1 bit set, 7-bit type, fixed-
size value). It speaks just enough for a client such as sllurp: on connect a
READER_EVENT_NOTIFICATION (ConnectionAttemptEvent: Success); an answer with
LLRPStatus Success to capability, configuration, ROSpec and AccessSpec requests;
KEEPALIVE at the interval the client's KeepaliveSpec asks for; ERROR_MESSAGE for
anything else. While an enabled ROSpec with an Immediate start trigger (or one
started with START_ROSPEC) is active, every tag in the field of one of its antennas
is reported each ``read_interval_s`` in an RO_ACCESS_REPORT, one TagReportData each
with EPC-96, AntennaID, PeakRSSI and FirstSeenTimestampUTC, whatever the ROSpec's
report selector says. Like `firmware_sim.rfid.SimulatedReader`, tags are moved in and
out of the field with `place` and `remove`.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from firmware_sim.errors import BindError

VERSION = 1  # LLRP 1.0.1; sllurp speaks it
HEADER = struct.Struct("!HII")

# message types (LLRP 1.0.1 section 16.1)
GET_READER_CAPABILITIES, GET_READER_CAPABILITIES_RESPONSE = 1, 11
GET_READER_CONFIG, GET_READER_CONFIG_RESPONSE = 2, 12
SET_READER_CONFIG, SET_READER_CONFIG_RESPONSE = 3, 13
CLOSE_CONNECTION, CLOSE_CONNECTION_RESPONSE = 14, 4
ADD_ROSPEC, DELETE_ROSPEC, START_ROSPEC, STOP_ROSPEC = 20, 21, 22, 23
ENABLE_ROSPEC, DISABLE_ROSPEC = 24, 25
RO_ACCESS_REPORT, KEEPALIVE, READER_EVENT_NOTIFICATION = 61, 62, 63
ENABLE_EVENTS_AND_REPORTS, KEEPALIVE_ACK, ERROR_MESSAGE = 64, 72, 100
# requests answered with an empty success: request type -> response type
_PLAIN_ANSWERS = {
    GET_READER_CONFIG: GET_READER_CONFIG_RESPONSE,
    SET_READER_CONFIG: SET_READER_CONFIG_RESPONSE,
    **{req: req + 10 for req in range(20, 26)},  # ROSpec requests: responses are type + 10
    **{req: req + 10 for req in range(40, 44)},  # AccessSpec requests likewise
}

# parameter types
P_UTC_TIMESTAMP, P_GENERAL_DEVICE_CAPS, P_RECEIVE_SENSITIVITY = 128, 137, 139
P_PER_ANTENNA_AIR_PROTOCOL, P_GPIO_CAPS, P_REGULATORY_CAPS = 140, 141, 143
P_UHF_BAND_CAPS, P_TX_POWER_ENTRY, P_FREQUENCY_INFO, P_FIXED_FREQ_TABLE = 144, 145, 146, 148
P_ROSPEC, P_RO_BOUNDARY_SPEC, P_ROSPEC_START_TRIGGER, P_AISPEC = 177, 178, 179, 183
P_KEEPALIVE_SPEC, P_TAG_REPORT_DATA, P_READER_EVENT_DATA = 220, 240, 246
P_CONNECTION_ATTEMPT_EVENT, P_LLRP_STATUS = 256, 287
P_RF_MODE_TABLE, P_RF_MODE_ENTRY = 328, 329
TV_ANTENNA_ID, TV_FIRST_SEEN_UTC, TV_PEAK_RSSI, TV_EPC96 = 1, 2, 6, 13
START_IMMEDIATE = 1
STATUS_SUCCESS, STATUS_UNSUPPORTED_MESSAGE = 0, 109


def message(msg_type: int, msg_id: int, body: bytes = b"") -> bytes:
    """One LLRP message: header (version, type, length, id) and body."""
    return HEADER.pack((VERSION << 10) | msg_type, HEADER.size + len(body), msg_id) + body


def tlv(param_type: int, body: bytes = b"") -> bytes:
    """One TLV parameter."""
    return struct.pack("!HH", param_type, 4 + len(body)) + body


def tv(param_type: int, value: bytes) -> bytes:
    """One TV parameter (type in the low 7 bits of the first byte, top bit set)."""
    return bytes([0x80 | param_type]) + value


def utf8v(text: str) -> bytes:
    """An LLRP utf8v field: 16-bit byte count, then the bytes."""
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def llrp_status(code: int = STATUS_SUCCESS, description: str = "") -> bytes:
    """The LLRPStatus parameter every response carries."""
    return tlv(P_LLRP_STATUS, struct.pack("!H", code) + utf8v(description))


def params(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Walk a sequence of TLV parameters, yielding (type, body); stops at a TV one."""
    pos = 0
    while pos + 4 <= len(data) and not data[pos] & 0x80:
        param_type, length = struct.unpack_from("!HH", data, pos)
        if length < 4:
            return
        yield param_type & 0x3FF, data[pos + 4 : pos + length]
        pos += length


def connection_event(t_us: int) -> bytes:
    """READER_EVENT_NOTIFICATION body: the connection attempt succeeded."""
    event = tlv(P_UTC_TIMESTAMP, struct.pack("!Q", t_us))
    event += tlv(P_CONNECTION_ATTEMPT_EVENT, struct.pack("!H", 0))
    return tlv(P_READER_EVENT_DATA, event)


def capabilities(antennas: int) -> bytes:
    """GET_READER_CAPABILITIES_RESPONSE body: status, device, regulatory capabilities."""
    device = struct.pack("!HHII", antennas, 1 << 14, 0, 1) + utf8v("coldtrace-sim 1.0")
    device += tlv(P_RECEIVE_SENSITIVITY, struct.pack("!HH", 1, 0))
    for antenna in range(1, antennas + 1):  # EPCglobal C1G2 (protocol id 1) on every port
        device += tlv(P_PER_ANTENNA_AIR_PROTOCOL, struct.pack("!HHB", antenna, 1, 1))
    device += tlv(P_GPIO_CAPS, struct.pack("!HH", 0, 0))
    powers = b"".join(
        tlv(P_TX_POWER_ENTRY, struct.pack("!Hh", i, dbm * 100))
        for i, dbm in enumerate((10, 20, 30), start=1)
    )
    frequencies = tlv(P_FIXED_FREQ_TABLE, struct.pack("!HI", 1, 866_900))  # kHz
    mode = struct.pack("!IBBBBIIIII", 1, 0, 2, 0, 4, 250_000, 1500, 25_000, 25_000, 0)
    band = powers + tlv(P_FREQUENCY_INFO, b"\x00" + frequencies)
    band += tlv(P_RF_MODE_TABLE, tlv(P_RF_MODE_ENTRY, mode))
    regulatory = tlv(P_REGULATORY_CAPS, struct.pack("!HH", 276, 2) + tlv(P_UHF_BAND_CAPS, band))
    return llrp_status() + tlv(P_GENERAL_DEVICE_CAPS, device) + regulatory


def tag_report_data(epc_hex: str, antenna: int, rssi: int, first_seen_us: int) -> bytes:
    """One TagReportData parameter: EPC-96, AntennaID, PeakRSSI, FirstSeenTimestampUTC."""
    body = tv(TV_EPC96, bytes.fromhex(epc_hex))
    body += tv(TV_ANTENNA_ID, struct.pack("!H", antenna))
    body += tv(TV_PEAK_RSSI, struct.pack("!b", rssi))
    body += tv(TV_FIRST_SEEN_UTC, struct.pack("!Q", first_seen_us))
    return tlv(P_TAG_REPORT_DATA, body)


@dataclass
class ROSpec:
    """What the simulator keeps of a client's ROSpec: id, antennas, start trigger, state."""

    rospec_id: int
    antennas: set[int] = field(default_factory=set)  # 0 = all
    immediate: bool = False
    enabled: bool = False
    active: bool = False

    @classmethod
    def parse(cls, body: bytes) -> ROSpec:
        """Read the ROSpec parameter of an ADD_ROSPEC body."""
        spec = next((b for t, b in params(body) if t == P_ROSPEC), b"")
        if len(spec) < 6:
            raise ValueError("ADD_ROSPEC without a ROSpec")
        rospec = cls(struct.unpack_from("!I", spec)[0])
        for param_type, inner in params(spec[6:]):
            if param_type == P_RO_BOUNDARY_SPEC:
                for trigger_type, trigger in params(inner):
                    if trigger_type == P_ROSPEC_START_TRIGGER and trigger:
                        rospec.immediate = trigger[0] == START_IMMEDIATE
            elif param_type == P_AISPEC and len(inner) >= 2:
                (count,) = struct.unpack_from("!H", inner)
                rospec.antennas.update(struct.unpack_from(f"!{count}H", inner, 2))
        return rospec

    def covers(self, antenna: int) -> bool:
        """Whether this ROSpec inventories ``antenna``."""
        return 0 in self.antennas or antenna in self.antennas


class SimulatedLlrpReader:
    """An LLRP reader with antennas; `place` and `remove` move tags in and out of the field."""

    def __init__(  # noqa: PLR0913 - keyword-only settings of a simulated device
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        antennas: int = 4,
        read_interval_s: float = 0.1,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.antennas = antennas
        self.read_interval_s = read_interval_s
        self.clock = clock
        self.rng = rng or random.Random(0)  # noqa: S311 - simulated noise
        self.field: dict[tuple[str, int], int] = {}  # (epc, antenna) -> mean rssi
        self.rospecs: dict[int, ROSpec] = {}
        self.sent = 0  # tag reports sent
        self.received: list[int] = []  # message types received, in order
        self.sessions = 0  # connections accepted
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._next_id = 0

    async def start(self) -> int:
        """Start listening; return the port."""
        try:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        except OSError as err:
            raise BindError("llrp-reader", self.host, self.port) from err
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def place(self, epc: str, antenna: int, *, rssi: int = -55) -> None:
        """Put a tag (EPC-96 as 24 hex digits) in the field of ``antenna``."""
        if len(bytes.fromhex(epc)) != 12:
            raise ValueError("the simulator reports EPC-96 only (24 hex digits)")
        self.field[(epc.upper(), antenna)] = rssi

    def remove(self, epc: str, antenna: int) -> None:
        """Take a tag out of the field of ``antenna``."""
        self.field.pop((epc.upper(), antenna), None)

    def inventorying(self) -> bool:
        """Whether some ROSpec is active (tags in the field are being reported)."""
        return any(r.active for r in self.rospecs.values())

    def report(self) -> tuple[bytes, int]:
        """One RO_ACCESS_REPORT of the tags the active ROSpecs see (b"" if none), and its size."""
        t_us = int(self.clock() * 1_000_000)
        active = [r for r in self.rospecs.values() if r.active]
        reports = [
            tag_report_data(epc, antenna, max(-128, min(127, rssi + self.rng.randint(-3, 3))), t_us)
            for (epc, antenna), rssi in list(self.field.items())
            if any(r.covers(antenna) for r in active)
        ]
        if not reports:
            return b"", 0
        return message(RO_ACCESS_REPORT, self._msg_id(), b"".join(reports)), len(reports)

    def _msg_id(self) -> int:
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        return self._next_id

    def answer(self, msg_type: int, msg_id: int, body: bytes) -> tuple[bytes, float | None]:
        """The reply to one client message (b"" for none), and a keepalive interval if set."""
        self.received.append(msg_type)
        keepalive: float | None = None
        if msg_type == GET_READER_CAPABILITIES:
            return message(
                GET_READER_CAPABILITIES_RESPONSE, msg_id, capabilities(self.antennas)
            ), None
        if msg_type == CLOSE_CONNECTION:
            return message(CLOSE_CONNECTION_RESPONSE, msg_id, llrp_status()), None
        if msg_type in (ENABLE_EVENTS_AND_REPORTS, KEEPALIVE_ACK):
            return b"", None
        if msg_type not in _PLAIN_ANSWERS:
            status = llrp_status(STATUS_UNSUPPORTED_MESSAGE, f"message type {msg_type}")
            return message(ERROR_MESSAGE, msg_id, status), None
        if msg_type == SET_READER_CONFIG:
            for param_type, inner in params(body[1:]):
                if param_type == P_KEEPALIVE_SPEC and len(inner) >= 5:
                    trigger, interval_ms = struct.unpack_from("!BI", inner)
                    keepalive = interval_ms / 1000 if trigger == 1 and interval_ms else 0.0
        elif msg_type == ADD_ROSPEC:
            rospec = ROSpec.parse(body)
            self.rospecs[rospec.rospec_id] = rospec
        elif msg_type in (DELETE_ROSPEC, START_ROSPEC, STOP_ROSPEC, ENABLE_ROSPEC, DISABLE_ROSPEC):
            self._rospec_state(msg_type, struct.unpack_from("!I", body)[0])
        return message(_PLAIN_ANSWERS[msg_type], msg_id, llrp_status()), keepalive

    def _rospec_state(self, msg_type: int, rospec_id: int) -> None:
        chosen = [r for i, r in self.rospecs.items() if rospec_id in (0, i)]
        for rospec in chosen:
            if msg_type == DELETE_ROSPEC:
                del self.rospecs[rospec.rospec_id]
            elif msg_type == ENABLE_ROSPEC:
                rospec.enabled, rospec.active = True, rospec.immediate
            elif msg_type == DISABLE_ROSPEC:
                rospec.enabled = rospec.active = False
            else:
                rospec.active = msg_type == START_ROSPEC and rospec.enabled

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        keepalive: asyncio.Task[None] | None = None
        reporter = asyncio.create_task(self._report(writer))
        try:
            t_us = int(self.clock() * 1_000_000)
            writer.write(message(READER_EVENT_NOTIFICATION, self._msg_id(), connection_event(t_us)))
            while True:
                header = await reader.readexactly(HEADER.size)
                type_field, length, msg_id = HEADER.unpack(header)
                body = await reader.readexactly(max(0, length - HEADER.size))
                reply, interval = self.answer(type_field & 0x3FF, msg_id, body)
                writer.write(reply)
                await writer.drain()
                if interval is not None:
                    if keepalive is not None:
                        keepalive.cancel()
                    keepalive = asyncio.create_task(self._keepalive(writer, interval))
                if type_field & 0x3FF == CLOSE_CONNECTION:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError, struct.error):
            pass  # the client went away or sent garbage: drop the connection, like a reader
        finally:
            for helper in (reporter, keepalive):
                if helper is not None:
                    helper.cancel()
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def _report(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.read_interval_s)
            data, count = self.report()
            if count:
                writer.write(data)
                await writer.drain()
                self.sent += count

    async def _keepalive(self, writer: asyncio.StreamWriter, interval_s: float) -> None:
        while interval_s > 0:
            await asyncio.sleep(interval_s)
            writer.write(message(KEEPALIVE, self._msg_id()))
            await writer.drain()

    async def close(self) -> None:
        """Drop every connection and stop listening (the reader is switched off)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()  # the session's read ends with EOF and it cleans up
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()
        self.rospecs.clear()
