"""The publish retry policy: what to do when the broker does not take an output.

- Refused for good (over a size limit, an invalid record): retrying cannot help, so the output is
  replaced by an error output for the same records, OUTPUT_TOO_LARGE (with the size) or OUTPUT_REFUSED.
  If even that error output is refused, it is retried on the longest backoff: only its stream waits.
- Transient: published again after a jittered backoff that grows per output, so only its stream waits;
  the shared publish loop never sleeps.
Pure: ``now`` and the randomness are passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.core.backoff import Backoff
from bridge.core.model import ErrorInfo, Origin, Output
from bridge.errors import Code, PublishError, PublishRefused


@dataclass(frozen=True, slots=True)
class Replace:
    """Publish this error output in place of the refused one."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Publish the same output again at ``at``."""

    at: float


def decide(
    output: Output, failure: PublishError, now: float, backoff: Backoff, rnd: random.Random, limit: int
) -> Replace | RetryAt:
    if isinstance(failure, PublishRefused) and output.error is None:
        size = f"{failure.size} bytes" if failure.size is not None else "its size"
        if failure.too_large:
            message = (
                f"the outcome is {size}, over the largest record the producer or broker takes "
                f"({limit} bytes, BRIDGE_KAFKA_MAX_REQUEST_BYTES): {failure.reason}"
            )
            return Replace(ErrorInfo(Code.OUTPUT_TOO_LARGE, message, Origin.BRIDGE, False))
        message = f"the broker refused the outcome ({size}): {failure.reason}"
        return Replace(ErrorInfo(Code.OUTPUT_REFUSED, message, Origin.BRIDGE, False))
    attempt = output.publish_attempts
    output.publish_attempts += 1
    if isinstance(failure, PublishRefused):
        return RetryAt(now + backoff.delay(64, rnd))
    return RetryAt(now + backoff.delay(attempt, rnd))
