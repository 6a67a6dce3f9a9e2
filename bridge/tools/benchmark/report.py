"""The printed report: the results as plain-text tables, and what each figure means."""

from __future__ import annotations

from typing import Any

METHOD = """\
How to read this. Every figure comes from this run, on this machine, against one broker and one emulator
process; the bridge and each reference run one at a time, each as a process of its own.
- Throughput: output records per second between the 10th and the 90th percentile of their timestamps
  (start-up and tail left out). At zero latency the pipelines are CPU-bound and vary from pass to pass on a
  small machine: the bare pipeline and the bridge take turns and the best pass of each counts. CPU ms/record
  (the process's own user + system time per output after its first) is the steadier figure.
- Added latency: per record, from the moment the pipeline fetched the input record to the moment it handed
  the output to its producer (the bridge's latency_ms), minus the emulator's configured latency; paced at a
  light load (a burst fits in half the pool) and at half the bridge's throughput; the first tenth of each
  phase is left out. The embedded broker holds a fetch for fetch_max_wait_ms (100 ms, the bridge's default)
  unless data is there when it arrives, so records reach every consumer in bursts of up to 100 ms' worth; at
  half load a burst is larger than the requests in flight and waits in the pipeline, which is much of what
  the half-load figures show, for the bare pipeline too. e2e: input record timestamp to output record
  timestamp (whole milliseconds), broker hops included.
- Peak RSS: the kernel's high-water mark (VmHWM) of the bridge process."""


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,.{digits}f}"


def _line(cells: list[str], widths: list[int]) -> str:
    out = [cells[0].ljust(widths[0])]
    out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join(out).rstrip()


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["scenarios"]
    zero, slow, backlog = s["zero_latency"], s["latency_100ms"], s["backlog"]
    lines = [
        f"hume-bridge bench ({results['mode']}) - {m['cpus']} CPUs, Python {m['python']}, broker: "
        f"{results['broker']}; the emulator, the bridge and each reference in a process of its own",
        "",
    ]
    widths = [40, 12, 12, 14]
    lines.append(_line(["throughput", "records/s", "bridge / it", "CPU ms/record"], widths))
    for title, sc, note in (
        ("zero-latency emulator", zero, ""),
        (f"{sc_ms(slow)} ms emulator", slow, " *"),
    ):
        refs = sc["references_rps"]
        cpu = sc["cpu_ms_per_record"]
        passes = len(sc["passes_rps"]["bridge"])
        best = f", best of {passes} passes" if passes > 1 else ""
        lines.append(
            f"{title}: {sc['record_bytes']} B text, {sc['sessions']} sessions x "
            f"{sc['inflight_per_session']} in flight, {sc['records']:,} records{best}"
        )
        lines.append(_line(["  bridge", _num(sc["throughput_rps"]), "", _num(cpu["bridge"], 3)], widths))
        rows = [
            (
                "  passthrough (Kafka ceiling)" + note,
                refs["passthrough"],
                sc["ratio_to_passthrough"],
                "passthrough",
            ),
            ("  bare pipeline", refs["bare"], sc["ratio_to_bare"], "bare"),
            ("  naive bridge", refs["naive"], sc["ratio_to_naive"], "naive"),
        ]
        if refs["littles_law"] is not None:
            rows.insert(0, ("  Little's-law bound", refs["littles_law"], sc["ratio_to_littles_law"], ""))
        for name, rate, ratio, key in rows:
            used = cpu.get(key) if key and not (key == "passthrough" and note) else None
            lines.append(_line([name, _num(rate), _num(ratio, 3), _num(used, 3) if key else ""], widths))
    lines.append("  * the passthrough involves no emulator: measured once, in the zero-latency scenario")
    lines.append("")
    widths = [22, 7, 8, 8, 8, 8, 8, 8, 8, 8]
    lines.append("latency over the emulator's own, ms: fetched -> output handed to the producer (p50, p99);")
    lines.append("e2e: input record timestamp -> output record timestamp, broker hops included")
    lines.append(
        _line(["", "rate/s", "bridge", "p99", "bare", "p99", "e2e", "p99", "bare e2e", "p99"], widths)
    )
    for title, sc in (("zero-latency", zero), (f"{sc_ms(slow)} ms", slow)):
        for load, prefix in (("light", "light_load_"), ("half", "")):
            rate_key = (prefix or "half_load_") + "rps"
            lines.append(
                _line(
                    [
                        f"  {title}, {load}",
                        _num(sc[rate_key], 0),
                        *(
                            _num(sc[f"{prefix}{k}"], 1)
                            for k in (
                                "added_latency_p50_ms",
                                "added_latency_p99_ms",
                                "bare_added_latency_p50_ms",
                                "bare_added_latency_p99_ms",
                                "e2e_latency_p50_ms",
                                "e2e_latency_p99_ms",
                                "bare_e2e_latency_p50_ms",
                                "bare_e2e_latency_p99_ms",
                            )
                        ),
                    ],
                    widths,
                )
            )
    lines.append("")
    reduced = " (reduced for --quick; the full run drains 1 GiB)" if backlog["reduced_backlog"] else ""
    lines.append(
        f"memory: a backlog of {backlog['backlog_mb']:,.0f} MiB in {backlog['record_bytes']:,}-byte WAV "
        f"records{reduced}; bridge buffer cap {backlog['max_buffered_bytes'] // (1024 * 1024)} MiB"
    )
    lines.append(
        f"  bridge peak RSS {_num(backlog['peak_rss_mb'])} MiB while draining {backlog['drained']:,}/"
        f"{backlog['records']:,} records in {backlog['bridge_seconds']} s ({_num(backlog['throughput_rps'])}"
        " records/s)"
    )
    lines.append(
        f"  (peak RSS in the 4 KB throughput runs: zero-latency {_num(zero['peak_rss_mb'])} MiB, "
        f"{sc_ms(slow)} ms {_num(slow['peak_rss_mb'])} MiB)"
    )
    if results.get("scaling"):
        lines.append("")
        widths = [10, 14, 12, 12, 12, 12]
        lines.append(f"scaling with sessions at {sc_ms(slow)} ms (1 request in flight per session)")
        lines.append(
            _line(["sessions", "Little's law", "bridge", "bare", "bridge/LL", "bridge/bare"], widths)
        )
        for row in results["scaling"]:
            lines.append(
                _line(
                    [
                        f"  {row['sessions']}",
                        _num(row["littles_law_rps"]),
                        _num(row["throughput_rps"]),
                        _num(row["bare_rps"]),
                        _num(row["ratio_to_littles_law"], 3),
                        _num(row["ratio_to_bare"], 3),
                    ],
                    widths,
                )
            )
    if results.get("profile"):
        p = results["profile"]
        lines.append("")
        lines.append(
            f"profile of the bridge (py-spy {' '.join(p['py_spy_options'])}; {p['samples']} samples, "
            f"{p['path']})"
        )
        lines.append("  by task (what the event loop was running), % of samples:")
        for name, pct in p["tasks"][:10]:
            lines.append(f"    {pct:5.1f}  {name}")
        lines.append("  by frame (own time), % of samples:")
        for name, pct in p["self"][:10]:
            lines.append(f"    {pct:5.1f}  {name}")
    lines.append("")
    lines.append("targets (reported, not asserted)")
    for t in results["targets"]:
        mark = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        lines.append(f"  {t['target']}: {_num(t['value'], 3)} (goal {t['goal']}) - {mark}")
    lines.append("")
    lines.append(METHOD)
    lines.append(f"total {results['seconds']} s")
    return "\n".join(lines)


def sc_ms(scenario: dict[str, Any]) -> str:
    return f"{scenario['emulator_latency_ms']:g}"
