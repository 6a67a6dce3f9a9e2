"""The fault suite (``hume-bridge chaos``, ``make chaos``): scenarios against real processes (the embedded
broker, the emulator and bridges as subprocesses, fault proxies between them), each ending in one
accounting check. See docs/RELIABILITY.md.

``proxy`` the fault-injecting TCP proxy · ``broker`` the freezable broker · ``kafka`` the independent
Kafka client · ``rig`` one scenario's processes · ``scenarios`` what each does · ``accounting`` the check ·
``report`` verdicts, table, JSON · ``runner`` the command · ``corpus`` the v0 malformed-input corpus.
"""
