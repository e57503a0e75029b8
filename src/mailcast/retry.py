"""Retry policy for temporary SMTP failures: pure, so it is tested with plain values."""

from __future__ import annotations


def backoff_delays(max_attempts: int, base: float = 0.5, cap: float = 8.0) -> list[float]:
    """The waits before attempts 2..max_attempts: exponential from `base`, never above `cap`."""
    return [min(base * 2**index, cap) for index in range(max(max_attempts - 1, 0))]


def is_temporary(code: int) -> bool:
    return 400 <= code < 500


def suppresses(code: int, reply: str) -> bool:
    """A permanent failure about the mailbox itself (enhanced status 5.1.x) suppresses the address."""
    return 500 <= code < 600 and reply.lstrip().startswith("5.1.")
