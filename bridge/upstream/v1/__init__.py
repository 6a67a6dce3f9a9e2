"""Hume v1 (realtime sessions per stream), the parts below the adapter seam.

    record bytes ──media.prepare──▶ Pcm16k | Jpeg | VideoFrames        (CPU-bound: run in a worker pool)
    Pcm16k ──Pacer.add_audio──▶ Pacer.due(now) ──▶ RealtimeSession.send_media
    RealtimeSession.events() ──ServerMessages.parse──▶ events ──AudioLedger.on_event──▶ settled, sources
    SessionEnded.verdict (protocol.judge_close) ──▶ restart() and resend, or fail_unsettled()

adapter wires them behind the seam (one session per active stream, one pacing task for all of them);
media, protocol, ledger and pacing are pure (no I/O, no clock: ``now`` is passed in); session is the only
module with a socket.
"""
