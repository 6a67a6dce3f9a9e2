"""``hume-bridge``: one command with a sub-command per job. Each sub-command lives in its own module and is
imported only when asked for, so that ``hume-bridge run`` never loads the emulator, the benchmark or the demo.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Protocol, cast

import structlog

from bridge import config as config_mod
from bridge import log as log_mod

DESCRIPTION = (
    "Kafka media records in, Hume expression measurements out: at least once, in order per stream. "
    "Locally: `broker`, `emulator` and `run` in three terminals, then `produce` and `tail` (see the README)."
)
EPILOG = (
    "`hume-bridge COMMAND --help` shows a command's options; `hume-bridge run --help` lists every setting."
)

# sub-command -> (module, one-line help). Each module provides add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.app", "the service; settings from the environment (see run --help)"),
    "demo": ("bridge.tools.demo", "the whole pipeline on this machine, on sample media"),
    "broker": ("bridge.tools.broker", "embedded Kafka-protocol broker with the topics, for local runs"),
    "emulator": ("bridge.tools.emulator.cli", "local Hume emulator with switchable faults"),
    "produce": ("bridge.tools.produce", "feed media files into the input topic"),
    "tail": ("bridge.tools.tail", "live view of predictions, errors and warnings"),
    "bench": ("bridge.tools.bench", "throughput and latency against reference pipelines"),
    "chaos": ("bridge.tools.chaos.runner", "the fault suite against real processes; a table and JSON"),
}


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(COMMANDS[name][0]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hume-bridge", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            _load(name).add_arguments(sp)
            if name == "run":
                sp.formatter_class = argparse.RawDescriptionHelpFormatter
                sp.epilog = config_mod.settings_help()
    return parser


def warn_unknown_variables(env: Mapping[str, str]) -> int:
    """Log a warning for each BRIDGE_*/HUME_* variable that is no setting (with the closest known name).

    Logging is configured here at the level the environment asks for (the service configures it again,
    identically, once the configuration has loaded). Returns the number of warnings."""
    unknown = config_mod.unknown_variables(env)
    if not unknown:
        return 0
    level = (env.get("BRIDGE_LOG_LEVEL") or "INFO").strip().upper()
    log_mod.configure(level if level in config_mod.LOG_LEVELS else "INFO")
    log = structlog.get_logger("bridge.config")
    for u in unknown:
        log.warning("unknown_setting", variable=u.name, did_you_mean=u.suggestion, message=str(u))
    return len(unknown)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    if args.command == "run":
        warn_unknown_variables(os.environ)
    return _load(args.command).main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
