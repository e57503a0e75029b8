"""SMTP delivery over a persistent connection, with TLS verification and bounded retries.

One `SmtpConnection` sends many messages over one connection; the send loop runs N of them in
N threads for `connections: N`. Each message ends in one `Delivery`:

- 250: `sent`.
- A 4xx reply, a connection lost before the whole message has gone out (the server then keeps
  nothing), or a lost connection that cannot be opened again: temporary. The message is tried
  again, on a fresh connection when the old one is gone, after a bounded backoff
  (`backoff_delays`), at most `max_attempts` times in all, then reported `deferred`. Once the run
  is stopping, no new attempt starts.
- Another reply: `failed`; a 5.1.x reply (the mailbox itself) also suppresses the address.
- A connection lost after the whole message went out but before the server's reply: the server
  may or may not have taken it, so it is `in_doubt` and never sent again on its own; the row
  stays in doubt, with its Message-ID, until the user checks and sends it again with
  `mailcast send --resend-in-doubt`.
- A reply that refuses mail without a valid login (530, 535, 538) is about the sender, not this
  recipient: it raises LoginRefusedError, since every message would get it.

When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and DATA go in one write and their
replies are read in order, one per command: two round trips a message instead of four or more. Each
reply means the same as without it. A refused MAIL or main RCPT leaves DATA without a valid
recipient, so the server answers it 503 or 554 and no message follows; a server that still answers
354 (a Cc was accepted) gets no message either: the connection is dropped before it (the server
keeps nothing without the final "."), and the next message opens a new one.

The retry policy is pure functions, tested with plain values and no sleeping.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from mailcast.campaign import SmtpTransport, ehlo_name_problem
from mailcast.errors import ConfigError, LoginRefusedError, ServerUnavailableError
from mailcast.transports.base import Delivery

AUTH_REPLIES = (530, 535, 538)  # authentication required / credentials invalid / encryption required for it
ACCEPTED = (250, 251)  # a recipient taken (251: forwarded)


def backoff_delays(max_attempts: int, base: float = 0.5, cap: float = 8.0) -> list[float]:
    """The waits before attempts 2..max_attempts: exponential from `base`, never above `cap`."""
    return [min(base * 2**index, cap) for index in range(max(max_attempts - 1, 0))]


def is_temporary(code: int) -> bool:
    return 400 <= code < 500


def suppresses(code: int, reply: str) -> bool:
    """A permanent failure about the mailbox itself (enhanced status 5.1.x) suppresses the address."""
    return 500 <= code < 600 and reply.lstrip().startswith("5.1.")


class _MaybeDelivered(Exception):
    """The message went out whole, but its reply never came."""


def _dot_stuffed(message: bytes) -> bytes:
    """The DATA section as it goes on the wire: leading dots doubled, ended by a line with one dot.
    (mailcast's own messages have none: quoted-printable writes a leading dot as =2E.)"""
    data = re.sub(rb"(?m)^\.", b"..", message) if message.startswith(b".") or b"\n." in message else message
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


class _Envelope(NamedTuple):
    """How the envelope went: the reply that decided it, the Cc and Bcc refused, and whether the
    message itself goes next (DATA answered 354 after MAIL and the main RCPT were accepted)."""

    code: int
    reply: bytes
    refused: tuple[tuple[str, str], ...] = ()
    body_next: bool = False


def _command_group(commands: Sequence[str]) -> str:
    """Commands as one write, each ended by CRLF; a line break inside one would let it smuggle others."""
    for command in commands:
        if "\r" in command or "\n" in command:
            raise ValueError(f"SMTP command contains a line break: {command!r}")
    return "".join(f"{command}\r\n" for command in commands)


def _read_replies(smtp: smtplib.SMTP, count: int) -> tuple[list[tuple[int, bytes]], Exception | None]:
    """Up to `count` replies in order, and what stopped the reading if the connection was lost first."""
    replies: list[tuple[int, bytes]] = []
    try:
        while len(replies) < count:
            replies.append(smtp.getreply())
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
        return replies, exc
    return replies, None


def _envelope_refusal(replies: Sequence[tuple[int, bytes]]) -> tuple[int, bytes] | None:
    """The reply that refused the message among a pipelined group's replies: MAIL's, else the main
    RCPT's (a refused Cc or Bcc refuses only itself)."""
    if replies and replies[0][0] != 250:
        return replies[0]
    if len(replies) > 1 and replies[1][0] not in ACCEPTED:
        return replies[1]
    return None


@functools.cache
def machine_name() -> str:
    """The machine's fully qualified name, looked up once (it may ask DNS)."""
    return socket.getfqdn()


def default_ehlo_name(fqdn: str, local_address: str) -> str:
    """The name mailcast gives after EHLO without transport.helo: the machine's fully qualified name;
    when it has none (no dot, or localhost), the address the connection leaves from, as an address
    literal ([192.0.2.1], [IPv6:2001:db8::1])."""
    if "." in fqdn and fqdn.split(".")[0].lower() != "localhost" and ehlo_name_problem(fqdn) is None:
        return fqdn
    address = ipaddress.ip_address(local_address.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def trust_store(ca_file: Path | None) -> ssl.SSLContext:
    """The context that verifies the server's certificate: the system's CAs, or with transport.ca_file
    only the CAs in that PEM file."""
    if ca_file is None:
        return ssl.create_default_context()
    hint = (
        "Give transport.ca_file the PEM file of the CA that signed the server's certificate "
        "(a path relative to the campaign file)."
    )
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigError(f"transport.ca_file: file {ca_file} not found", hint=hint) from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"transport.ca_file: {ca_file} holds no CA certificate in PEM form ({exc.reason or exc})", hint=hint
        ) from None
    except OSError as exc:
        raise ConfigError(f"transport.ca_file: cannot read {ca_file}: {exc.strerror}", hint=hint) from None


class SmtpConnection:
    def __init__(
        self,
        config: SmtpTransport,
        *,
        password: str | None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.host = config.host
        self.port = config.effective_port
        self.password = password
        self.context = ssl_context  # when given, used as it is; else made from ca_file (transport.ca_file, resolved)
        self.ca_file = ca_file
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.should_stop = should_stop  # true once the run is stopping: no new attempt starts
        self.smtp: smtplib.SMTP | None = None
        self._connect()

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        if self.context is None:
            self.context = trust_store(self.ca_file)
        return self.context

    def _ehlo_name(self, smtp: smtplib.SMTP) -> str:
        if self.config.helo:
            return self.config.helo
        return default_ehlo_name(machine_name(), str(smtp.sock.getsockname()[0]) if smtp.sock else "127.0.0.1")

    def _connect(self) -> None:
        config = self.config
        try:
            # local_hostname given, so smtplib does not look the machine's name up again for each connection
            if config.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, machine_name(), timeout=config.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, machine_name(), timeout=config.timeout)
            try:
                smtp.local_hostname = self._ehlo_name(smtp)  # said at each EHLO, also the one after STARTTLS
                smtp.ehlo()
                if config.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise ConfigError(
                            f"{self.where} does not offer STARTTLS, and transport.security is starttls",
                            hint="mailcast never falls back to plain text: use security: tls if the server "
                            "speaks TLS on connect, or ask the server's admin to enable STARTTLS.",
                        )
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if config.username:
                    smtp.login(config.username, self.password or "")
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise LoginRefusedError(
                f"{self.where} refused the login of {config.username}: {exc.smtp_code} {_text(exc.smtp_error)}",
                hint=f"Check transport.username and the password in ${config.password_env}. Nothing was marked sent.",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ConfigError(
                f"{self.where} does not offer a login (AUTH), but transport.username is set",
                hint="Remove username and password_env, or use the server's submission port (587).",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ServerUnavailableError(
                f"the certificate of {self.where} could not be verified: {exc.verify_message}",
                hint="Check transport.host is the name on the server's certificate, and that transport.ca_file "
                f"({config.ca_file}) holds the CA that signed it."
                if config.ca_file
                else "Check transport.host is the name on the server's certificate; for a server whose "
                "certificate comes from a private CA, give transport.ca_file: the CA's PEM file.",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ServerUnavailableError(
                f"cannot reach the SMTP server {self.where}: {exc}",
                hint="Check transport.host, transport.port and transport.security, and that the server is up.",
            ) from None
        self.smtp = smtp

    def _drop(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError):
                self.smtp.close()
        self.smtp = None

    def _reset(self) -> None:
        """After a message that failed, RSET for the next one; a connection that cannot is dropped."""
        if self.smtp is None:
            return
        try:
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str, also: Sequence[str]) -> _Envelope:
        """MAIL, RCPT and DATA one by one, each waiting for its reply (a server without PIPELINING).
        Addresses go as they are, checked long before: smtplib's own quoting parses each one again."""
        code, reply = smtp.docmd("mail", f"FROM:<{sender}>")
        if code != 250:
            return _Envelope(code, reply)
        code, reply = smtp.docmd("rcpt", f"TO:<{recipient}>")
        if code not in ACCEPTED:
            return _Envelope(code, reply)
        refused: list[tuple[str, str]] = []
        for other in also:  # Cc and Bcc: one refused is noted; the message goes to the others
            other_code, other_reply = smtp.docmd("rcpt", f"TO:<{other}>")
            if other_code not in ACCEPTED:
                refused.append((other, f"{other_code} {_text(other_reply)}"))
        code, reply = smtp.docmd("data")
        return _Envelope(code, reply, tuple(refused), body_next=code == 354)

    def _pipelined_envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str, also: Sequence[str]) -> _Envelope:
        """MAIL, every RCPT and DATA in one write (RFC 2920), then their replies in order, one per
        command, so the stream stays in step whichever of them is refused."""
        commands = [  # addresses as they are, checked long before (smtplib.quoteaddr would parse each again)
            f"MAIL FROM:<{sender}>",
            *(f"RCPT TO:<{address}>" for address in (recipient, *also)),
            "DATA",
        ]
        smtp.send(_command_group(commands))
        replies, lost = _read_replies(smtp, len(commands))
        refusal = _envelope_refusal(replies)
        if refusal is not None and (lost is not None or replies[-1][0] == 354):
            # The remaining replies are gone, or DATA was accepted for a Cc or Bcc alone: the server
            # keeps nothing without the final ".", so the connection is dropped instead, and the next
            # message opens a fresh one.
            self._drop()
        if refusal is not None:
            return _Envelope(*refusal)
        if lost is not None:
            raise lost  # before the message went out: temporary, tried again
        code, reply = replies[-1]
        refused = tuple(
            (address, f"{other_code} {_text(other_reply)}")
            for address, (other_code, other_reply) in zip(also, replies[2:-1], strict=True)
            if other_code not in ACCEPTED
        )
        return _Envelope(code, reply, refused, body_next=code == 354)

    def _send_body(self, smtp: smtplib.SMTP, message: bytes) -> tuple[int, bytes]:
        # An error while the message goes out leaves the server without its final ".", so it keeps
        # nothing and trying again is safe. Once all of it is out, only the reply is missing: the
        # server may have taken it.
        smtp.send(_dot_stuffed(message))
        try:
            return smtp.getreply()
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:  # a reply smtplib cannot read is no reply
            self._drop()
            raise _MaybeDelivered(f"{exc or type(exc).__name__}") from None

    def _attempt(
        self, sender: str, recipient: str, message: bytes, also: Sequence[str] = ()
    ) -> tuple[int, str, tuple[tuple[str, str], ...]]:
        """One try over the open connection: the reply code and text that decided it, and the envelope
        recipients of `also` the server refused, with their replies. Two round trips when the server
        offers PIPELINING (the envelope and DATA, then the message), four or more without."""
        smtp = self.smtp
        assert smtp is not None
        envelope = self._pipelined_envelope if smtp.has_extn("pipelining") else self._envelope
        code, reply, refused, body_next = envelope(smtp, sender, recipient, also)
        if body_next:
            code, reply = self._send_body(smtp, message)
        if code != 250:
            self._reset()
        return code, _text(reply), refused

    def send(self, sender: str, recipient: str, message: bytes, *, also: Sequence[str] = ()) -> Delivery:
        last_code: int | None = None
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                if self.should_stop():
                    return Delivery("deferred", last_code, f"{last}; not tried again: stopping", attempts=attempt - 1)
                self.sleep(backoff_delays(self.max_attempts)[attempt - 2])
            if self.smtp is None:
                try:
                    self._connect()
                except ServerUnavailableError as exc:
                    last = exc.message
                    continue
            try:
                code, reply, refused = self._attempt(sender, recipient, message, also)
            except _MaybeDelivered as exc:
                return Delivery(
                    "in_doubt",
                    None,
                    f"the connection was lost after the whole message was sent, before the reply ({exc}); "
                    "it may have arrived, so it is not sent again",
                    attempts=attempt,
                )
            except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
                self._drop()
                last_code, last = None, f"connection lost: {exc or type(exc).__name__}"
                continue
            text = f"{code} {reply}"
            if code in AUTH_REPLIES:  # about this sender, not this recipient: every message would get it
                raise LoginRefusedError(
                    f"{self.where} refused to take mail without a valid login: {text}",
                    hint="Set transport.username and transport.password_env (and check them). Nothing was marked sent."
                    if not self.config.username
                    else f"Check transport.username and the password in ${self.config.password_env}. "
                    "Nothing was marked sent.",
                )
            if code == 250:
                return Delivery("sent", code, text, attempts=attempt, refused=refused)
            if not is_temporary(code):
                return Delivery("failed", code, text, suppress=suppresses(code, reply), attempts=attempt)
            last_code, last = code, text
        return Delivery("deferred", last_code, last, attempts=self.max_attempts)

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
        self._drop()
