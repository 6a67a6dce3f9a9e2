"""A scenario's result, the verdict on it, the table and the JSON file. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bridge.tools.chaos.accounting import Accounts
from bridge.tools.chaos.rig import ProcessRecord


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    XFAIL = "xfail"  # a known defect, failing as expected
    XPASS = "XPASS"  # a known defect that no longer fails: move it into the default set


@dataclass
class Result:
    scenario: str
    api: str
    proves: str
    wall_s: float
    accounts: Accounts | None
    processes: list[ProcessRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    rss_slope_mb_per_min: float | None = None
    known_defect: str | None = None
    log_dir: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def all_problems(self) -> list[str]:
        out = list(self.problems)
        if self.accounts is None:
            out.append("no accounting (the scenario did not get that far)")
        else:
            out += self.accounts.problems()
        for p in self.processes:
            if p.exit_code not in p.expected:
                out.append(
                    f"{p.name} exited with {p.exit_code}, expected {' or '.join(map(str, p.expected))}"
                )
            if p.tracebacks:
                out.append(f"{p.name} printed {p.tracebacks} traceback(s) ({p.log})")
        return out

    @property
    def verdict(self) -> Verdict:
        failed = bool(self.all_problems())
        if self.known_defect is not None:
            return Verdict.XFAIL if failed else Verdict.XPASS
        return Verdict.FAIL if failed else Verdict.PASS

    def to_dict(self) -> dict[str, Any]:
        a = self.accounts
        return {
            "scenario": self.scenario,
            "api": self.api,
            "proves": self.proves,
            "verdict": str(self.verdict),
            "wall_s": round(self.wall_s, 1),
            "inputs": a.inputs if a else None,
            "outcomes": a.outcomes if a else None,
            "measured": a.measured if a else None,
            "silent": a.silent if a else None,
            "errored": a.errored if a else None,
            "lost": a.lost if a else None,
            "duplicates_below_commit": a.duplicates_below_commit if a else None,
            "duplicates_above_commit": a.duplicates_above_commit if a else None,
            "duplicate_sample": a.duplicate_sample if a else None,
            "order_violations": a.order_violations if a else None,
            "unexpected_outcomes": a.unexpected if a else None,
            "stuck_partitions": a.stuck_partitions if a else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_slope_mb_per_min": None
            if self.rss_slope_mb_per_min is None
            else round(self.rss_slope_mb_per_min, 2),
            "processes": [p.to_dict() for p in self.processes],
            "problems": self.all_problems(),
            "faults": self.notes,
            "known_defect": self.known_defect,
            "log_dir": self.log_dir,
        }


COLUMNS = (
    "scenario",
    "verdict",
    "wall s",
    "inputs",
    "outcomes",
    "lost",
    "dup <c/>=c",
    "order",
    "exits",
    "peak RSS MiB",
    "RSS MiB/min",
)


def _outcomes(a: Accounts) -> str:
    """v0: inputs with an outcome; v1: those settled or errored, as measured+silent+errored."""
    if a.measured is None:
        return str(a.outcomes)
    return f"{a.outcomes} ({a.measured}+{a.silent}+{a.errored})"


def row(r: Result) -> tuple[str, ...]:
    a = r.accounts
    exits = "ok" if all(p.ok for p in r.processes) else "BAD"
    return (
        r.scenario + ("" if r.api == "v0" else f" ({r.api})"),
        str(r.verdict),
        f"{r.wall_s:.0f}",
        str(a.inputs) if a else "-",
        _outcomes(a) if a else "-",
        str(a.lost) if a else "-",
        f"{a.duplicates_below_commit}/{a.duplicates_above_commit}" if a else "-",
        str(a.order_violations) if a else "-",
        exits,
        f"{r.peak_rss_mb:.0f}",
        "-" if r.rss_slope_mb_per_min is None else f"{r.rss_slope_mb_per_min:+.2f}",
    )


def table(results: list[Result]) -> str:
    rows = [COLUMNS, *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: list[Result]) -> str:
    """The same table in Markdown, for docs/RELIABILITY.md."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(out)


def exit_code(results: list[Result]) -> int:
    """0 when every scenario passed or failed as a known defect; 1 otherwise (a failure, or a known
    defect that passes and belongs in the default set)."""
    return 0 if all(r.verdict in (Verdict.PASS, Verdict.XFAIL) for r in results) else 1
