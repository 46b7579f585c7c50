"""A full outbox (its size cap, or the disk) keeps the oldest data and says what it refused.

It used to raise out of the sources' sink and stop the whole gateway: no reading kept,
no warning on the state topic. Now an append that does not fit is refused whole, counted
and logged, the state message carries the count and since when, and appends resume by
themselves once ingest's watermark frees room (docs/reliability.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from gateway.errors import OutboxFullError
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from telemetry.codec import encode
from telemetry.payloads import VERSION, Ack, Reading, Status, TagItem
from telemetry.topics import Kind

T0 = 1_764_000_000_000
CAP = 64 * 1024  # small enough to fill in a few thousand rows


def readings(start: int, n: int) -> list[Reading]:
    return [
        Reading(t=T0 + i * 1000, sensor="fridge-1", qty="temperature", value=i / 10, unit="Cel")
        for i in range(start, start + n)
    ]


def fill(box: Outbox) -> int:
    """Append until the outbox refuses even one reading; return how many it took."""
    n = 0
    for batch in (50, 1):
        while True:
            try:
                box.append(readings(n, batch))
            except OutboxFullError:
                break
            n += batch
    return n


def config(path: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-1", "site": "plant-1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(path)},
        }
    )


def test_a_capped_outbox_refuses_new_data_and_keeps_every_held_row(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite", max_bytes=CAP, reserve_bytes=0) as box:
        took = fill(box)
        assert took > 100
        used, limit = box.size()
        assert used <= limit <= CAP
        with pytest.raises(OutboxFullError) as refused:
            box.append(readings(took, 1))
        assert refused.value.action == "append"
        # nothing held was touched, and no seq was used up by the refusal
        assert (box.first_seq(), box.last_seq(), box.depth()) == (1, took, took)
        assert [r.t for _, r in box.read_from(1, 3)] == [T0, T0 + 1000, T0 + 2000]
        # ingest confirms half: the freed pages take new data, numbered on without a gap
        box.confirm(took // 2)
        assert box.append(readings(took, 1)) == (took + 1, took + 1)


def test_event_streams_are_capped_too(tmp_path: Path) -> None:
    item = encode(TagItem(t=T0, reader="r1", antenna=1, epc="3034257BF7194E4000001A85"))
    with Outbox.open(tmp_path / "o.sqlite", max_bytes=CAP, reserve_bytes=0) as box:
        fill(box)
        with pytest.raises(OutboxFullError):
            box.append_events(Kind.TAGS, [item] * 500)
        assert box.event_depth(Kind.TAGS) == 0


def test_the_disk_reserve_caps_the_outbox_below_the_free_space(tmp_path: Path) -> None:
    # a reserve larger than the disk's free space: no room beyond the file as it is
    with Outbox.open(tmp_path / "o.sqlite", reserve_bytes=2**62) as box:
        with pytest.raises(OutboxFullError):
            box.append(readings(0, 5000))
        used, limit = box.size()
        assert used <= limit


def test_the_gateway_counts_logs_and_reports_a_full_outbox_then_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite"
    now = [T0 / 1000]
    with Outbox.open(path, max_bytes=CAP, reserve_bytes=0) as box:
        pub = Publisher(config(path), box, clock=lambda: now[0])
        held = fill(box)
        with caplog.at_level(logging.WARNING, logger="gateway.publisher"):
            pub.store(readings(held, 10))  # raised out of the sink before: gateway stopped
            now[0] += 30
            pub.store(readings(held + 10, 10))
        state = pub.state(Status.ONLINE)
        assert state.outbox_full_since == T0
        assert state.outbox_refused == 20
        assert state.outbox_depth == held
        assert state.outbox_bytes is not None
        assert state.outbox_limit_bytes is not None
        assert state.outbox_bytes <= state.outbox_limit_bytes <= CAP
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1  # once per episode (then once a minute), not per poll
        assert "refusing new readings" in errors[0].getMessage()

        # ingest commits half; the outbox deletes it and takes new readings again
        ack = Ack(v=VERSION, gateway="gw-1", stream=box.stream, committed=held // 2, t=T0)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gateway.publisher"):
            pub.apply_ack(encode(ack))
            pub.flush()
            pub.store(readings(held + 20, 10))
        state = pub.state(Status.ONLINE)
        assert state.outbox_full_since is None
        assert state.outbox_refused == 20  # the count of what was lost stays
        assert box.last_seq() == held + 10
        assert "accepts readings again after 30 s full; 20 items refused" in caplog.text
