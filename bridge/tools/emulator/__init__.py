"""A local emulator of Hume's ``/v0/stream/models`` WebSocket streaming API, for tests, demo and benchmark.

It validates requests as Hume does, inspects the real media (durations, image sizes, text lengths), answers
with deterministic predictions in Hume's exact shapes, keeps the per-connection audio window, and can be
told to misbehave (latency, drops, closes, idle timeouts, refused keys, rate limits, out of credits,
out-of-order replies) from Python, from the command line or over a small HTTP admin endpoint.

Modules, in the order a frame travels::

    server       asyncio/websockets shell: handshake checks, per-connection tasks, faults, stats
    protocol     pure: request validation, the per-connection session (audio window), reply building
    media        pure: sniffing and measuring the media in ``data``
    predictions  pure: deterministic scores and Hume's prediction shapes
    labels       Hume's label sets
    faults       the switchable faults and the pure decisions on them
    stats        statistics and the request log
    admin        the HTTP admin endpoint
    cli          ``hume-bridge emulator``

See docs/EMULATOR.md. The bridge never imports this package.
"""

from bridge.tools.emulator.faults import Faults, FaultsError
from bridge.tools.emulator.server import PATH, Emulator
from bridge.tools.emulator.stats import RequestLogEntry, Stats

__all__ = ["PATH", "Emulator", "Faults", "FaultsError", "RequestLogEntry", "Stats"]
