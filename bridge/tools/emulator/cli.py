"""``hume-bridge emulator``: serve the Hume emulator (v0 and v1 on one port) until SIGINT or SIGTERM.

Prints ``emulator listening on ws://H:P/v0/stream/models``, ``emulator admin on http://H:A`` (when
``--admin-port`` is given), then ``emulator v1 on http://H:P/v1/expression and ws://H:P/v1/expression`` to
stdout, flushed, once it accepts connections; exits 0 on a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from bridge.tools.emulator.faults import Faults, FaultsError
from bridge.tools.emulator.server import Emulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("server")
    net.add_argument("--port", type=int, default=0, help="WebSocket port (0 = a free port; default 0)")
    net.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    net.add_argument("--api-key", default=None, help="accept only this key (default: accept any key)")
    net.add_argument("--admin-port", type=int, default=None, help="serve the HTTP admin endpoint (0 = free)")
    f = parser.add_argument_group("faults (all changeable at run time over the admin endpoint)")
    f.add_argument("--latency-ms", type=float, default=0.0, help="delay of every reply")
    f.add_argument("--jitter-ms", type=float, default=0.0, help="plus a uniform random extra in [0, J)")
    f.add_argument("--drop-probability", type=float, default=0.0, help="abort the TCP connection per message")
    f.add_argument(
        "--drop-at-message", type=int, default=None, metavar="N", help="abort on each N-th message"
    )
    f.add_argument("--drop-limit", type=int, default=None, metavar="N", help="at most N drops in all")
    f.add_argument("--close-after", type=int, default=None, metavar="N", help="close after N messages")
    f.add_argument("--close-after-code", type=int, default=1000, help="close code for --close-after")
    f.add_argument("--idle-timeout-s", type=float, default=60.0, help="close idle connections (0 = never)")
    f.add_argument("--idle-close-code", type=int, default=1000, help="close code for the idle timeout")
    f.add_argument("--max-connections", type=int, default=None, help="cap on concurrent connections")
    f.add_argument("--max-connections-status", type=int, default=429, help="HTTP status beyond the cap")
    f.add_argument("--handshake-rate", type=float, default=None, metavar="N", help="handshakes per second")
    f.add_argument("--refuse-all-keys", action="store_true", help="refuse every handshake with 401")
    f.add_argument("--out-of-credits", action="store_true", help="answer every payload with E0300")
    f.add_argument("--out-of-order", action="store_true", help="reply to pipelined requests out of order")
    f.add_argument("--top-level-warnings", action="store_true", help="top-level instead of nested warnings")
    f.add_argument("--seed", type=int, default=0, help="seed of jitter, drops and job ids")
    v1 = parser.add_argument_group("v1 (faults and settings of the v1 endpoints; the flags above apply too)")
    v1.add_argument("--v1-handshake-status", type=int, default=None, metavar="S", help="refuse v1 handshakes")
    v1.add_argument(
        "--max-sessions-per-key", type=int, default=None, metavar="N", help="concurrent v1 sessions"
    )
    v1.add_argument(
        "--server-shutdown-after-s", type=float, default=None, metavar="S", help="end sessions at S s"
    )
    v1.add_argument("--server-shutdown-close-code", type=int, default=1012, help="close code of a shutdown")
    v1.add_argument(
        "--error-close-code", type=int, default=1008, help="close code after a session-ending error"
    )
    v1.add_argument(
        "--audio-internal-errors", type=int, default=0, metavar="N", help="fail the next N frames"
    )
    v1.add_argument(
        "--audio-internal-error-at-frame", type=int, default=None, metavar="N", help="per session"
    )
    v1.add_argument(
        "--video-internal-errors", type=int, default=0, metavar="N", help="fail the next N frames"
    )
    v1.add_argument(
        "--video-internal-error-final", action="store_true", help="video internal errors are not retryable"
    )
    v1.add_argument("--upload-busy", action="store_true", help="answer uploads 503 server_busy")
    v1.add_argument("--upload-retry-after-s", type=int, default=1, help="Retry-After of server_busy")
    v1.add_argument("--audio-burst-ms", type=float, default=1000.0, help="audio pacing bucket (ms of audio)")
    v1.add_argument("--video-burst-frames", type=float, default=3.0, help="video pacing bucket (frames)")
    v1.add_argument("--pace-factor", type=float, default=1.0, help="pacing this many times real time")
    v1.add_argument(
        "--speech-threshold-dbfs", type=float, default=-40.0, help="speech level of a 20 ms window"
    )
    v1.add_argument("--speech-hangover-ms", type=int, default=500, help="silence that ends an utterance")
    v1.add_argument("--record-audio", action="store_true", help="keep every session's accepted audio")


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The faults the flags ask for; :class:`FaultsError` names every bad flag."""
    changes: dict[str, Any] = {
        "latency_s": args.latency_ms / 1000.0,
        "jitter_s": args.jitter_ms / 1000.0,
        "drop_probability": args.drop_probability,
        "drop_at_message": args.drop_at_message,
        "drop_limit": args.drop_limit,
        "close_after_messages": args.close_after,
        "close_after_code": args.close_after_code,
        "idle_timeout_s": args.idle_timeout_s if args.idle_timeout_s > 0 else None,
        "idle_close_code": args.idle_close_code,
        "max_connections": args.max_connections,
        "max_connections_status": args.max_connections_status,
        "handshake_rate_per_s": args.handshake_rate,
        "refuse_all_keys": args.refuse_all_keys,
        "out_of_credits": args.out_of_credits,
        "out_of_order": args.out_of_order,
        "top_level_warnings": args.top_level_warnings,
        "seed": args.seed,
        "v1_handshake_status": args.v1_handshake_status,
        "max_sessions_per_key": args.max_sessions_per_key,
        "server_shutdown_after_s": args.server_shutdown_after_s,
        "server_shutdown_close_code": args.server_shutdown_close_code,
        "error_close_code": args.error_close_code,
        "audio_internal_errors": args.audio_internal_errors,
        "audio_internal_error_at_frame": args.audio_internal_error_at_frame,
        "video_internal_errors": args.video_internal_errors,
        "video_internal_error_retryable": not args.video_internal_error_final,
        "upload_busy": args.upload_busy,
        "upload_retry_after_s": args.upload_retry_after_s,
        "audio_burst_ms": args.audio_burst_ms,
        "video_burst_frames": args.video_burst_frames,
        "pace_factor": args.pace_factor,
        "speech_threshold_dbfs": args.speech_threshold_dbfs,
        "speech_hangover_ms": args.speech_hangover_ms,
    }
    faults = Faults()
    faults.update(changes)
    return faults


async def serve(args: argparse.Namespace, faults: Faults) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        faults=faults,
        admin_port=args.admin_port,
        record_audio=args.record_audio,
    ) as emu:
        print(f"emulator listening on {emu.url}", flush=True)
        if emu.admin_url is not None:
            print(f"emulator admin on {emu.admin_url}", flush=True)
        print(f"emulator v1 on {emu.http_url}/v1/expression and {emu.ws_base_url}/v1/expression", flush=True)
        await stop.wait()


def main(args: argparse.Namespace) -> int:
    try:
        faults = faults_from_args(args)
    except FaultsError as exc:
        print(f"hume-bridge emulator: invalid fault settings: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, faults))
    except OSError as exc:
        print(f"hume-bridge emulator: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
