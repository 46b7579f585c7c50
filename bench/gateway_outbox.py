"""Gateway store-and-forward at scale: fill a 24 h backlog, then drain it to Mosquitto.

Run from the repository root with the project's Python::

    .venv/bin/python bench/gateway_outbox.py [--readings 1000000] [--batch 100]

In one run, in a temporary directory of its own, it

1. **fills** an outbox file with N readings through `gateway.outbox.Outbox.append`, in
   batches of ``--batch`` readings (one poll round of a busy site: 50 fridges x 2
   quantities), with the production ``synchronous=FULL``; prints readings/s and the
   filling process's peak RSS before and after (appending holds no backlog in memory);
2. starts a Mosquitto of its own (project config) and a minimal acker: a paho-mqtt
   client that decodes every batch with the real wire codec (`decode_batch`, the same
   checks ingest runs) and publishes the retained committed watermark for the highest
   contiguous seq, as ingest does after its COMMIT. It does not write to PostgreSQL on
   purpose: the real worker's throughput is measured by bench/ingest.py, and with it
   in the loop this would measure the database, not the gateway;
3. runs the real gateway (``coldtrace gateway run`` with no sources) as a subprocess
   on that outbox and times from its start until the outbox is empty; prints readings/s,
   the gateway's peak RSS (``VmHWM`` from /proc), the outbox and WAL file sizes, and
   checks that every seq 1..N arrived in device-time order.

Everything it starts is stopped on success, error and Ctrl-C. Figures:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coldtrace.broker import Broker, project_config  # noqa: E402
from gateway.outbox import Outbox  # noqa: E402
from telemetry.codec import decode_batch, encode  # noqa: E402
from telemetry.payloads import VERSION, Ack, Reading  # noqa: E402
from telemetry.topics import Kind, Topic, ack_topic  # noqa: E402

SITE, GATEWAY = "bench", "gw-bench"
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def fill(path: Path, total: int, batch: int) -> float:
    """Append ``total`` readings in batches; return seconds taken."""
    sensors = max(1, batch // 2)
    # one round = every sensor's temperature and humidity at one poll time
    started = time.perf_counter()
    with Outbox.open(path, synchronous="FULL") as box:
        done = 0
        rnd = 0
        while done < total:
            t = T0 + rnd * 60_000 // max(1, total // batch // 1440)  # spread over 24 h
            n = min(batch, total - done)
            items = [
                Reading(
                    t=t,
                    sensor=f"FRIDGE-{(i // 2) % sensors:03d}",
                    qty="temperature" if i % 2 == 0 else "humidity",
                    value=4.0 + (rnd % 40) / 10 if i % 2 == 0 else 45.0,
                    unit="Cel" if i % 2 == 0 else "%",
                )
                for i in range(n)
            ]
            box.append(items)
            done += n
            rnd += 1
    return time.perf_counter() - started


class Acker:
    """Decodes batches like ingest and acks the highest contiguous seq (retained, QoS 1)."""

    def __init__(self, port: int) -> None:
        self.topic_readings = str(Topic.build(SITE, GATEWAY, Kind.READINGS))
        self.committed = 0
        self.stream: str | None = None
        self.pending: set[int] = set()
        self.arrived = 0
        self.max_t = 0
        self.out_of_order = 0
        self.done = threading.Event()
        self.total = 0
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ack-{uuid.uuid4()}")
        self._client.on_connect = lambda c, *_: c.subscribe(self.topic_readings, qos=1)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, client: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        batch = decode_batch(msg.payload, now_ms=int(time.time() * 1000))
        self.stream = batch.stream
        for seq, reading in batch.readings:
            if seq > self.committed and seq not in self.pending:
                self.pending.add(seq)
                self.arrived += 1
                if reading.t < self.max_t:
                    self.out_of_order += 1
                self.max_t = max(self.max_t, reading.t)
        while self.committed + 1 in self.pending:
            self.committed += 1
            self.pending.discard(self.committed)
        ack = Ack(
            v=VERSION,
            gateway=GATEWAY,
            stream=batch.stream,
            committed=self.committed,
            t=int(time.time() * 1000),
        )
        topic = ack_topic(SITE, GATEWAY, batch.stream)  # as ingest: one retained ack a stream
        client.publish(topic, encode(ack), qos=1, retain=True)
        if self.committed >= self.total:
            self.done.set()

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def depth(path: Path) -> int:
    """Readings left in the outbox, read-only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        (n,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(n)


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100, help="readings per append")
    parser.add_argument("--batch-max", type=int, default=500, help="gateway outbox.batch_max")
    parser.add_argument("--profile", type=Path, help="run the gateway under cProfile, to FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ct-bench-gw-") as tmp_name:
        tmp = Path(tmp_name)
        outbox = tmp / "outbox.sqlite"
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        secs = fill(outbox, args.readings, args.batch)
        after_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size_mb = outbox.stat().st_size / 1e6
        print(
            f"fill: {args.readings:,} readings in batches of {args.batch} in {secs:.1f} s "
            f"= {args.readings / secs:,.0f} readings/s; outbox file {size_mb:.0f} MB; "
            f"filling process peak RSS {before_mb:.0f} MB before, {after_mb:.0f} MB after"
        )
        broker = Broker(workdir=tmp / "broker", extra_config=project_config())
        broker.start()
        acker = Acker(broker.port)
        acker.total = args.readings
        cfg = tmp / "gateway.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "gateway": {"id": GATEWAY, "site": SITE},
                    "mqtt": {"host": "127.0.0.1", "port": broker.port},
                    "outbox": {"path": str(outbox), "batch_max": args.batch_max},
                    "state_interval_s": 5,
                }
            )
        )
        log = (tmp / "gateway.log").open("wb")
        started = time.perf_counter()
        profile = ["-m", "cProfile", "-o", str(args.profile.resolve())] if args.profile else []
        gw = subprocess.Popen(
            [
                sys.executable,
                *profile,
                "-m",
                "coldtrace",
                "gateway",
                "run",
                "-c",
                str(cfg),
                "--plain-logs",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        peak = 0.0
        wal = outbox.with_name(outbox.name + "-wal")
        wal_peak = 0
        try:
            while not acker.done.wait(0.2):
                if gw.poll() is not None:
                    raise SystemExit(f"gateway exited {gw.returncode}: see log")
                peak = max(peak, peak_rss_mb(gw.pid))
                with contextlib.suppress(OSError):
                    wal_peak = max(wal_peak, wal.stat().st_size)
            acked = time.perf_counter() - started
            while depth(outbox) > 0 and time.perf_counter() - started < acked + 30:
                time.sleep(0.1)
            emptied = time.perf_counter() - started
            peak = max(peak, peak_rss_mb(gw.pid))
            cpu = cpu_seconds(gw.pid)
        finally:
            gw.send_signal(signal.SIGTERM)
            gw.wait(30)
            acker.close()
            broker.stop()
        print(
            f"drain: {args.readings:,} readings acked in {acked:.1f} s "
            f"= {args.readings / acked:,.0f} readings/s (outbox empty after {emptied:.1f} s, "
            f"including process start)"
        )
        print(
            f"gateway CPU {cpu:.1f} s (user+sys, incl. start-up) = "
            f"{cpu / args.readings * 1e6:.1f} µs/reading; load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"gateway peak RSS {peak:.0f} MB; WAL peak {wal_peak / 1e6:.1f} MB, "
            f"after drain {wal.stat().st_size / 1e6 if wal.exists() else 0:.1f} MB; "
            f"outbox file {outbox.stat().st_size / 1e6:.0f} MB"
        )
        print(
            f"acker: {acker.arrived:,} distinct seqs, committed {acker.committed:,}, "
            f"device time out of order: {acker.out_of_order}"
        )
        ok = acker.committed == args.readings and acker.out_of_order == 0 and depth(outbox) == 0
        print("OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
