"""Settings of a clustered broker: node lists, MQTT protocol, partitions (docs/scaling.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.config import MqttConfig
from ingest.partitions import fair_share, partition_key
from ingest.settings import IngestSettings

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)


def test_defaults_are_mosquittos_share_group_and_mqtt5():
    s = IngestSettings()
    assert (s.mqtt_protocol, s.partitions, s.failover_nodes()) == ("5", [], [])
    assert s.share_group == "ingest"


def test_failover_nodes_and_partitions_parse():
    s = IngestSettings(
        mqtt_failover=["127.0.0.1:4001", "broker-2.plant:1883"],
        partitions=["plant-1/+", "+/gw-7", "plant-2/gw-1"],
        mqtt_protocol="3.1.1",
    )
    assert s.failover_nodes() == [("127.0.0.1", 4001), ("broker-2.plant", 1883)]
    assert s.partition_scopes() == [("plant-1", "+"), ("+", "gw-7"), ("plant-2", "gw-1")]


def test_partitions_from_the_environment(monkeypatch):
    monkeypatch.setenv("COLDTRACE_INGEST_PARTITIONS", '["a/+", "b/+"]')
    monkeypatch.setenv("COLDTRACE_INGEST_MQTT_FAILOVER", '["127.0.0.1:2"]')
    s = IngestSettings()
    assert s.partition_scopes() == [("a", "+"), ("b", "+")]
    assert s.failover_nodes() == [("127.0.0.1", 2)]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mqtt_failover", ["127.0.0.1"], "is not host:port"),
        ("mqtt_failover", ["h:0"], "is not host:port"),
        ("mqtt_failover", ["h:65536"], "is not host:port"),
        ("partitions", ["plant-1"], "is not site/gateway"),
        ("partitions", ["plant-1/#"], "not a valid id"),
        ("partitions", ["a/b/c"], "not a valid id"),
        ("partitions", ["a/+", "a/+"], "listed twice"),
        ("mqtt_protocol", "3.1", "'5' or '3.1.1'"),
    ],
)
def test_bad_cluster_settings_are_refused_with_a_reason(field, value, message):
    with pytest.raises(ValidationError, match=message):
        IngestSettings(**{field: value})


@given(site=ids | st.just("+"), gateway=ids | st.just("+"))
def test_any_valid_scope_round_trips(site, gateway):
    assert IngestSettings(partitions=[f"{site}/{gateway}"]).partition_scopes() == [(site, gateway)]


@given(st.text(min_size=1, max_size=200))
def test_partition_keys_are_int4(scope):
    key = partition_key(scope)
    assert -(2**31) <= key < 2**31
    assert key == partition_key(scope)  # the same in every worker: no salted hash


@given(partitions=st.integers(1, 500), members=st.integers(1, 50))
def test_fair_shares_cover_every_partition_and_differ_by_at_most_one(partitions, members):
    share = fair_share(partitions, members)
    assert share * members >= partitions  # every partition can be held
    assert (share - 1) * members < partitions  # and no worker may hoard more than needed


def test_no_member_counted_yet_means_one():
    assert fair_share(3, 0) == 3


def test_gateway_node_list_starts_with_host_then_failover():
    cfg = MqttConfig(host="n1", port=1884, failover=["n2:1885", "10.0.0.3:1886"])
    assert cfg.nodes() == [("n1", 1884), ("n2", 1885), ("10.0.0.3", 1886)]
    assert MqttConfig(host="n1").nodes() == [("n1", 1883)]


def test_gateway_refuses_a_node_without_port():
    with pytest.raises(ValidationError, match="is not host:port"):
        MqttConfig(host="n1", failover=["n2"])
