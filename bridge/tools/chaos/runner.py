"""``hume-bridge chaos``: run scenarios against real processes, print a table, write JSON.

Each scenario gets its own broker, emulator, proxies, topics and bridges, and a time budget; when the
budget runs out the scenario is stopped and accounted as it stands (a stuck partition shows as such).
Exit status: 0 when every scenario passed (known defects: failed as expected), 1 otherwise, 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import traceback
from dataclasses import fields
from pathlib import Path

import orjson

from bridge.tools.chaos import scenarios as S
from bridge.tools.chaos.report import Result, Verdict, exit_code, markdown, table
from bridge.tools.chaos.rig import Rig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="run this scenario (repeatable; NAME or NAME/API); default: the default set",
    )
    parser.add_argument(
        "--known-defects", action="store_true", help="run the scenarios of known, reported defects instead"
    )
    parser.add_argument(
        "--extended",
        action="store_true",
        help="the default set plus the variants left out of CI for time (marked [extended] in --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    parser.add_argument("--workdir", default=None, help="logs go here (default: a new temporary directory)")
    defaults = S.Params()
    for f in fields(S.Params):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=float,
            default=getattr(defaults, f.name),
            help=f"(default {getattr(defaults, f.name):g})",
        )


async def run_one(scenario: S.Scenario, params: S.Params, workdir: Path) -> Result:
    started = time.monotonic()
    log_dir = workdir / scenario.id.replace("/", "-")
    rig = Rig(
        scenario.name,
        scenario.api,
        log_dir,
        partitions=scenario.partitions,
        bridge_overrides=dict(scenario.bridge_env),
        emulator_faults=dict(scenario.emulator_faults),
    )
    result = Result(
        scenario.name,
        scenario.api,
        scenario.proves,
        0.0,
        None,
        known_defect=scenario.known_defect,
        log_dir=str(log_dir),
    )
    budget = scenario.budget_s(params)
    try:
        async with rig:
            try:
                async with asyncio.timeout(budget):
                    await scenario.act(rig, params)
                    await rig.settle(scenario.settle_s)
                    result.problems += await scenario.check(rig, params)
            except TimeoutError:
                result.problems.append(f"over its time budget of {budget:g}s")
            await rig.note_faults()
            await rig.stop_all()
            await rig.flush(10)
            result.accounts = await asyncio.wait_for(rig.settle(3.0), 30)
            result.peak_rss_mb = rig.peak_rss_mb
            result.rss_slope_mb_per_min = rig.rss_slope_mb_per_min(skip_s=10.0)
    except Exception as exc:
        result.problems.append(f"the scenario broke: {exc!r}")
        (log_dir / "runner-traceback.txt").write_text(traceback.format_exc())
    result.processes = rig.processes()
    result.notes = rig.notes
    result.wall_s = time.monotonic() - started
    return result


async def run_all(selected: list[S.Scenario], params: S.Params, workdir: Path) -> list[Result]:
    results = []
    for scenario in selected:
        print(f"chaos: {scenario.id}: {scenario.proves}", flush=True)
        r = await run_one(scenario, params, workdir)
        print(f"chaos: {scenario.id}: {r.verdict} in {r.wall_s:.0f}s", flush=True)
        for problem in r.all_problems():
            print(f"    {problem}", flush=True)
        results.append(r)
    return results


def main(args: argparse.Namespace) -> int:
    if args.list:
        for s in S.SCENARIOS:
            tag = "  [known defect]" if s.known_defect else "  [extended]" if s.extended else ""
            print(f"{s.id:32} {s.proves}{tag}")
        return 0
    try:
        selected = S.select(args.scenario, known_defects=args.known_defects, extended=args.extended)
    except KeyError as exc:
        print(f"hume-bridge chaos: unknown scenario(s): {exc.args[0]} (see --list)", file=sys.stderr)
        return 2
    params = S.Params(**{f.name: getattr(args, f.name) for f in fields(S.Params)})
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hume-chaos-"))
    started = time.monotonic()
    results = asyncio.run(run_all(selected, params, workdir))
    wall = time.monotonic() - started
    print()
    print(table(results))
    if args.markdown:
        print()
        print(markdown(results))
    print(f"\n{len(results)} scenario(s) in {wall:.0f}s; logs in {workdir}")
    for r in results:
        if r.verdict is Verdict.XPASS:
            print(f"{r.scenario}: the known defect no longer shows; move it into the default set")
    if args.json:
        doc = {"wall_s": round(wall, 1), "params": vars(params), "results": [r.to_dict() for r in results]}
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return exit_code(results)
