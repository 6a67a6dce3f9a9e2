"""End to end: real broker, the emulator over real sockets, the bridge in-process."""

from __future__ import annotations

import orjson

from bridge.tools import samples
from bridge.tools.emulator import Emulator
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
)
from tests.unit.test_decode import CORPUS


def mixed_stream(stream: int, count: int) -> list[Record]:
    """A stream of mixed media: WAV chunks, PNG and JPEG images, text, facemesh and v0 envelopes."""
    key = f"stream-{stream:03d}".encode()
    out: list[Record] = []
    for i in range(count):
        kind = (stream + i) % 6
        headers = [("trace-id", f"t-{stream}-{i}".encode())]
        if kind == 0:
            value, ct = samples.wav(0.5, seed=stream * 100 + i), b"audio/wav"
        elif kind == 1:
            value, ct = samples.png(32, 32, seed=stream * 100 + i), b"image/png"
        elif kind == 2:
            value, ct = samples.jpeg(32, 32, seed=stream * 100 + i), b"image/jpeg"
        elif kind == 3:
            value, ct = samples.text(8, seed=stream * 100 + i).encode(), b"text/plain"
        elif kind == 4:
            value, ct = samples.facemesh(1, seed=i), b"application/vnd.hume.facemesh+json"
        else:
            value = samples.v0_request(samples.text(5, seed=i), {"language": {}}, raw_text=True)
            ct = b"application/vnd.hume.stream+json"
        out.append((key, value, [("content-type", ct), *headers]))
    return out


async def test_every_record_gets_one_outcome_in_stream_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """50 streams x 20 mixed records: one outcome each, in input order per stream, Hume's model objects
    verbatim, keys and headers carried through."""
    topics = await make_topics(new_topic, partitions=4)
    records = [r for s in range(50) for r in mixed_stream(s, 20)]
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_POOL_SIZE="8")
        async with running_bridge(config) as bridge:
            await produce(kafka_bootstrap, topics.media, records)
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 1000, 120, "1000 outcomes")
            ok, _ = bridge.readiness()
            assert ok
        got = outcomes(col.records, topics)
        sources = outcome_sources(col.records, topics)
        assert len(sources) == 1000
        assert len(set(sources)) == 1000, "an outcome was published twice"
        errors = [r.value for r in got if r.topic == topics.errors]
        assert errors == []
        # per stream, outcomes are in input order (offsets increase) and keys/headers carried
        by_key: dict[bytes, list[int]] = {}
        for r in got:
            assert r.key is not None
            assert r.value["stream_id"] == r.key.decode()
            assert r.headers["trace-id"].decode().startswith("t-")
            assert r.headers["content-type"]
            by_key.setdefault(r.key, []).append(r.value["source"]["offset"])
            assert r.value["payload_id"] == r.headers["hume-source"].decode()
        assert len(by_key) == 50
        for offsets in by_key.values():
            assert offsets == sorted(offsets)
            assert len(offsets) == 20
        # model objects are the emulator's, verbatim: the same payload always gets the same scores
        one = next(r for r in got if "face" in r.value["models"])
        face = one.value["models"]["face"]
        assert "predictions" in face
        pred = face["predictions"][0]
        assert {"bbox", "prob", "face_id", "emotions"} <= set(pred)
        assert emu.stats.snapshot()["requests"] >= 1000
        assert orjson.dumps(face)  # JSON round trip


async def test_bad_records_become_error_outcomes_without_hume_calls_and_good_ones_flow(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """The whole malformed corpus (30 records) through the broker: each yields an error outcome with its
    code, in order, with no Hume call; the process stays up and later good records get predictions."""
    topics = await make_topics(new_topic, partitions=2)
    bad: list[Record] = [(b"b", value, list(headers.items())) for _, value, headers, _ in CORPUS]
    good: list[Record] = [(b"g", samples.text(5, seed=i).encode(), []) for i in range(5)]
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics, BRIDGE_MAX_RECORD_BYTES="1000000")
        async with running_bridge(config):
            await produce(kafka_bootstrap, topics.media, bad)
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= len(bad), 60, "the corpus' outcomes")
                await produce(kafka_bootstrap, topics.media, good)
                await col.until(lambda rs: len(outcomes(rs, topics)) >= len(bad) + 5, 60, "good outcomes")
        codes = [r.value["error"]["code"] for r in col.on(topics.errors)]
        assert codes == [code for *_, code in CORPUS]
        for r in col.on(topics.errors):
            assert r.value["error"]["origin"] == "bridge"
            assert r.value["error"]["message"]
            assert r.value["source"]["topic"] == topics.media
        assert len(col.on(topics.predictions)) == 5
        assert emu.stats.snapshot()["requests"] == 5
