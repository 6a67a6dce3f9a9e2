"""``hume-bridge bench [--quick] [--json PATH]``: measure the bridge against reference pipelines on an
embedded broker and the emulator, print a table and write the figures as JSON (see docs/PERFORMANCE.md).
The machinery lives in :mod:`bridge.tools.benchmark`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from aiokafka.errors import KafkaError

from bridge.tools.benchmark.procs import BenchError
from bridge.tools.benchmark.report import render
from bridge.tools.benchmark.runner import Plan, run_bench
from bridge.tools.embedded import EmbeddedBrokerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="about two minutes: smaller backlogs, a 200 MiB memory backlog"
    )
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), metavar="PATH", help="default: %(default)s"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help="also run the bridge under py-spy on the zero-latency backlog; raw stacks to PATH",
    )
    parser.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="a Kafka cluster to measure against instead of the embedded broker (fresh topics are created)",
    )
    parser.epilog = "Every figure is measured in the same run; see docs/PERFORMANCE.md for the method."


def _say(text: str) -> None:
    print(text, flush=True)


def main(args: argparse.Namespace) -> int:
    plan = Plan.quick() if args.quick else Plan.full()
    try:
        results = asyncio.run(run_bench(plan, _say, profile=args.profile, bootstrap=args.bootstrap))
    except (BenchError, EmbeddedBrokerError, KafkaError, OSError) as exc:
        print(f"hume-bridge bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hume-bridge bench: interrupted", file=sys.stderr)
        return 130
    print()
    print(render(results))
    args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"figures written to {args.json}")
    return 0
