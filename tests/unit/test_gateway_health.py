"""Gateway health rules, with exact times: gaps, overdue sensors, battery, clock skew."""

from __future__ import annotations

from pathlib import Path

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import GatewayConfig
from gateway.health import (
    HealthMonitor,
    HealthState,
    estimate_skew,
    expected_intervals,
    is_gap,
    missed_intervals,
)
from gateway.outbox import Outbox
from gateway.publisher import CONFIRM_AFTER_S, Publisher
from telemetry.codec import decode_state, encode
from telemetry.payloads import VERSION, Ack, Reading, SourceState, Status

T0 = 1_767_225_600_000


def temp(sensor: str, t: int, value: float = 4.0) -> Reading:
    return Reading(t=t, sensor=sensor, qty="temperature", value=value, unit="Cel")


def test_missed_intervals_by_hand() -> None:
    assert missed_intervals(0, 10_000, 10_000) == 0  # on time
    assert missed_intervals(0, 19_999, 10_000) == 0  # late, but nothing missed yet
    assert missed_intervals(0, 20_000, 10_000) == 1
    assert missed_intervals(0, 65_000, 10_000) == 5
    assert missed_intervals(5, 5, 10_000) == 0
    assert missed_intervals(0, 100, 0) == 0  # no expected interval, no gap


@given(
    prev=st.integers(0, 10**13),
    delta=st.integers(-(10**9), 10**9),
    interval=st.integers(1, 10**7),
    n=st.floats(1.0, 10.0),
)
def test_gap_iff_silence_longer_than_n_intervals(
    prev: int, delta: int, interval: int, n: float
) -> None:
    assert is_gap(prev, prev + delta, interval, gap_intervals=n) == (delta > n * interval)
    # with the threshold at 2 intervals or more, a gap means a whole reading was missed
    if n >= 2 and is_gap(prev, prev + delta, interval, gap_intervals=n):
        assert missed_intervals(prev, prev + delta, interval) >= 1


def test_closed_gap_is_recorded_with_device_times() -> None:
    mon = HealthMonitor({"A": 10_000, "B": 10_000}, gap_intervals=3)
    mon.observe([temp("A", T0), temp("B", T0)], T0)
    mon.observe([temp("A", T0 + 10_000), temp("B", T0 + 10_000)], T0 + 10_000)
    # A goes silent from T0+10 s and comes back at T0+60 s: 4 readings missed
    mon.observe([temp("B", T0 + 20_000)], T0 + 20_000)
    mon.observe([temp("A", T0 + 60_000), temp("B", T0 + 60_000)], T0 + 60_000)
    gaps = mon.gaps(T0 + 60_000)
    # B was silent from T0+20 s to T0+60 s: 40 s > 3 intervals, 3 readings missed
    assert [(g.sensor, g.start, g.end, g.missed) for g in gaps] == [
        ("A", T0 + 10_000, T0 + 60_000, 4),
        ("B", T0 + 20_000, T0 + 60_000, 3),
    ]
    mon2 = HealthMonitor({"B": 10_000}, gap_intervals=3)
    mon2.observe([temp("B", T0)], T0)
    mon2.observe([temp("B", T0 + 30_000)], T0 + 30_000)  # 3 intervals: not more than 3
    assert mon2.gaps(T0 + 30_000) == []


def test_overdue_sensor_is_an_open_gap_until_it_reports() -> None:
    mon = HealthMonitor({"A": 10_000}, gap_intervals=3)
    mon.observe([temp("A", T0)], T0)
    assert mon.sensors(T0 + 30_000)[0].overdue_ms is None
    (a,) = mon.sensors(T0 + 45_000)
    assert a.overdue_ms == 35_000  # 45 s since the reading, 10 s of it expected
    (gap,) = mon.gaps(T0 + 45_000)
    assert (gap.sensor, gap.start, gap.end, gap.missed) == ("A", T0, None, 3)
    mon.observe([temp("A", T0 + 50_000)], T0 + 50_000)
    assert mon.sensors(T0 + 50_000)[0].overdue_ms is None
    assert [g.end for g in mon.gaps(T0 + 50_000)] == [T0 + 50_000]


def test_sensor_without_expected_interval_is_never_overdue() -> None:
    mon = HealthMonitor({})
    mon.observe([temp("BLE-1", T0)], T0)
    (s,) = mon.sensors(T0 + 86_400_000)
    assert s.interval_ms is None
    assert s.overdue_ms is None


def test_battery_last_seen_and_device_clock_offset() -> None:
    mon = HealthMonitor({})
    battery = Reading(t=T0 - 5_000, sensor="BLE-1", qty="battery", value=87, unit="%")
    mon.observe([temp("BLE-1", T0 - 5_000), battery], T0)
    (s,) = mon.sensors(T0)
    assert s.battery == 87
    assert (s.last_t, s.received, s.clock_offset_ms) == (T0 - 5_000, T0, -5_000)
    # an older reading (a logger's backlog) never moves last-seen backwards
    mon.observe([temp("BLE-1", T0 - 60_000)], T0 + 1_000)
    assert mon.sensors(T0 + 1_000)[0].last_t == T0 - 5_000


def test_skew_is_the_fastest_ack_and_flags_beyond_tolerance() -> None:
    mon = HealthMonitor({}, skew_tolerance_ms=2_000)
    assert mon.clock_skew_ms() is None
    assert not mon.skewed()
    # ingest's clock is 5 s ahead; acks take 30, 10 and 200 ms to arrive
    for latency in (30, 10, 200):
        sent = T0 + 1_000
        mon.ack(sent + 5_000, sent + latency)
    assert mon.clock_skew_ms() == 4_990
    assert mon.skewed()
    # a gateway clock 1 s behind ingest is within tolerance once old samples age out
    for _ in range(20):
        mon.ack(T0 + 1_000, T0 - 5)
    assert mon.clock_skew_ms() == 1_005
    assert not mon.skewed()


@given(st.lists(st.integers(-(10**8), 10**8), min_size=1))
def test_estimate_skew_never_below_any_sample(samples: list[int]) -> None:
    est = estimate_skew(samples)
    assert est is not None
    assert all(est >= s for s in samples)
    assert est in samples


def test_expected_intervals_come_from_the_polled_devices() -> None:
    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-1", "site": "s1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": "/tmp/unused.sqlite"},  # never opened
            "modbus": [
                {
                    "name": "f1",
                    "profile": "renke-rs-ws-n01",
                    "host": "127.0.0.1",
                    "sensor": "F-1",
                    "poll_interval_s": 2.5,
                },
                {"name": "f2", "profile": "renke-rs-ws-n01", "host": "h", "sensor": "F-2"},
            ],
        }
    )
    assert expected_intervals(cfg) == {"F-1": 2_500, "F-2": 10_000}


def test_state_message_is_a_gateway_state_with_extras() -> None:
    mon = HealthMonitor({"A": 1_000})
    mon.observe([temp("A", T0)], T0)
    mon.ack(T0 + 100, T0 + 100)
    state = mon.state(
        gateway="gw-1",
        status=Status.ONLINE,
        now_ms=T0 + 10_000,
        outbox_depth=42,
        sources=[SourceState(name="f1", ok=False, last_seen=T0, error="timeout")],
        committed=7,
        oldest_t=T0 - 3_600_000,
    )
    data = encode(state)
    # a reader of the plain wire type sees the usual fields and ignores the rest
    plain = decode_state(data)
    assert (plain.gateway, plain.status, plain.t, plain.outbox_depth) == (
        "gw-1",
        Status.ONLINE,
        T0 + 10_000,
        42,
    )
    assert plain.sources == [SourceState(name="f1", ok=False, last_seen=T0, error="timeout")]
    full = msgspec.json.decode(data, type=HealthState)
    assert full.oldest_unconfirmed_age_ms == 3_610_000
    assert full.committed == 7
    assert full.clock_skew_ms == 0
    assert not full.clock_skewed
    assert full.sensors[0].overdue_ms == 9_000
    assert [(g.sensor, g.end) for g in full.gaps] == [("A", None)]


class FakeClocks:
    """Wall and monotonic clocks that the test moves by hand."""

    def __init__(self) -> None:
        self.wall = T0 / 1000
        self.mono = 100.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def ack(stream: str, committed: int, t: int, gateway: str = "gw-1") -> bytes:
    return encode(Ack(v=VERSION, gateway=gateway, stream=stream, committed=committed, t=t))


def test_publisher_state_counts_from_the_ack_and_deletes_in_coalesced_steps(
    tmp_path: Path,
) -> None:
    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-1", "site": "s1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(tmp_path / "o.db")},
        }
    )
    clocks = FakeClocks()
    with Outbox.open(tmp_path / "o.db") as box:
        pub = Publisher(cfg, box, clock=clocks.time, monotonic=clocks.monotonic)
        box.append([temp("A", T0 - 60_000 + i * 1000) for i in range(10)])
        # ingest has seqs 1..4; the delete waits (fewer than CONFIRM_EVERY, under 1 s)
        assert pub.apply_ack(ack(box.stream, 4, T0)) == 0
        state = pub.state(Status.ONLINE)
        assert (state.committed, state.outbox_depth) == (4, 6)
        assert state.oldest_unconfirmed_t == T0 - 60_000 + 4_000  # seq 5
        assert state.oldest_unconfirmed_age_ms == 56_000
        assert box.depth() == 10
        clocks.mono += CONFIRM_AFTER_S
        assert pub.apply_ack(ack(box.stream, 6, T0)) == 6  # 1 s later: seqs 1..6 go
        assert pub.apply_ack(ack(box.stream, 10, T0)) == 0
        assert pub.flush() == 4
        assert box.depth() == 0
        state = pub.state(Status.ONLINE)
        assert (state.outbox_depth, state.oldest_unconfirmed_t) == (0, None)
        # the readings reached the health monitor through the outbox
        assert [s.sensor for s in state.sensors] == ["A"]
        assert state.sensors[0].last_t == T0 - 60_000 + 9_000


def test_publisher_skew_comes_from_fresh_acks_only(tmp_path: Path) -> None:
    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-1", "site": "s1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(tmp_path / "o.db")},
        }
    )
    clocks = FakeClocks()
    with Outbox.open(tmp_path / "o.db") as box:
        pub = Publisher(cfg, box, clock=clocks.time, monotonic=clocks.monotonic)
        # a retained ack from an hour ago says nothing about the clocks
        pub.apply_ack(ack(box.stream, 0, T0 - 3_600_000), retained=True)
        assert pub.state(Status.ONLINE).clock_skew_ms is None
        # ingest's clock is 7 s ahead of ours
        pub.apply_ack(ack(box.stream, 0, T0 + 7_000))
        state = pub.state(Status.ONLINE)
        assert (state.clock_skew_ms, state.clock_skewed) == (7_000, True)
        # an ack of another gateway is ignored, for the clock too
        pub.apply_ack(ack(box.stream, 0, T0 + 60_000, gateway="gw-2"))
        assert pub.state(Status.ONLINE).clock_skew_ms == 7_000
