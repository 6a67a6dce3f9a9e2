"""``hume-bridge bench``: throughput, latency and memory of the bridge, each as a ratio to reference
pipelines measured in the same run (DESIGN.md, Performance).

Modules, in the order a run uses them::

    runner      the plan (quick, full), the scenarios and the JSON results
    procs       the emulator, the bridge and the references as subprocesses; HTTP; peak RSS
    kafka       topics, the workload's records, backlogs, the paced producer, reading outputs back
    references  passthrough, bare pipeline and naive bridge (``python -m bridge.tools.benchmark.references``)
    measure     pure arithmetic: rates from timestamps, percentiles, ratios, profile summaries
    report      the printed tables

The bridge never imports this package.
"""
