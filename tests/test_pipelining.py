"""SMTP PIPELINING (RFC 2920, issue #13): MAIL, every RCPT and DATA in one flight when the server
offers it, each reply keeping its meaning; asserted on what a real server on 127.0.0.1 saw."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import mailcast, smtp, write_campaign
from mailcast.errors import LoginRefusedError
from mailcast.transports.smtp import SmtpConnection, backoff_delays
from smtp_server import TestServer
from test_smtp import SENDER, config, message


def connect(server: TestServer) -> tuple[SmtpConnection, list[float]]:
    slept: list[float] = []
    return SmtpConnection(config(server), password=None, sleep=slept.append, max_attempts=3), slept


def addresses(count: int) -> list[str]:
    return [f"r{i}@example.com" for i in range(1, count + 1)]


def send_campaign(tmp_path: Path, server: TestServer, count: int, **extra: Any) -> tuple[int, dict[str, Any]]:
    """`mailcast send` of `count` rows over 3 connections: the exit code and each row's report."""
    campaign = write_campaign(tmp_path / "c", count, transport=smtp(server.port, connections=3), extra=extra)
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    report = mailcast("report", str(campaign), "--json", state=state).json()
    return result.code, {row["email"]: row for row in report["recipients"]}


# the whole command ---------------------------------------------------------------------------------


def test_send_pipelines_every_message_and_delivers_each_once(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(pipelining=True)
    code, rows = send_campaign(tmp_path, server, 12)
    assert code == 0
    assert server.recipients() == sorted(addresses(12))  # each exactly once
    assert server.pipelined_flights == server.mail_commands == len(server.messages) == 12
    assert {row["status"] for row in rows.values()} == {"sent"}


def test_send_pipelines_cc_and_bcc_in_the_same_flight(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True)
    code, _ = send_campaign(tmp_path, server, 5, cc="boss@example.com", bcc="archive@example.org")
    assert code == 0
    assert sorted(tuple(m.rcpt_tos) for m in server.messages) == [
        (address, "boss@example.com", "archive@example.org") for address in addresses(5)
    ]
    assert server.pipelined_flights == server.mail_commands == 5


def test_send_with_a_refused_main_recipient_fails_that_row_and_goes_on(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(pipelining=True, replies={"r3@example.com": "550 5.1.1 User unknown"})
    code, rows = send_campaign(tmp_path, server, 6)
    assert code == 1  # finished, one recipient not delivered
    assert rows["r3@example.com"]["status"] == "failed"
    assert rows["r3@example.com"]["last_reply"].startswith("550 5.1.1 User unknown")
    assert [a for a, row in rows.items() if row["status"] == "sent"] == [
        a for a in addresses(6) if a != "r3@example.com"
    ]
    assert "r3@example.com" not in server.recipients()  # no message went out for it
    assert server.pipelined_flights == server.mail_commands == 6
    suppressed = mailcast("suppress", "list", "--json", state=tmp_path / "state.db")
    assert "r3@example.com" in suppressed.out  # 5.1.1, as without pipelining


def test_send_with_a_refused_main_recipient_whose_cc_is_taken_sends_nothing_for_it(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    # DATA is answered 354 for the cc alone: the connection is dropped before the message
    server = smtp_server(pipelining=True, replies={"r2@example.com": "550 5.1.1 User unknown"})
    code, rows = send_campaign(tmp_path, server, 4, cc="boss@example.com")
    assert code == 1
    assert rows["r2@example.com"]["status"] == "failed"
    assert "r2@example.com" not in server.recipients()
    assert sorted(tuple(m.rcpt_tos) for m in server.messages) == [
        (address, "boss@example.com") for address in addresses(4) if address != "r2@example.com"
    ]  # the boss got no copy of r2's message either


def test_send_with_a_refused_cc_notes_it_and_sends_the_row(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(pipelining=True, replies={"boss@example.com": "550 5.1.1 No such user"})
    code, rows = send_campaign(tmp_path, server, 3, cc="boss@example.com", bcc="archive@example.org")
    assert code == 0
    for address in addresses(3):
        assert rows[address]["status"] == "sent" and rows[address]["last_reply"].startswith("250")
        assert "cc boss@example.com refused: 550 5.1.1 No such user" in rows[address]["last_reply"]
    assert sorted(tuple(m.rcpt_tos) for m in server.messages) == [
        (address, "archive@example.org") for address in addresses(3)
    ]
    assert server.pipelined_flights == server.mail_commands == 3


# the transport -------------------------------------------------------------------------------------


def test_one_connection_pipelines_many_messages(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True)
    conn, _ = connect(server)
    results = [conn.send(SENDER, a, message(a), also=["cc@example.com"]) for a in addresses(10)]
    conn.close()
    assert [r.status for r in results] == ["sent"] * 10
    assert server.connections == 1
    assert server.pipelined_flights == server.mail_commands == 10
    assert b"\r\n.line\r\n" in server.messages[0].data  # dot-stuffing undone by the server


def test_a_server_without_pipelining_gets_one_command_at_a_time(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    conn, _ = connect(server)
    results = [conn.send(SENDER, a, message(a), also=["cc@example.com"]) for a in addresses(3)]
    conn.close()
    assert [r.status for r in results] == ["sent"] * 3
    assert server.mail_commands == 3 and server.pipelined_flights == 0


def test_a_refused_main_recipient_keeps_the_connection_in_step(smtp_server: Callable[..., TestServer]) -> None:
    # DATA after no valid recipient is answered 503 and no message follows; RSET, then the next one
    server = smtp_server(pipelining=True, replies={"bad@example.com": "550 5.1.1 User unknown"})
    conn, slept = connect(server)
    bad = conn.send(SENDER, "bad@example.com", message("bad@example.com"))
    after = [conn.send(SENDER, a, message(a)) for a in addresses(2)]
    conn.close()
    assert (bad.status, bad.code, bad.suppress, bad.attempts) == ("failed", 550, True, 1)
    assert bad.reply.startswith("550 5.1.1 User unknown")
    assert [r.status for r in after] == ["sent"] * 2
    assert server.recipients() == addresses(2)
    assert server.connections == 1 and slept == []


def test_a_refused_main_recipient_with_a_taken_cc_drops_the_connection_before_the_message(
    smtp_server: Callable[..., TestServer],
) -> None:
    server = smtp_server(pipelining=True, replies={"bad@example.com": "554 5.7.1 Rejected"})
    conn, slept = connect(server)
    bad = conn.send(SENDER, "bad@example.com", message("bad@example.com"), also=["cc@example.com"])
    after = conn.send(SENDER, "r1@example.com", message("r1@example.com"), also=["cc@example.com"])
    conn.close()
    assert (bad.status, bad.code, bad.suppress, bad.refused) == ("failed", 554, False, ())
    assert after.status == "sent"
    assert [m.rcpt_tos for m in server.messages] == [["r1@example.com", "cc@example.com"]]
    assert server.connections == 2 and slept == []  # the next message reconnected


def test_a_refused_bcc_is_noted_and_the_message_sent(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, replies={"archive@example.org": "451 4.3.0 Try later"})
    conn, slept = connect(server)
    result = conn.send(
        SENDER, "r1@example.com", message("r1@example.com"), also=["cc@example.com", "archive@example.org"]
    )
    conn.close()
    assert result.status == "sent" and result.attempts == 1 and slept == []
    assert result.refused == (("archive@example.org", "451 4.3.0 Try later"),)
    assert [m.rcpt_tos for m in server.messages] == [["r1@example.com", "cc@example.com"]]


def test_a_temporary_reply_at_rcpt_is_retried_then_sent(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(
        pipelining=True,
        replies={"slow@example.com": "451 4.7.1 Try again later"},
        replies_times={"slow@example.com": 1},
    )
    conn, slept = connect(server)
    result = conn.send(SENDER, "slow@example.com", message("slow@example.com"))
    conn.close()
    assert result.status == "sent" and result.attempts == 2
    assert slept == backoff_delays(3)[:1]
    assert server.recipients() == ["slow@example.com"]
    assert server.pipelined_flights == server.mail_commands == 2


def test_always_temporary_at_rcpt_is_deferred_and_the_connection_stays_usable(
    smtp_server: Callable[..., TestServer],
) -> None:
    server = smtp_server(pipelining=True, replies={"slow@example.com": "451 4.7.1 Try again later"})
    conn, slept = connect(server)
    result = conn.send(SENDER, "slow@example.com", message("slow@example.com"))
    after = conn.send(SENDER, "ok@example.com", message("ok@example.com"))
    conn.close()
    assert result.status == "deferred" and result.code == 451 and "Try again" in result.reply
    assert len(slept) == 2
    assert after.status == "sent" and server.connections == 1


def test_a_permanent_reply_after_the_message_fails_it(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, data_replies={"big@example.com": "552 5.3.4 Message too big"})
    conn, _ = connect(server)
    result = conn.send(SENDER, "big@example.com", message("big@example.com"))
    after = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    assert result.status == "failed" and result.code == 552 and not result.suppress
    assert after.status == "sent" and server.connections == 1


def test_connection_lost_after_the_whole_message_is_in_doubt(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, drop_on_data={"r1@example.com"})
    conn, slept = connect(server)
    lost = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    after = conn.send(SENDER, "r2@example.com", message("r2@example.com"))
    conn.close()
    assert lost.status == "in_doubt" and "may have arrived" in lost.reply and lost.attempts == 1
    assert after.status == "sent"
    assert server.connections == 2 and slept == []  # one reconnect for r2, no second try for r1
    assert server.pipelined_flights == server.mail_commands == 2


def test_connection_lost_before_the_message_is_retried_on_a_new_one(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(pipelining=True, drop_after=3)
    conn, slept = connect(server)
    results = [conn.send(SENDER, a, message(a)) for a in addresses(6)]
    conn.close()
    assert [r.status for r in results] == ["sent"] * 6
    assert server.recipients() == sorted(addresses(6))  # each once
    assert server.connections == 2 and len(slept) == 1


def test_a_server_wanting_a_login_stops_the_run(smtp_server: Callable[..., TestServer]) -> None:
    # 530 at MAIL (then at RCPT and DATA too): about the sender, as without pipelining
    server = smtp_server(pipelining=True, user="news", password="right")
    conn, _ = connect(server)
    with pytest.raises(LoginRefusedError, match="530"):
        conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    assert server.messages == []
