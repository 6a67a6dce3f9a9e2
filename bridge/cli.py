"""``hume-bridge``: one command, five sub-commands. Each lives in its own module and is imported lazily
so that ``hume-bridge run`` never loads the emulator, the benchmark or the demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

# sub-command -> (module, one-line help). Each module provides add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.app", "run the service; configuration from the environment"),
    "demo": ("bridge.tools.demo", "run everything locally on an embedded broker and the Hume emulator"),
    "emulator": (
        "bridge.tools.emulator.cli",
        "serve a local Hume emulator with switchable faults",
    ),
    "produce": ("bridge.tools.produce", "feed media files into the input topic as a producer would"),
    "bench": ("bridge.tools.bench", "measure throughput and latency against reference pipelines"),
    "chaos": ("bridge.tools.chaos.runner", "run the fault suite against real processes; table and JSON"),
}


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(COMMANDS[name][0]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hume-bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            _load(name).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    return _load(args.command).main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
