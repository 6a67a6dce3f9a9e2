"""v1 CLI flags and admin routes, without sockets."""

from __future__ import annotations

import argparse
import shlex

import pytest

from bridge.tools.emulator import Emulator
from bridge.tools.emulator.admin import route
from bridge.tools.emulator.cli import add_arguments, faults_from_args
from bridge.tools.emulator.faults import FaultsError


def test_v1_flags_become_faults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        shlex.split(
            "--v1-handshake-status 503 --max-sessions-per-key 2 --server-shutdown-after-s 30"
            " --server-shutdown-close-code 1001 --error-close-code 4000 --audio-internal-errors 1"
            " --audio-internal-error-at-frame 5 --video-internal-errors 3 --video-internal-error-final"
            " --upload-busy --upload-retry-after-s 9 --audio-burst-ms 2500 --video-burst-frames 6"
            " --pace-factor 4 --speech-threshold-dbfs -50 --speech-hangover-ms 300 --record-audio"
        )
    )
    f = faults_from_args(args)
    assert (f.v1_handshake_status, f.max_sessions_per_key, f.server_shutdown_after_s) == (503, 2, 30.0)
    assert (f.server_shutdown_close_code, f.error_close_code) == (1001, 4000)
    assert (f.audio_internal_errors, f.audio_internal_error_at_frame, f.video_internal_errors) == (1, 5, 3)
    assert (f.video_internal_error_retryable, f.upload_busy, f.upload_retry_after_s) == (False, True, 9)
    assert (f.audio_burst_ms, f.video_burst_frames, f.pace_factor) == (2500.0, 6.0, 4.0)
    assert (f.speech_threshold_dbfs, f.speech_hangover_ms, args.record_audio) == (-50.0, 300, True)
    with pytest.raises(
        FaultsError, match=r"v1_handshake_status: must be at least 400; pace_factor: must be at least"
    ):
        faults_from_args(parser.parse_args(["--v1-handshake-status", "200", "--pace-factor", "0"]))


def test_v1_admin_routes() -> None:
    emu = Emulator()
    emu.stats.v1.sessions_opened["audio"] = 2
    assert route(emu, "GET", "/v1/stats", b"") == (200, emu.stats.v1.snapshot())
    assert route(emu, "GET", "/v1/runs", b"") == (200, [])
    assert route(emu, "POST", "/v1/shutdown-sessions", b"") == (200, {"sessions": 0})
    status, vocab = route(emu, "POST", "/vocabulary", b'{"face_descriptions": ["new look"]}')
    assert status == 200 and vocab["face_descriptions"][-1] == "new look"
    assert route(emu, "GET", "/vocabulary", b"") == (200, emu.vocabulary.to_dict())
    assert route(emu, "POST", "/vocabulary", b'{"face_descriptions": "x"}') == (
        400,
        {"error": "face_descriptions: must be a list of names"},
    )
    assert route(emu, "POST", "/vocabulary", b"[]")[0] == 400
    assert route(emu, "GET", "/v1/shutdown-sessions", b"")[0] == 405
    route(emu, "POST", "/reset-stats", b"")
    assert emu.stats.v1.sessions_opened == {}
