"""Faults: validation of run-time changes and the pure decisions (drops, delays, handshake rate)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from bridge.tools.emulator import Faults, FaultsError
from bridge.tools.emulator.cli import add_arguments, faults_from_args
from bridge.tools.emulator.faults import HandshakeLimiter, reply_delay_s, should_drop


def test_defaults_match_the_contract() -> None:
    f = Faults()
    assert (f.latency_s, f.jitter_s, f.drop_probability, f.drop_at_message) == (0.0, 0.0, 0.0, None)
    assert (f.close_after_messages, f.idle_timeout_s, f.idle_close_code, f.max_connections) == (
        None,
        60.0,
        1000,
        None,
    )
    assert (f.handshake_rate_per_s, f.refuse_all_keys, f.out_of_credits, f.out_of_order, f.seed) == (
        None,
        False,
        False,
        False,
        0,
    )


def test_update_applies_valid_changes_and_converts_numbers() -> None:
    f = Faults()
    f.update({"latency_s": 1, "drop_at_message": 3.0, "idle_timeout_s": None, "out_of_order": True})
    assert (f.latency_s, f.drop_at_message, f.idle_timeout_s, f.out_of_order) == (1.0, 3, None, True)
    assert isinstance(f.latency_s, float) and isinstance(f.drop_at_message, int)


def test_update_rejects_everything_when_anything_is_wrong() -> None:
    """Every problem is named and nothing changes."""
    f = Faults()
    with pytest.raises(FaultsError) as exc:
        f.update(
            {
                "latency_s": 0.5,
                "bogus": 1,
                "drop_probability": 1.5,
                "drop_at_message": 1.5,
                "out_of_credits": "yes",
                "idle_close_code": 1006,
                "jitter_s": None,
                "seed": True,
            }
        )
    message = str(exc.value)
    for name in (
        "bogus",
        "drop_probability",
        "drop_at_message",
        "out_of_credits",
        "idle_close_code",
        "jitter_s",
    ):
        assert name in message
    assert "seed: must be an integer" in message
    assert f.latency_s == 0.0


def test_to_dict_round_trips() -> None:
    f = Faults(latency_s=0.2, max_connections=5)
    g = Faults()
    g.update(f.to_dict())
    assert g == f


def test_drop_at_message_and_probability() -> None:
    """The N-th message drops; a draw below the probability drops; the limit stops drops."""
    f = Faults(drop_at_message=3)
    assert [should_drop(f, i, 0.99) for i in (1, 2, 3, 4)] == [False, False, True, False]
    f = Faults(drop_probability=0.25)
    assert should_drop(f, 1, 0.2) and not should_drop(f, 1, 0.25)
    f.drop_limit = 0
    assert not should_drop(f, 1, 0.0)
    assert not should_drop(Faults(), 1, 0.0)


def test_reply_delay_is_latency_plus_jitter_share() -> None:
    f = Faults(latency_s=0.1, jitter_s=0.05)
    assert reply_delay_s(f, 0.0) == 0.1
    assert reply_delay_s(f, 0.5) == pytest.approx(0.125)


def test_handshake_limiter_is_a_token_bucket() -> None:
    """Burst of one second's worth, then the rate; a new rate starts full; None lets all through."""
    limiter = HandshakeLimiter()
    assert [limiter.allow(2.0, 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(2.0, 0.5) and not limiter.allow(2.0, 0.5)
    assert limiter.allow(0.5, 0.5) and not limiter.allow(0.5, 1.0) and limiter.allow(0.5, 2.5)
    assert all(limiter.allow(None, 2.5) for _ in range(100))
    assert not limiter.allow(0.0, 3.0)


def test_cli_flags_become_faults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        shlex.split(
            "--port 0 --latency-ms 250 --jitter-ms 10 --drop-at-message 4 --close-after 9 --idle-timeout-s 0"
            " --max-connections 3 --handshake-rate 5 --out-of-credits --refuse-all-keys --out-of-order"
            " --seed 7 --idle-close-code 4000"
        )
    )
    f = faults_from_args(args)
    assert (f.latency_s, f.jitter_s, f.drop_at_message, f.close_after_messages) == (0.25, 0.01, 4, 9)
    assert (f.idle_timeout_s, f.max_connections, f.handshake_rate_per_s) == (None, 3, 5.0)
    assert (f.out_of_credits, f.refuse_all_keys, f.out_of_order, f.seed, f.idle_close_code) == (
        True,
        True,
        True,
        7,
        4000,
    )
    with pytest.raises(FaultsError, match="drop_probability"):
        faults_from_args(parser.parse_args(["--drop-probability", "2"]))
