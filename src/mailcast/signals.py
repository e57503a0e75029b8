"""Signals during a send: Ctrl-C, SIGTERM (kill, cron's timeout) and SIGHUP (a closed terminal).

The first one asks the send to stop gently (messages in flight finish and are recorded, nothing
new starts); a second Ctrl-C or SIGTERM stops at once; at a prompt, each means no.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mailcast.settings import StopRequest

GENTLE_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill or timeout, a closed terminal


def _installed(handlers: dict[int, Any]) -> dict[int, Any]:
    """Install handlers for the signals not ignored (under nohup, SIGHUP stays ignored); the old ones."""
    return {
        signum: signal.signal(signum, handler)
        for signum, handler in handlers.items()
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


ECHO = 1.0  # seconds: the same signal again this soon is a copy of the first, not a second request


@contextmanager
def stops_gently(stop: StopRequest) -> Iterator[None]:
    """Ctrl-C, SIGTERM (kill, cron's timeout) or SIGHUP (the terminal closed) set `stop`: the send
    finishes and records the messages in flight and starts no new one, so none is left in doubt.
    A second Ctrl-C or SIGTERM stops at once; a second SIGHUP (a closing terminal sends two) is
    ignored, and so is the same signal again within a second: GNU timeout sends its signal to the
    process and to its group, so it arrives twice."""
    first_at: dict[int, float] = {}

    def second(signum: int, frame: object) -> None:
        if time.monotonic() - first_at.get(signum, float("-inf")) < ECHO:
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def first(signum: int, frame: object) -> None:
        stop.set()
        now = time.monotonic()
        first_at.update(dict.fromkeys((int(signal.SIGINT), int(signal.SIGTERM)), now))
        _installed({signal.SIGINT: second, signal.SIGTERM: second, signal.SIGHUP: signal.SIG_IGN})
        again = {
            int(signal.SIGINT): "; Ctrl-C again to stop at once",
            int(signal.SIGTERM): "; a second SIGTERM stops at once",
        }
        with contextlib.suppress(OSError):  # a closed terminal has nowhere to say it
            sys.stderr.write(f"Stopping (messages in flight are finished first{again.get(signum, '')})\n")

    before = _installed(dict.fromkeys(GENTLE_SIGNALS, first))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt inside (at a prompt, they mean no)."""
    before = _installed(dict.fromkeys(GENTLE_SIGNALS, signal.default_int_handler))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
