"""How the SMTP transport reads a message's replies: each means what smtplib makes of it (replies of
several lines, a line too long, a reply that times out before or after the message), with and without
PIPELINING, over TLS, and the connection stays in step for the next message. Against a real server on
127.0.0.1."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

import pytest

from mailcast.transports.smtp import SmtpConnection, backoff_delays
from smtp_server import TestServer
from test_smtp import SENDER, config, message

MULTILINE_REFUSAL = "550-5.1.1 No such user\r\n550-5.1.1 here\r\n550 5.1.1 at all"


def connect(server: TestServer, **extra: Any) -> tuple[SmtpConnection, list[float]]:
    slept: list[float] = []
    return SmtpConnection(config(server, **extra), password=None, sleep=slept.append, max_attempts=3), slept


def smtplib_rcpt_reply(server: TestServer, address: str) -> str:
    """What smtplib itself reads from the server's reply to RCPT TO:<address>, as mailcast reports it."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as plain:
        plain.ehlo()
        plain.mail(SENDER)
        code, text = plain.rcpt(address)
    return f"{code} {text.decode()}"


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refusal_of_several_lines_reads_as_smtplib_reads_it(
    smtp_server: Callable[..., TestServer], pipelining: bool
) -> None:
    server = smtp_server(pipelining=pipelining, replies={"multi@example.com": MULTILINE_REFUSAL})
    conn, slept = connect(server)
    refused = conn.send(SENDER, "multi@example.com", message("multi@example.com"))
    after = conn.send(SENDER, "r1@example.com", message("r1@example.com"))  # after smtplib's RSET
    conn.close()
    assert (refused.status, refused.code, refused.suppress) == ("failed", 550, True)
    assert refused.reply == "550 5.1.1 No such user\n5.1.1 here\n5.1.1 at all"
    assert after.status == "sent" and server.connections == 1 and slept == []
    assert refused.reply == smtplib_rcpt_reply(server, "multi@example.com")


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_cc_refused_in_several_lines_is_noted_and_the_stream_stays_in_step(
    smtp_server: Callable[..., TestServer], pipelining: bool
) -> None:
    server = smtp_server(pipelining=pipelining, replies={"cc@example.com": MULTILINE_REFUSAL})
    conn, _ = connect(server)
    results = [conn.send(SENDER, a, message(a), also=["cc@example.com"]) for a in ("r1@example.com", "r2@example.com")]
    conn.close()
    assert [r.status for r in results] == ["sent", "sent"]
    assert {r.refused for r in results} == {(("cc@example.com", smtplib_rcpt_reply(server, "cc@example.com")),)}
    assert server.recipients() == ["r1@example.com", "r2@example.com"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_reply_of_several_lines_to_the_message(smtp_server: Callable[..., TestServer], pipelining: bool) -> None:
    server = smtp_server(
        pipelining=pipelining, data_replies={"r1@example.com": "250-2.0.0 Queued\r\n250 2.0.0 as ABC123"}
    )
    conn, _ = connect(server)
    queued = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    after = conn.send(SENDER, "r2@example.com", message("r2@example.com"))
    conn.close()
    assert (queued.status, queued.code, queued.reply) == ("sent", 250, "250 2.0.0 Queued\n2.0.0 as ABC123")
    assert after.status == "sent" and server.recipients() == ["r2@example.com"] and server.connections == 1


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "tls"])
def test_pipelining_over_tls(smtp_server: Callable[..., TestServer], tls_ca: Any, implicit_tls: bool) -> None:
    server = smtp_server(
        pipelining=True,
        tls_context=tls_ca.server,
        implicit_tls=implicit_tls,
        replies={"bad@example.com": MULTILINE_REFUSAL},
        data_replies={"queued@example.com": "250-2.0.0 Queued\r\n250 2.0.0 as ABC123"},
    )
    conn = SmtpConnection(
        config(server, security="tls" if implicit_tls else "starttls", host="localhost"),
        password=None,
        ssl_context=tls_ca.client,
    )
    addresses = ["r1@example.com", "bad@example.com", "queued@example.com", "r2@example.com"]
    results = [conn.send(SENDER, a, message(a)) for a in addresses]  # RSET by smtplib after the refused one
    conn.close()
    assert [(r.status, r.code) for r in results] == [("sent", 250), ("failed", 550), ("sent", 250), ("sent", 250)]
    assert results[1].reply == "550 5.1.1 No such user\n5.1.1 here\n5.1.1 at all"
    assert results[2].reply == "250 2.0.0 Queued\n2.0.0 as ABC123"
    assert server.recipients() == ["r1@example.com", "r2@example.com"]
    assert server.connections == (1 if implicit_tls else 2)  # aiosmtpd counts the STARTTLS upgrade as one
    assert server.pipelined_flights == server.mail_commands == 4


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_reply_line_of_8192_bytes_is_read(smtp_server: Callable[..., TestServer], pipelining: bool) -> None:
    longest = "550 " + "x" * (8192 - len("550 \r\n"))  # 8192 bytes with its CRLF: smtplib's limit
    server = smtp_server(pipelining=pipelining, replies={"long@example.com": longest})
    conn, _ = connect(server)
    refused = conn.send(SENDER, "long@example.com", message("long@example.com"))
    after = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    assert (refused.status, refused.code, refused.reply) == ("failed", 550, longest)
    assert after.status == "sent" and server.connections == 1
    assert refused.reply == smtplib_rcpt_reply(server, "long@example.com")


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_reply_line_longer_than_8192_bytes_is_an_error_not_a_reply(
    smtp_server: Callable[..., TestServer], pipelining: bool
) -> None:
    too_long = "550 " + "x" * (8193 - len("550 \r\n"))
    server = smtp_server(pipelining=pipelining, replies={"long@example.com": too_long})
    conn, slept = connect(server)
    result = conn.send(SENDER, "long@example.com", message("long@example.com"))
    after = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    # as smtplib: the connection is closed and the message tried again on a new one, like a lost connection
    assert (result.status, result.code, result.attempts) == ("deferred", None, 3)
    assert result.reply == "connection lost: (500, 'Line too long.')"
    assert slept == backoff_delays(3)
    assert after.status == "sent" and server.connections == 4
    with pytest.raises(smtplib.SMTPResponseException, match="Line too long"):
        smtplib_rcpt_reply(server, "long@example.com")


def test_a_reply_to_the_envelope_that_times_out_is_a_lost_connection(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, delay=0.5)
    conn, slept = connect(server, timeout=0.2)
    result = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    assert (result.status, result.code, result.attempts) == ("deferred", None, 3)
    assert result.reply == "connection lost: Connection unexpectedly closed: timed out"
    assert len(slept) == 2 and server.messages == []


def test_a_reply_to_the_message_that_times_out_leaves_it_in_doubt(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, hold_reply={"r1@example.com"})
    conn, slept = connect(server, timeout=0.3)
    held = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    after = conn.send(SENDER, "r2@example.com", message("r2@example.com"))
    conn.close()
    assert (held.status, held.attempts) == ("in_doubt", 1)
    assert "(Connection unexpectedly closed: timed out)" in held.reply and "may have arrived" in held.reply
    assert after.status == "sent" and server.connections == 2 and slept == []
