"""The scenarios. Each is a :class:`Scenario`: how to set up the rig, what to do to the running processes
(``act``), how long it may take, and any check of its own (``check``, run after the records settled and
before the bridges stop). The runner does the rest: settle, stop, account.

A scenario is written once and listed for each API it applies to (:func:`_each_api`). v1 variants slot in
by adding ``"v1"`` to ``APIS`` and to a scenario's ``apis`` (plus its path in ``rig.API_PATHS`` and, where
the fault differs, a branch on ``rig.api``); a v1-only scenario (``server_shutdown`` to every session)
is listed with ``apis=("v1",)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from bridge.tools import samples
from bridge.tools.chaos.corpus import CORPUS, v1_corpus
from bridge.tools.chaos.rig import Record, Rig
from bridge.tools.emulator.v1 import testing as v1t

APIS: Final = ("v0", "v1")


@dataclass(frozen=True)
class Params:
    """Durations and sizes a run may change (``hume-bridge chaos --soak-s 600 --memory-mb 1024``)."""

    freeze_short_s: float = 3.0
    freeze_long_s: float = 35.0
    blackhole_s: float = 15.0
    half_open_s: float = 8.0
    soak_s: float = 30.0
    memory_mb: float = 64.0
    slow_latency_s: float = 2.0


Act = Callable[[Rig, Params], Awaitable[None]]
Check = Callable[[Rig, Params], Awaitable[list[str]]]


async def _no_check(rig: Rig, params: Params) -> list[str]:
    return []


async def _no_errors(rig: Rig, params: Params) -> list[str]:
    """Good inputs only: a fault must never turn one into an error outcome."""
    errors = rig.output_values(rig.errors)
    if not errors:
        return []
    codes = sorted({str(v.get("error", {}).get("code")) for v in errors})
    return [f"{len(errors)} good record(s) got error outcomes ({', '.join(codes)})"]


def _checks(*checks: Check) -> Check:
    async def run(rig: Rig, params: Params) -> list[str]:
        out: list[str] = []
        for check in checks:
            out += await check(rig, params)
        return out

    return run


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str
    proves: str
    act: Act
    budget_s: Callable[[Params], float]
    check: Check = _no_check
    bridge_env: dict[str, str] = field(default_factory=dict)
    emulator_faults: dict[str, Any] = field(default_factory=dict)
    partitions: int = 4
    settle_s: float = 60.0
    known_defect: str | None = None
    """Set for a scenario that fails on today's bridge because of a known, reported defect: it runs
    only with ``--known-defects`` and its failure is expected (its pass is then news)."""
    extended: bool = False
    """Left out of CI's default set to keep it within its time budget (``--extended`` adds it): a variant
    whose fault its default-set siblings already cover on the side that differs."""

    @property
    def id(self) -> str:
        return f"{self.name}/{self.api}"


# -- workloads -----------------------------------------------------------------------------------------------

TEXT_MODELS: Final = b'{"language": {"granularity": "sentence"}}'


def mixed(i: int, streams: int = 12) -> Record:
    """Cheap mixed media on ``streams`` keys: three texts to one half-second WAV."""
    key = f"s{i % streams:02d}".encode()
    if i % 4 == 0:
        return key, samples.wav(0.5, seed=i % 16), [("content-type", b"audio/wav")]
    value = samples.text(6, seed=i).encode()
    return key, value, [("content-type", b"text/plain"), ("hume-models", TEXT_MODELS)]


CHUNK_MS: Final = 250
_SILENCE: Final = v1t.silence(CHUNK_MS)
_SPEECH: Final = v1t.tone(CHUNK_MS, hz=330.0)
PCM_TYPE: Final = b"audio/pcm;rate=16000"


class Calls:
    """v1 call audio on ``streams`` keys: 250 ms raw PCM records with ``hume-stream-offset-ms``, each
    stream two seconds round of half a second of silence, a second of speech, half a second of silence
    (an utterance: one measurement, six records; the silent ones settle without output). ``end()`` ends
    every stream with a second of silence and ``hume-end-of-stream``."""

    def __init__(self, streams: int = 8, prefix: str = "c") -> None:
        self.keys = [f"{prefix}{n:02d}".encode() for n in range(streams)]
        self.next = dict.fromkeys(self.keys, 0)

    def chunk(self, key: bytes, *, silent: bool = False, last: bool = False) -> Record:
        n = self.next[key]
        self.next[key] = n + 1
        speech = not silent and 2 <= n % 8 < 6
        headers = [("content-type", PCM_TYPE), ("hume-stream-offset-ms", str(n * CHUNK_MS).encode())]
        if last:
            headers.append(("hume-end-of-stream", b"true"))
        return key, _SPEECH if speech else _SILENCE, headers

    def __call__(self, i: int) -> Record:
        return self.chunk(self.keys[i % len(self.keys)])

    def end(self) -> list[Record]:
        return [self.chunk(k, silent=True, last=j == 3) for k in self.keys for j in range(4)]


def workload(rig: Rig) -> Callable[[int], Record]:
    """The scenario's steady load: mixed media for v0, call audio for v1 (one per rig, ended at settle)."""
    if rig.api != "v1":
        return mixed
    if rig.workload is None:
        rig.workload = Calls()
    assert isinstance(rig.workload, Calls)
    return rig.workload


async def end_calls(rig: Rig) -> None:
    """v1: end every call of the rig's workload (their last records settle by end of stream)."""
    calls, rig.workload = rig.workload, None
    if isinstance(calls, Calls):
        await rig.produce(calls.end())


async def _feed_while(rig: Rig, rate: float, duration_s: float, *steps: tuple[float, Act], p: Params) -> None:
    """Produce the rig's workload for ``duration_s`` while carrying out each ``(at_s, step)`` at its time;
    v1 calls are ended after."""

    async def timeline() -> None:
        start = time.monotonic()
        for at, step in steps:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            await step(rig, p)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(rig.feed(workload(rig), rate, duration_s))
        tg.create_task(timeline())
    await end_calls(rig)


# -- 1. broker frozen ----------------------------------------------------------------------------------------


def _freeze(seconds: Callable[[Params], float]) -> Act:
    async def act(rig: Rig, p: Params) -> None:
        await rig.start_bridge()
        assert rig.broker is not None
        broker = rig.broker
        frozen = seconds(p)

        async def freeze_for(r: Rig, pp: Params) -> None:
            broker.freeze()
            try:
                # Readiness while the broker is down is noted, not judged, until issue 9's defect 4
                # (ready while Kafka is down) is fixed: the last answer of /readyz before the thaw.
                await asyncio.sleep(max(0.0, frozen - 1.0))
                r.notes["readyz_while_frozen"] = await r.readyz(0)
                await asyncio.sleep(min(1.0, frozen))
            finally:
                broker.thaw()

        await _feed_while(rig, 20, frozen + 8, (3.0, freeze_for), p=p)

    return act


# -- 2. emulator killed and restarted ------------------------------------------------------------------------


async def _emulator_restart(rig: Rig, p: Params) -> None:
    await rig.start_bridge()

    async def kill(r: Rig, pp: Params) -> None:
        await r.stop_emulator(kill=True, expected=(-9,))

    async def restart(r: Rig, pp: Params) -> None:
        await r.start_emulator()

    await _feed_while(rig, 20, 12, (4.0, kill), (6.5, restart), p=p)


async def _server_shutdown(rig: Rig, p: Params) -> None:
    await rig.start_bridge()

    async def shutdown(r: Rig, pp: Params) -> None:
        told = await r.shutdown_sessions()
        r.notes["sessions_shut_down"] = r.notes.get("sessions_shut_down", 0) + told

    await _feed_while(rig, 16, 12, (4.0, shutdown), (8.0, shutdown), p=p)


async def _sessions_resumed(rig: Rig, p: Params) -> list[str]:
    """The shutdowns hit open sessions, and every stream went on being measured on new sessions."""
    problems = []
    if not rig.notes.get("sessions_shut_down"):
        problems.append("no session was open to be shut down")
    sessions: dict[str, set[str]] = {}
    for v in rig.output_values(rig.predictions):
        sessions.setdefault(str(v.get("stream_id")), set()).add(str(v.get("session_id")))
    rig.notes["sessions_per_stream"] = {k: len(v) for k, v in sorted(sessions.items())}
    want = len(Calls().keys)
    if len(sessions) < want:
        problems.append(f"only {len(sessions)} of {want} streams were measured")
    one = sorted(k for k, v in sessions.items() if len(v) < 2)
    if one:
        problems.append(f"stream(s) {', '.join(one)} measured on one session only: not resumed")
    return problems


# The deadlines that find a silent Hume: v0's reply deadline, v1's keepalive ping (a missed pong within
# about three times it), and the connect deadline for the sessions opened meanwhile.
DEADLINES: Final = {
    "BRIDGE_REPLY_TIMEOUT_S": "5",
    "BRIDGE_V1_KEEPALIVE_S": "2",
    "BRIDGE_CONNECT_TIMEOUT_S": "3",
}


# -- 3. blackhole to Hume ------------------------------------------------------------------------------------


async def _hume_blackhole(rig: Rig, p: Params) -> None:
    await rig.start_bridge()

    async def hole(r: Rig, pp: Params) -> None:
        r.hume_proxy.blackhole()
        await asyncio.sleep(max(0.0, pp.blackhole_s - 1.0))
        r.notes["readyz_in_blackhole"] = await r.readyz(0)
        await asyncio.sleep(min(1.0, pp.blackhole_s))
        r.hume_proxy.heal()

    await _feed_while(rig, 10, p.blackhole_s + 8, (3.0, hole), p=p)


async def _hume_half_open(rig: Rig, p: Params) -> None:
    await rig.start_bridge()

    async def half(r: Rig, pp: Params) -> None:
        r.hume_proxy.half_open()
        await asyncio.sleep(pp.half_open_s)
        r.hume_proxy.heal()  # the dead sessions learn it by an RST when they next write

    await _feed_while(rig, 10, p.half_open_s + 8, (3.0, half), p=p)


# -- 4. consumer groups: kill -9 and rolling restart ---------------------------------------------------------


def _group_kill(bridges: int) -> Act:
    async def act(rig: Rig, p: Params) -> None:
        for _ in range(bridges):
            await rig.start_bridge()

        async def kill(r: Rig, pp: Params) -> None:
            await r.kill_bridge(bridges - 1)

        await _feed_while(rig, 30, 14, (5.0, kill), p=p)

    return act


async def _rolling_restart(rig: Rig, p: Params) -> None:
    for _ in range(3):
        await rig.start_bridge()
    async with asyncio.TaskGroup() as tg:
        feeding = tg.create_task(rig.feed(workload(rig), 30, 600))  # until the roll is over
        await asyncio.sleep(2.0)
        for i in range(3):
            await rig.stop_bridge(i)  # SIGTERM: drain, commit, exit 0
            await rig.start_bridge()
        await asyncio.sleep(2.0)
        feeding.cancel()
    await end_calls(rig)


# -- 5. slow upstream, small caps ----------------------------------------------------------------------------


async def _slow_upstream(rig: Rig, p: Params) -> None:
    await rig.set_emulator_faults(latency_s=p.slow_latency_s)
    await rig.start_bridge()
    await rig.produce(mixed(i, streams=16) for i in range(48))


async def _no_rebalance(rig: Rig, p: Params) -> list[str]:
    # From the log, not hume_bridge_rebalances_total: that counter also counts the empty revocation the
    # consumer reports before its first assignment.
    assigned = rig.bridge_log_events("partitions_assigned")
    revoked = rig.bridge_log_events("partitions_revoked")
    if assigned != 1 or revoked != 0:
        return [f"the bridge saw {assigned} assignment(s) and {revoked} revocation(s), want 1 and 0"]
    return []


# -- 6. poison -----------------------------------------------------------------------------------------------


async def _poison(rig: Rig, p: Params) -> None:
    if rig.api == "v1":
        await _poison_v1(rig, p)
        return
    await rig.start_bridge()
    bad: list[Record] = [(b"bad", value, list(headers.items())) for _, value, headers, _ in CORPUS]
    await rig.produce(bad)
    await rig.produce(mixed(i, streams=4) for i in range(20))


async def _poison_codes(rig: Rig, p: Params) -> list[str]:
    assert rig.reader is not None
    errors = [v for v in rig.output_values(rig.errors) if v.get("stream_id") == "bad"]
    errors.sort(key=lambda v: v["source"]["offset"])
    seen: dict[int, str] = {}
    for v in errors:
        seen.setdefault(v["source"]["offset"], v["error"]["code"])
    got = list(seen.values())
    want = [str(code) for *_, code in CORPUS]
    if got != want:
        wrong = [f"{n}: {g} (want {w})" for (n, *_), g, w in zip(CORPUS, got, want, strict=False) if g != w]
        return [f"corpus codes differ ({len(got)} of {len(want)} seen): {'; '.join(wrong[:5])}"]
    good_errors = [v for v in rig.output_values(rig.errors) if v.get("stream_id") != "bad"]
    if good_errors:
        return [f"{len(good_errors)} good record(s) got error outcomes, e.g. {good_errors[0]['error']}"]
    return []


NON_UTF8_KEY: Final = b"\xff\xfe-call"
MANY_HEADERS: Final = 1200


def _v1_good_calls() -> Calls:
    """Four good calls, one with a key that is not UTF-8; another gets a record with 1,200 headers."""
    calls = Calls(4, prefix="g")
    calls.keys[0] = NON_UTF8_KEY
    calls.next = dict.fromkeys(calls.keys, 0)
    return calls


async def _poison_v1(rig: Rig, p: Params) -> None:
    await rig.start_bridge()
    await rig.produce(
        (f"bad-{n:02d}".encode(), value, list(headers.items()))
        for n, (_, value, headers, _) in enumerate(v1_corpus())
    )
    calls = _v1_good_calls()
    records = [calls(i) for i in range(4 * 16)]
    key, value, headers = records[9]  # g01's third record: speech
    records[9] = (key, value, [*headers, *((f"x-chaos-{n}", b"v") for n in range(MANY_HEADERS))])
    await rig.produce([*records, *calls.end()])


async def _poison_v1_codes(rig: Rig, p: Params) -> list[str]:
    problems: list[str] = []
    got: dict[str, list[str]] = {}
    for v in rig.output_values(rig.errors):
        got.setdefault(str(v.get("stream_id")), []).append(str(v.get("error", {}).get("code")))
    for n, (name, *_, code) in enumerate(v1_corpus()):
        codes = got.pop(f"bad-{n:02d}", [])
        if codes != [str(code)]:
            problems.append(f"{name}: error codes {codes}, want [{code}]")
    if got:
        problems.append(f"good streams got error outcomes: {got}")
    measured = {str(v.get("stream_id")) for v in rig.output_values(rig.predictions)}
    rig.notes["measured_streams"] = sorted(measured)
    if len(measured) < 4:
        problems.append(f"only {len(measured)} of the 4 good calls measured: {sorted(measured)}")
    if not rig.alive_bridges():
        problems.append("the bridge is down after the corpus")
    return problems


# -- 7. soak -------------------------------------------------------------------------------------------------


# v0: 5 % of Hume's replies drop their connection. v1 sessions carry ten messages a second each and an
# utterance needs about twenty to settle, so 5 % would exhaust BRIDGE_MAX_ATTEMPTS with Hume healthy:
# 0.5 % of messages drops a session about every 20 s.
SOAK_DROP: Final = {"v0": 0.05, "v1": 0.005}


async def _soak(rig: Rig, p: Params) -> None:
    await rig.set_emulator_faults(drop_probability=SOAK_DROP[rig.api], jitter_s=0.05)
    await rig.start_bridge()
    rig.broker_proxy.set_latency(0.002, 0.02)
    rig.hume_proxy.set_latency(0.002, 0.02)

    buffered: list[float] = []

    async def drops() -> None:
        while True:
            await asyncio.sleep(1.0)
            rig.broker_proxy.reset_some(0.05)
            with contextlib.suppress(Exception):
                buffered.append((await rig.bridge_metrics(0)).get("hume_bridge_buffered_records", 0.0))
                rig.notes["buffered_records_max"] = max(buffered)
                half = len(buffered) // 2
                if half:
                    # growth of buffered records: the mean of the second half of the run over the first
                    rig.notes["buffered_records_mean_1st_half"] = round(sum(buffered[:half]) / half, 1)
                    rig.notes["buffered_records_mean_2nd_half"] = round(
                        sum(buffered[half:]) / (len(buffered) - half), 1
                    )

    async with asyncio.TaskGroup() as tg:
        dropper = tg.create_task(drops())
        await rig.feed(workload(rig), 20, p.soak_s)
        dropper.cancel()
    await end_calls(rig)
    rig.broker_proxy.set_latency(0.0)
    await rig.set_emulator_faults(drop_probability=0.0)


async def _soak_check(rig: Rig, p: Params) -> list[str]:
    problems = []
    for i in rig.alive_bridges():
        m = await rig.bridge_metrics(i)
        buffered = m.get("hume_bridge_buffered_records", 0)
        if buffered:
            problems.append(f"bridge-{i + 1} still buffers {buffered:g} records after the load settled")
    return problems


# -- 8. memory -----------------------------------------------------------------------------------------------

MEMORY_LIMIT_MB: Final = 256.0


async def _memory(rig: Rig, p: Params) -> None:
    if rig.api == "v1":
        await _memory_v1(rig, p)
        return
    chunk = samples.wav(4.0, seed=1)  # 128 KB of 16 kHz 16-bit mono
    count = max(1, int(p.memory_mb * 1024 * 1024 / len(chunk)))
    for start in range(0, count, 200):
        await rig.produce(
            (f"m{i % 32:02d}".encode(), samples.wav(4.0, seed=i % 8), [("content-type", b"audio/wav")])
            for i in range(start, min(count, start + 200))
        )
        await rig.flush()
    await rig.start_bridge()


def memory_chunk(i: int) -> bytes:
    """v1: a 4 s PCM record: a second of silence, two of speech, one of silence (one utterance)."""
    return v1t.silence(1000) + v1t.tone(2000, hz=220.0 + 10 * (i % 8)) + v1t.silence(1000)


async def _memory_v1(rig: Rig, p: Params) -> None:
    chunks = [memory_chunk(i) for i in range(8)]
    count = max(1, int(p.memory_mb * 1024 * 1024 / len(chunks[0])))
    # at most 16 records (64 s of audio) per call: a larger backlog is more calls, not calls past the
    # bridge's 600 s pacing lead (which would hold the drain to real time)
    streams = max(32, -(-count // 16))
    for start in range(0, count, 200):
        batch: list[Record] = []
        for i in range(start, min(count, start + 200)):
            n = i // streams
            headers = [("content-type", PCM_TYPE), ("hume-stream-offset-ms", str(n * 4000).encode())]
            if i + streams >= count:
                headers.append(("hume-end-of-stream", b"true"))
            batch.append((f"m{i % streams:03d}".encode(), chunks[i % 8], headers))
        await rig.produce(batch)
        await rig.flush()
    # A backlog is not live audio: let the bridge send it as fast as Hume takes it (the emulator's bucket
    # as large as the bridge's lead), so the drain measures memory, not the wall clock.
    await rig.set_emulator_faults(audio_burst_ms=600_000.0)
    await rig.start_bridge(BRIDGE_V1_PACING_LEAD_S="600")


async def _memory_check(rig: Rig, p: Params) -> list[str]:
    if rig.peak_rss_mb > MEMORY_LIMIT_MB:
        return [f"peak RSS {rig.peak_rss_mb:.0f} MiB over {MEMORY_LIMIT_MB:.0f} MiB"]
    return []


# -- known defects (issue 9) ---------------------------------------------------------------------------------


async def _oversize_outcome(rig: Rig, p: Params) -> None:
    await rig.start_bridge()
    models = orjson.dumps({"face": {"fps_pred": 1000, "facs": {}, "descriptions": {}}})
    video = samples.mp4(5.0, video=True)
    await rig.produce([(b"video", video, [("content-type", b"video/mp4"), ("hume-models", models)])])
    await rig.produce(mixed(i, streams=4) for i in range(20))
    await rig.produce(
        (b"video", samples.text(5, seed=i).encode(), [("content-type", b"text/plain")]) for i in range(3)
    )


async def _duplicate_payload_ids(rig: Rig, p: Params) -> None:
    await rig.set_emulator_faults(latency_s=0.3)
    await rig.start_bridge()
    await rig.produce(
        (
            f"dup{i}".encode(),
            samples.text(5, seed=i).encode(),
            [("content-type", b"text/plain"), ("hume-payload-id", b"same-id")],
        )
        for i in range(12)
    )


# -- the registry --------------------------------------------------------------------------------------------


def _each_api(
    apis: tuple[str, ...] = ("v0",), *, extended: tuple[str, ...] = (), **kw: Any
) -> list[Scenario]:
    """The scenario once per API it applies to (a v1 variant: ``apis=("v0", "v1")``); the variants for
    the APIs in ``extended`` only run with ``--extended``."""
    return [Scenario(api=api, extended=api in extended, **kw) for api in apis if api in APIS]


def _all() -> list[Scenario]:
    out: list[Scenario] = []
    out += _each_api(
        ("v0", "v1"),
        name="broker-freeze-short",
        proves="a broker frozen (SIGSTOP) for less than the session timeout: nothing lost, order kept",
        check=_no_errors,
        act=_freeze(lambda p: p.freeze_short_s),
        budget_s=lambda p: p.freeze_short_s + 90,
    )
    out += _each_api(
        ("v0", "v1"),
        extended=("v1",),
        name="broker-freeze-long",
        proves="a broker frozen past the 6 s session and the 30 s request timeouts: the bridge rides it "
        "out, nothing lost, order kept, no traceback",
        check=_no_errors,
        act=_freeze(lambda p: p.freeze_long_s),
        budget_s=lambda p: p.freeze_long_s + 120,
        settle_s=90,
    )
    out += _each_api(
        ("v0", "v1"),
        name="emulator-restart",
        proves="Hume killed (-9) and back 2.5 s later on another port: in-flight requests are resent",
        check=_no_errors,
        act=_emulator_restart,
        budget_s=lambda p: 90,
    )
    out += _each_api(
        ("v1",),
        name="server-shutdown",
        proves="v1: session.closed{server_shutdown} to every open session at once, twice (a deployment "
        "of Hume's side): every record settled, nothing lost, order kept, every stream resumed on new "
        "sessions",
        check=_checks(_no_errors, _sessions_resumed),
        act=_server_shutdown,
        budget_s=lambda p: 90,
    )
    out += _each_api(
        ("v0", "v1"),
        name="hume-blackhole",
        proves="Hume unreachable without RST or FIN (packets vanish) then healed: outage detected by "
        "deadlines, no error records for the backlog, everything flows after",
        check=_no_errors,
        act=_hume_blackhole,
        budget_s=lambda p: p.blackhole_s + 100,
        bridge_env=DEADLINES,
    )
    out += _each_api(
        ("v0", "v1"),
        extended=("v1",),
        name="hume-half-open",
        check=_no_errors,
        proves="Hume's side of every session gone while the bridge's sockets stay open and silent, then "
        "RST on heal: the sessions are found dead by deadlines, nothing lost, no error outcome",
        act=_hume_half_open,
        budget_s=lambda p: p.half_open_s + 100,
        bridge_env=DEADLINES,
    )
    out += _each_api(
        ("v0", "v1"),
        name="group-2-kill9",
        proves="two bridges in one group, one kill -9'd while producing: its partitions move, nothing lost",
        check=_no_errors,
        act=_group_kill(2),
        budget_s=lambda p: 100,
        emulator_faults={"latency_s": 0.1},
    )
    out += _each_api(
        ("v0", "v1"),
        extended=("v1",),
        name="group-3-kill9",
        proves="three bridges in one group, one kill -9'd while producing",
        check=_no_errors,
        act=_group_kill(3),
        budget_s=lambda p: 110,
        emulator_faults={"latency_s": 0.1},
    )
    out += _each_api(
        ("v0", "v1"),
        name="rolling-restart",
        proves="three bridges, SIGTERM one at a time (each replaced) while producing: each exits 0 after "
        "its drain, nothing lost, order kept",
        check=_no_errors,
        act=_rolling_restart,
        budget_s=lambda p: 150,
        emulator_faults={"latency_s": 0.1},
    )
    out += _each_api(
        name="slow-upstream",
        proves="replies taking seconds with 8-record buffers and a 10 s max.poll.interval: one "
        "assignment, no revocation (no rebalance loop, no poll-interval kick-out)",
        act=_slow_upstream,
        check=_checks(_no_errors, _no_rebalance),
        budget_s=lambda p: 40 * p.slow_latency_s + 60,
        settle_s=120,
        bridge_env={
            "BRIDGE_MAX_BUFFERED_RECORDS": "8",
            "BRIDGE_KAFKA_MAX_POLL_INTERVAL_MS": "10000",
            "BRIDGE_REPLY_TIMEOUT_S": "15",
        },
    )
    out += _each_api(
        name="poison",
        proves="the v0 malformed corpus through the broker: each its own code, in order, "
        "good records on other streams unaffected",
        act=_poison,
        check=_poison_codes,
        budget_s=lambda p: 60,
        bridge_env={"BRIDGE_MAX_RECORD_BYTES": "1000000"},
    )
    out += _each_api(
        ("v1",),
        name="poison",
        proves="v1: odd-length PCM, bad rate parameters, truncated MP3, corrupt JPEG, a 50 MP image, "
        "zero-length audio, each on its own stream: each its own code; good calls alongside (one with a "
        "non-UTF-8 key, one with a 1,200-header record) measured, no error, the bridge up",
        act=_poison,
        check=_poison_v1_codes,
        budget_s=lambda p: 60,
        bridge_env={"BRIDGE_MAX_RECORD_BYTES": "1000000"},
    )
    out += _each_api(
        ("v0", "v1"),
        name="soak",
        proves="mixed load (v1: paced calls) with Hume messages dropping their connection (v0 5 %, v1 "
        "0.5 %), broker connections reset (5 % each second), latency jitter both ways: every record "
        "accounted for, buffers empty after, RSS slope reported",
        act=_soak,
        check=_checks(_no_errors, _soak_check),
        budget_s=lambda p: p.soak_s + 120,
        settle_s=90,
    )
    out += _each_api(
        ("v0", "v1"),
        name="memory",
        proves="a backlog of 4 s audio chunks (v0 WAV, v1 raw PCM calls) drained from the start: peak RSS "
        "under 256 MiB",
        act=_memory,
        check=_checks(_no_errors, _memory_check),
        budget_s=lambda p: p.memory_mb * 2 + 90,
        settle_s=120,
    )
    out += _each_api(
        name="oversize-outcome",
        proves="an outcome the broker refuses for good (a ~29 MB face prediction over the 16 MiB request "
        "size) becomes an error outcome; its stream and partition go on",
        act=_oversize_outcome,
        budget_s=lambda p: 90,
        settle_s=45,
    )
    out += _each_api(
        name="duplicate-payload-ids",
        proves="twelve in-flight records sharing one producer payload id, 2 requests per session: each "
        "gets its own outcome",
        act=_duplicate_payload_ids,
        budget_s=lambda p: 60,
        settle_s=30,
        bridge_env={
            "BRIDGE_REQUESTS_PER_SESSION": "2",
            "BRIDGE_POOL_SIZE": "1",
            "BRIDGE_REPLY_TIMEOUT_S": "5",
        },
    )
    return out


SCENARIOS: Final[list[Scenario]] = _all()


def select(
    names: list[str], *, known_defects: bool, extended: bool = False, apis: tuple[str, ...] = APIS
) -> list[Scenario]:
    """The scenarios to run: those named (by name or name/api); else, with ``known_defects``, the
    known-defect ones; else the default set (all others but the extended ones, which ``extended``
    adds). Raises ``KeyError`` on an unknown name."""
    pool = [s for s in SCENARIOS if s.api in apis]
    if names:
        known = {s.name for s in pool} | {s.id for s in pool}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise KeyError(", ".join(unknown))
        return [s for s in pool if s.name in names or s.id in names]
    if known_defects:
        return [s for s in pool if s.known_defect is not None]
    return [s for s in pool if s.known_defect is None and (extended or not s.extended)]
