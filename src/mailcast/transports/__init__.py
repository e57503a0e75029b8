"""Transports: persistent SMTP connections and local Maildir delivery."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path

from mailcast.campaign import MaildirTransport, SmtpTransport
from mailcast.transports.base import Connection, Delivery

__all__ = ["Connection", "Delivery", "open_connection"]


def open_connection(
    config: SmtpTransport | MaildirTransport,
    *,
    folder: Path,
    password: str | None,
    ssl_context: ssl.SSLContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 4,
    should_stop: Callable[[], bool] = lambda: False,
) -> Connection:
    """Open one connection; raises ServerUnavailableError (69), LoginRefusedError (77) or ConfigError (78)."""
    if isinstance(config, MaildirTransport):
        from mailcast.transports.maildir import MaildirConnection

        return MaildirConnection((folder / config.path).resolve())
    from mailcast.transports.smtp import SmtpConnection

    return SmtpConnection(
        config,
        password=password,
        ssl_context=ssl_context,
        ca_file=(folder / config.ca_file).resolve() if config.ca_file else None,
        sleep=sleep,
        max_attempts=max_attempts,
        should_stop=should_stop,
    )
