"""Defects found by attacking a running bridge, each pinned by the behaviour that was wrong."""

from __future__ import annotations

import base64

import orjson

from bridge.metrics import Metrics
from bridge.tools import samples
from bridge.tools.emulator import Emulator, Faults
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    Collector,
    Record,
    bridge_config,
    make_topics,
    outcome_sources,
    outcomes,
    produce,
    running_bridge,
    wait_for,
)


def gauge(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_an_outcome_the_broker_refuses_for_good_becomes_an_error_and_the_stream_moves_on(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A prediction over the producer's maximum request size is not retried: the record gets an
    OUTPUT_TOO_LARGE error outcome naming the size, the stream's next record gets its prediction, other
    streams are not held back, the metric counts the refusal and the partition commits past it."""
    topics = await make_topics(new_topic, partitions=1)
    big = samples.text(400, seed=1).encode()  # its language prediction is far over 8 KiB
    records: list[Record] = [
        (b"big", big, [("seq", b"0")]),
        (b"big", b"hello there", [("seq", b"1")]),
        *[(f"other-{i}".encode(), b"good morning", [("seq", b"0")]) for i in range(20)],
    ]
    metrics = Metrics()
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_KAFKA_MAX_REQUEST_BYTES="8192")
        async with running_bridge(config, metrics) as bridge:
            await produce(kafka_bootstrap, topics.media, records)
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 22, 60, "22 outcomes")
            await wait_for(
                lambda: bridge.tracker.to_commit() == {} and bridge.tracker.outstanding() == 0,
                20,
                "everything committed",
            )
    (err,) = col.on(topics.errors)
    assert err.key == b"big" and err.headers["seq"] == b"0"
    assert err.value["error"]["code"] == "OUTPUT_TOO_LARGE"
    assert err.value["error"]["origin"] == "bridge" and err.value["error"]["retriable"] is False
    assert "8192" in err.value["error"]["message"] and "bytes" in err.value["error"]["message"]
    # in stream order: the next record's outcome was produced after the error was acknowledged (the two
    # are on different topics, so the order they are read in says nothing)
    (after,) = [r for r in col.on(topics.predictions) if r.key == b"big"]
    assert after.headers["seq"] == b"1" and after.timestamp_ms >= err.timestamp_ms
    assert len(col.on(topics.predictions)) == 21
    assert gauge(metrics, "hume_bridge_publish_failures_total", reason="refused") >= 1


async def test_same_producer_payload_id_in_flight_on_one_session_gives_each_record_its_outcome(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """Four records with the same hume-payload-id in flight on one session at once: each gets its own
    prediction carrying the producer's id; an envelope payload_id over 256 characters is refused like
    the header is."""
    topics = await make_topics(new_topic, partitions=1)
    same: list[Record] = [
        (f"k{i}".encode(), b"the same id", [("hume-payload-id", b"dup"), ("seq", str(i).encode())])
        for i in range(4)
    ]
    long_id = "x" * 300
    envelope = samples.v0_request("hello there", {"language": {}}, raw_text=True, payload_id=long_id)
    envelopes: list[Record] = [
        (f"e{i}".encode(), envelope, [("content-type", b"application/vnd.hume.stream+json")])
        for i in range(2)
    ]
    async with Emulator(api_key=API_KEY, faults=Faults(latency_s=0.3)) as emu:
        config = bridge_config(
            kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="1", BRIDGE_REQUESTS_PER_SESSION="4"
        )
        async with running_bridge(config), Collector(kafka_bootstrap, topics.outputs) as col:
            await produce(kafka_bootstrap, topics.media, [*same, *envelopes])
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 6, 30, "six outcomes")
        wire_ids = [e.payload_id for e in emu.requests]
    preds = col.on(topics.predictions)
    assert sorted(r.key for r in preds) == [b"k0", b"k1", b"k2", b"k3"]
    assert {r.value["payload_id"] for r in preds} == {"dup"}
    assert len(set(outcome_sources(col.records, topics))) == 6
    assert len(wire_ids) == 4 and len(set(wire_ids)) == 4, wire_ids
    errors = col.on(topics.errors)
    assert sorted(r.key for r in errors) == [b"e0", b"e1"]
    assert {r.value["error"]["code"] for r in errors} == {"INVALID_ENVELOPE"}
    assert all("256" in r.value["error"]["message"] for r in errors)


async def test_session_gauge_counts_every_session_and_is_never_negative(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """hume_bridge_sessions{state} sums to the pool size, with no state below zero."""
    topics = await make_topics(new_topic, partitions=1)
    metrics = Metrics()
    states = ("connecting", "idle", "busy", "backoff", "closed")
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="3")
        async with running_bridge(config, metrics):
            await wait_for(lambda: gauge(metrics, "hume_bridge_sessions", state="idle") == 3, 20, "3 idle")
            by_state = {s: gauge(metrics, "hume_bridge_sessions", state=s) for s in states}
    assert min(by_state.values()) >= 0, by_state
    assert sum(by_state.values()) == 3, by_state


async def test_empty_wav_is_refused_before_sending_and_stream_ids_are_unambiguous(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A WAV whose data chunk is empty gets EMPTY_MEDIA without a Hume call; a key that is not UTF-8 has
    a stream_id that no UTF-8 key can spell."""
    topics = await make_topics(new_topic, partitions=1)
    empty_wav = samples.wav(0.0)
    records: list[Record] = [
        (b"w", empty_wav, [("content-type", b"audio/wav")]),
        (b"\xff\xfe", b"hello there", []),
        (b"\\xff\\xfe", b"hello there", []),
    ]
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics)
        async with running_bridge(config), Collector(kafka_bootstrap, topics.outputs) as col:
            await produce(kafka_bootstrap, topics.media, records)
            await col.until(lambda rs: len(outcomes(rs, topics)) >= 3, 30, "three outcomes")
        sent = [e.payload_id for e in emu.requests]
    (err,) = col.on(topics.errors)
    assert (err.key, err.value["error"]["code"], err.value["error"]["origin"]) == (
        b"w",
        "EMPTY_MEDIA",
        "bridge",
    )
    assert len(sent) == 2
    ids = {r.key: r.value["stream_id"] for r in col.on(topics.predictions)}
    assert ids[b"\\xff\\xfe"] == "\\xff\\xfe"
    assert ids[b"\xff\xfe"] == {"base64": base64.b64encode(b"\xff\xfe").decode()}
    assert orjson.dumps(ids[b"\xff\xfe"]) != orjson.dumps(ids[b"\\xff\\xfe"])
