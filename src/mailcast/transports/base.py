"""What a transport promises the send loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(slots=True)  # made once per message: a frozen dataclass costs more to make
class Delivery:
    status: Literal["sent", "deferred", "failed", "in_doubt"]  # in_doubt: sent whole, the reply lost
    code: int | None
    reply: str
    suppress: bool = False
    attempts: int = 1
    # the message's other envelope recipients (Cc, Bcc) the server refused, as (address, reply); the
    # status is the main recipient's, so a refused Cc does not fail the message
    refused: tuple[tuple[str, str], ...] = ()


class Connection(Protocol):
    """One open connection; the send loop runs one per worker thread."""

    def send(self, sender: str, recipient: str, message: bytes, *, also: Sequence[str] = ()) -> Delivery:
        """Hand one message over for `recipient` (the main one: To) and the envelope recipients `also`
        (its Cc and Bcc addresses)."""
        ...

    def close(self) -> None: ...
