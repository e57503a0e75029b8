"""A real SMTP server on 127.0.0.1 for tests and benchmarks (aiosmtpd), with chosen misbehaviour.

Run as a script for benchmarks: `python tests/smtp_server.py [--port N] [--delay S] [--pipelining]` prints
the port.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    def parsed(self) -> Any:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class Behaviour:
    """What the server does: replies per recipient, login, delays, dropped connections."""

    replies: dict[str, str] = field(default_factory=dict)  # recipient -> reply at RCPT, e.g. "550 5.1.1 User unknown"
    replies_times: dict[str, int] = field(
        default_factory=dict
    )  # recipient -> answer the reply this many times, then accept
    data_replies: dict[str, str] = field(default_factory=dict)  # recipient -> reply at end of DATA
    user: str | None = None
    password: str | None = None
    delay: float = 0.0  # seconds before each reply to MAIL, RCPT and DATA
    # drop the connection (no reply) at RCPT after this many accepted messages, once: before the message goes
    drop_after: int | None = None
    # drop the connection after the whole message of these arrived, before replying, the first time: the
    # sender cannot know whether it was taken (this server keeps nothing)
    drop_on_data: set[str] = field(default_factory=set)
    # the reply to every RCPT while set (a relay that refuses everyone alike); may be changed while running
    reject_all: str | None = None
    # keep the whole message of these recipients, then hold the reply back (a minute): a sender killed meanwhile
    # has handed the message over without learning so
    hold_reply: set[str] = field(default_factory=set)
    # advertise PIPELINING (RFC 2920) after EHLO
    pipelining: bool = False


class Handler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.answered: dict[str, int] = {}
        self.dropped: set[str] = set()
        self.drop_done = False
        self.rcpt_count = 0  # RCPT commands seen, accepted or not
        self.rcpt_addresses: list[str] = []  # their addresses, in order
        self.ehlo_names: list[str] = []  # the name each EHLO gave, in order
        # per MAIL command, in order: whether its RCPT and DATA had already arrived when MAIL was handled
        self.flights: list[bool] = []

    async def _wait(self) -> None:
        if self.b.delay:
            await asyncio.sleep(self.b.delay)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        with self.lock:
            self.ehlo_names.append(hostname)
        if self.b.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # what the client sent after MAIL that the server has not read yet (a private attribute of
        # asyncio's StreamReader, fine in a test server)
        waiting = bytes(getattr(getattr(server, "_reader", None), "_buffer", b"")).upper().split(b"\r\n")
        with self.lock:
            self.flights.append(any(line.startswith(b"RCPT TO:") for line in waiting) and b"DATA" in waiting)
        await self._wait()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._wait()
        with self.lock:
            self.rcpt_count += 1
            self.rcpt_addresses.append(address)
            drop = self.b.drop_after is not None and not self.drop_done and len(self.messages) >= self.b.drop_after
            self.drop_done = self.drop_done or drop
        if drop:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "421 dropped"
        if self.b.reject_all is not None:
            return self.b.reject_all
        reply = self.b.replies.get(address)
        if reply is not None:
            times = self.b.replies_times.get(address)
            with self.lock:
                count = self.answered.get(address, 0)
                self.answered[address] = count + 1
            if times is None or count < times:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._wait()
        to = envelope.rcpt_tos[0]
        with self.lock:
            drop = to in self.b.drop_on_data and to not in self.dropped
            if drop:
                self.dropped.add(to)
        if drop:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "421 dropped"
        if to in self.b.data_replies:
            return self.b.data_replies[to]
        data = envelope.original_content or b""
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        if to in self.b.hold_reply:
            await asyncio.sleep(60)
        return "250 2.0.0 Message accepted"


class CountingSMTP(SMTP):
    connections = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        type(self).connections += 1
        super().connection_made(transport)


class TestServer(Controller):
    """aiosmtpd on 127.0.0.1 with a free port; `.messages` holds what it accepted."""

    __test__ = False

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.handler_ = Handler(self.behaviour)
        self.counter: type[CountingSMTP] = type("Counter", (CountingSMTP,), {"connections": 0})
        kwargs: dict[str, Any] = {}
        if self.behaviour.user is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        if tls_context is not None and not implicit_tls:
            kwargs.update(tls_context=tls_context, require_starttls=False)
        super().__init__(
            self.handler_,
            hostname="127.0.0.1",
            port=port or _free_port(),
            ssl_context=tls_context if implicit_tls else None,
            server_hostname="localhost",
            ready_timeout=10,
            **kwargs,
        )

    def start(self) -> None:
        super().start()
        self.counter.connections = 0  # the controller's own readiness check is not a client

    def factory(self) -> SMTP:
        return self.counter(self.handler, **self.SMTP_kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.behaviour.user
            and data.password.decode() == self.behaviour.password
        )
        return AuthResult(success=ok, handled=False)

    def _trigger_server(self) -> None:
        # Controller checks readiness with a plain connection; with implicit TLS that would fail.
        if self.ssl_context is None:
            super()._trigger_server()  # type: ignore[no-untyped-call]
        else:
            import socket

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with socket.create_connection((self.hostname, self.port), 5) as raw, context.wrap_socket(raw) as tls:
                tls.recv(1024)

    @property
    def messages(self) -> list[Received]:
        with self.handler_.lock:
            return list(self.handler_.messages)

    @property
    def ehlo_names(self) -> list[str]:
        with self.handler_.lock:
            return list(self.handler_.ehlo_names)

    @property
    def pipelined_flights(self) -> int:
        """MAIL commands that arrived with their RCPT and DATA in one flight."""
        with self.handler_.lock:
            return sum(self.handler_.flights)

    @property
    def mail_commands(self) -> int:
        with self.handler_.lock:
            return len(self.handler_.flights)

    @property
    def connections(self) -> int:
        return int(self.counter.connections)

    def recipients(self) -> list[str]:
        return sorted(m.to for m in self.messages)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--pipelining", action="store_true", help="advertise PIPELINING after EHLO")
    args = parser.parse_args()
    server = TestServer(Behaviour(delay=args.delay, pipelining=args.pipelining), port=args.port)
    server.handler_.messages = _Discard()
    server.start()
    print(server.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


class _Discard(list[Received]):
    """Benchmarks count messages but do not keep them."""

    received = 0

    def append(self, item: Received) -> None:
        self.received += 1

    def __len__(self) -> int:
        return self.received


if __name__ == "__main__":
    main()
