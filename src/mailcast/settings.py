"""What the command line reads from the environment once and hands to the core: clock, zone, stop flag."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo


class StopRequest:
    """A flag a signal handler sets and the workers read. Unlike threading.Event it takes no lock,
    so a second signal arriving while the first handler runs cannot deadlock it."""

    def __init__(self) -> None:
        self._requested = False

    def set(self) -> None:
        self._requested = True

    def is_set(self) -> bool:
        return self._requested


@dataclass
class Settings:
    """What the CLI reads from the environment once and hands to the core."""

    clock: Callable[[], datetime]
    zone: tzinfo
    # where transport.password_env is looked up; at a terminal the CLI adds a password typed at its prompt
    env: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    # Set on Ctrl-C, SIGTERM or SIGHUP: messages in flight are finished and recorded, nothing new starts
    stop: StopRequest = field(default_factory=lambda: StopRequest())
