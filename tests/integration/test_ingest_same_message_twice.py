"""The same message twice in one batch is stored once, in one write, watermark moving.

A gateway's re-send can land next to the original, and a clustered broker re-delivers
while connected (NATS after its ack wait, docs/scaling.md). The seq ranges of such a
batch used to carry the same start twice, PostgreSQL refused the whole batch ("ON
CONFLICT DO UPDATE command cannot affect row a second time") and the worker fell back
to writing it message by message.
"""

from __future__ import annotations

import itertools
import logging

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from ingest.plan import merge_ranges
from telemetry.codec import decode_ack
from tests.integration.ingest_helpers import running_worker
from tests.mqtt_helpers import Collector, batch, gateway_client, publish, wait_until

TOPIC = "ct/v1/plant-1/gw-1/readings"


def stored(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return [s for (s,) in conn.execute("SELECT gateway_seq FROM telemetry.readings")]


def test_a_batch_with_a_message_twice_is_written_whole(broker, db_url, caplog):
    caplog.set_level(logging.WARNING, logger="ingest")
    acks = Collector(broker, "ct/v1/plant-1/gw-1/ack/#")
    pub = gateway_client(broker)
    # a long batch timer: the three messages are one batch
    with running_worker(broker, db_url, max_delay_ms=3000) as (worker, _):
        for first in (1, 1, 11):
            publish(pub, TOPIC, batch(first, 10))
        assert wait_until(lambda: len(stored(db_url)) == 20, timeout=20)
        assert acks.wait_for(lambda ps: bool(ps) and decode_ack(ps[-1]).committed == 20)
        assert worker.totals.flushes == 1, "not one batch: this test proves nothing"
        assert worker.totals.duplicates == 10
    assert sorted(stored(db_url)) == list(range(1, 21))
    assert "rejected a batch" not in caplog.text
    acks.close()
    pub.disconnect()


ranges = st.lists(
    st.tuples(st.integers(1, 300), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=30,
)


@given(ranges)
def test_merged_ranges_cover_the_same_seqs_with_distinct_separated_starts(rs):
    merged = merge_ranges(rs)
    covered = {s for lo, hi in rs for s in range(lo, hi + 1)}
    assert {s for lo, hi in merged for s in range(lo, hi + 1)} == covered
    for (_, hi), (lo, _) in itertools.pairwise(merged):
        assert lo > hi + 1  # neither overlapping nor adjacent: one start per run
