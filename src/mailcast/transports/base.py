"""What a transport promises the send loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Delivery:
    status: Literal["sent", "deferred", "failed", "in_doubt"]  # in_doubt: sent whole, the reply lost
    code: int | None
    reply: str
    suppress: bool = False
    attempts: int = 1


class Connection(Protocol):
    """One open connection; the send loop runs one per worker thread."""

    def send(self, sender: str, recipient: str, message: bytes) -> Delivery: ...

    def close(self) -> None: ...
