"""Delivery into a local Maildir: written to tmp/, then renamed into new/ (atomic)."""

from __future__ import annotations

import mailbox
from collections.abc import Sequence
from pathlib import Path

from mailcast.errors import ConfigError
from mailcast.transports.base import Delivery


class MaildirConnection:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.box = mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the Maildir {path}: {exc.strerror}",
                hint="Check transport.path: its folder must be writable.",
            ) from None

    def send(self, sender: str, recipient: str, message: bytes, *, also: Sequence[str] = ()) -> Delivery:
        """One copy in the Maildir, whoever else the message is for (`also`: Cc and Bcc)."""
        try:
            self.box.add(message.replace(b"\r\n", b"\n"))
        except OSError as exc:
            return Delivery("deferred", None, f"cannot write to the Maildir {self.path}: {exc.strerror}")
        return Delivery("sent", None, f"delivered to Maildir {self.path}")

    def close(self) -> None:
        self.box.close()
