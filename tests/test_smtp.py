"""The SMTP transport against a real server on 127.0.0.1: replies, drops, logins, TLS."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from helpers import mailcast, smtp, write_campaign
from mailcast.campaign import SmtpTransport, is_loopback
from mailcast.errors import ConfigError, ExitCode, LoginRefusedError, ServerUnavailableError
from mailcast.transports.smtp import SmtpConnection, backoff_delays, default_ehlo_name, is_temporary, suppresses
from smtp_server import TestServer

SENDER = "news@example.com"


def message(to: str) -> bytes:
    return f"From: {SENDER}\r\nTo: {to}\r\nSubject: hi\r\nMessage-ID: <{to}>\r\n\r\nHello\r\n.line\r\n".encode()


def config(server: TestServer, **extra: Any) -> SmtpTransport:
    values: dict[str, Any] = {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "timeout": 5.0,
    }
    values.update(extra)
    return SmtpTransport.model_validate(values)


def connect(server: TestServer, *, password: str | None = None, **extra: Any) -> tuple[SmtpConnection, list[float]]:
    slept: list[float] = []
    conn = SmtpConnection(config(server, **extra), password=password, sleep=slept.append, max_attempts=3)
    return conn, slept


def test_many_messages_share_one_connection(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    conn, _ = connect(server)
    results = [conn.send(SENDER, f"r{i}@example.com", message(f"r{i}@example.com")) for i in range(20)]
    conn.close()
    assert [r.status for r in results] == ["sent"] * 20
    assert server.connections == 1
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(20))
    assert b"\r\n.line\r\n" in server.messages[0].data  # dot-stuffing undone by the server


def test_temporary_reply_is_retried_then_sent(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(
        replies={"slow@example.com": "451 4.7.1 Try again later"}, replies_times={"slow@example.com": 1}
    )
    conn, slept = connect(server)
    result = conn.send(SENDER, "slow@example.com", message("slow@example.com"))
    conn.close()
    assert result.status == "sent" and result.attempts == 2
    assert slept == backoff_delays(3)[:1]
    assert server.recipients() == ["slow@example.com"]


def test_always_temporary_is_deferred(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"slow@example.com": "451 4.7.1 Try again later"})
    conn, slept = connect(server)
    result = conn.send(SENDER, "slow@example.com", message("slow@example.com"))
    after = conn.send(SENDER, "ok@example.com", message("ok@example.com"))
    conn.close()
    assert result.status == "deferred" and result.code == 451 and "Try again" in result.reply
    assert len(slept) == 2
    assert after.status == "sent"  # the connection stays usable


@pytest.mark.parametrize(
    ("reply", "suppress"),
    [("550 5.1.1 User unknown", True), ("554 5.7.1 Rejected as spam", False)],
)
def test_permanent_reply_fails_without_retry(
    smtp_server: Callable[..., TestServer], reply: str, suppress: bool
) -> None:
    server = smtp_server(replies={"bad@example.com": reply})
    conn, slept = connect(server)
    result = conn.send(SENDER, "bad@example.com", message("bad@example.com"))
    conn.close()
    assert result.status == "failed" and result.suppress is suppress
    assert result.reply.startswith(reply[:3])
    assert slept == []


def test_permanent_reply_after_data(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(data_replies={"bad@example.com": "552 5.3.4 Message too big"})
    conn, _ = connect(server)
    result = conn.send(SENDER, "bad@example.com", message("bad@example.com"))
    conn.close()
    assert result.status == "failed" and result.code == 552 and not result.suppress


def test_dropped_connection_is_retried_on_a_new_one(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(drop_after=3)
    conn, slept = connect(server)
    results = [conn.send(SENDER, f"r{i}@example.com", message(f"r{i}@example.com")) for i in range(6)]
    conn.close()
    assert [r.status for r in results] == ["sent"] * 6
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(6))  # each once
    assert server.connections == 2
    assert len(slept) == 1


def test_connection_lost_after_the_whole_message_is_never_retried(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(drop_on_data={"r1@example.com"})
    conn, slept = connect(server)
    lost = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    after = conn.send(SENDER, "r2@example.com", message("r2@example.com"))
    conn.close()
    assert lost.status == "in_doubt" and "may have arrived" in lost.reply and lost.attempts == 1
    assert after.status == "sent"
    assert server.connections == 2 and slept == []  # one reconnect for r2, no second try for r1


def test_no_new_attempt_starts_once_the_run_is_stopping(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"r1@example.com": "451 4.3.0 Try again later"})
    stopping: list[bool] = []
    slept: list[float] = []
    conn = SmtpConnection(
        config(server), password=None, sleep=slept.append, max_attempts=3, should_stop=lambda: bool(stopping)
    )
    stopping.append(True)  # Ctrl-C arrived while the first attempt was out
    result = conn.send(SENDER, "r1@example.com", message("r1@example.com"))
    conn.close()
    assert result.status == "deferred" and "stopping" in result.reply and result.attempts == 1
    assert slept == []  # no backoff wait either


def test_wrong_password_names_user_and_host_not_password(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password="right")
    with pytest.raises(LoginRefusedError) as caught:
        connect(server, password="wrong-secret", username="news", password_env="PW")
    assert caught.value.exit_code == ExitCode.AUTH
    text = str(caught.value)
    assert "news" in text and f"127.0.0.1:{server.port}" in text
    assert "wrong-secret" not in text


def test_right_password_logs_in(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password="right")
    conn, _ = connect(server, password="right", username="news", password_env="PW")
    assert conn.send(SENDER, "a@example.com", message("a@example.com")).status == "sent"
    conn.close()


def test_closed_port_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    transport = SmtpTransport.model_validate({"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none"})
    with pytest.raises(ServerUnavailableError) as caught:
        SmtpConnection(transport, password=None)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert f"127.0.0.1:{port}" in caught.value.message


def test_password_never_crosses_the_network_in_clear() -> None:
    with pytest.raises(ValidationError, match="starttls"):
        SmtpTransport.model_validate(
            {"type": "smtp", "host": "smtp.example.com", "security": "none", "username": "u", "password_env": "P"}
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("smtp.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_starttls_with_trusted_certificate(smtp_server: Callable[..., TestServer], tls_ca: Any) -> None:
    server = smtp_server(tls_context=tls_ca.server, user="news", password="right")
    conn = SmtpConnection(
        config(server, security="starttls", host="localhost", username="news", password_env="P"),
        password="right",
        ssl_context=tls_ca.client,
    )
    assert conn.send(SENDER, "a@example.com", message("a@example.com")).status == "sent"
    conn.close()


def test_starttls_with_untrusted_certificate_is_refused(smtp_server: Callable[..., TestServer], tls_ca: Any) -> None:
    server = smtp_server(tls_context=tls_ca.server)
    with pytest.raises(ServerUnavailableError) as caught:
        SmtpConnection(config(server, security="starttls", host="localhost"), password=None)
    assert "certificate" in caught.value.message


def test_starttls_missing_is_not_a_fallback(smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    with pytest.raises(ConfigError, match="STARTTLS"):
        SmtpConnection(config(server, security="starttls"), password=None)


def test_implicit_tls(smtp_server: Callable[..., TestServer], tls_ca: Any) -> None:
    server = smtp_server(tls_context=tls_ca.server, implicit_tls=True)
    conn = SmtpConnection(config(server, security="tls", host="localhost"), password=None, ssl_context=tls_ca.client)
    assert conn.send(SENDER, "a@example.com", message("a@example.com")).status == "sent"
    conn.close()


def test_backoff_is_bounded() -> None:
    assert backoff_delays(1) == []
    assert backoff_delays(4) == [0.5, 1.0, 2.0]
    assert max(backoff_delays(20)) == 8.0


def test_only_4xx_is_temporary() -> None:
    assert [is_temporary(code) for code in (250, 399, 400, 451, 499, 500, 550)] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("code", "reply", "suppress"),
    [
        (550, "5.1.1 User unknown", True),
        (551, "  5.1.6 Mailbox has moved", True),
        (554, "5.7.1 Rejected as spam", False),
        (550, "User unknown", False),  # no enhanced status: nothing says it is the mailbox
        (450, "5.1.1 odd but temporary", False),
    ],
)
def test_only_a_permanent_mailbox_failure_suppresses(code: int, reply: str, suppress: bool) -> None:
    assert suppresses(code, reply) is suppress


# A relay with a private CA (transport.ca_file) and its own EHLO name (transport.helo) ---------------


def tls_campaign(folder: Path, server: TestServer, security: str = "starttls", **extra: Any) -> Path:
    return write_campaign(folder, 2, transport=smtp(server.port, security=security, **extra))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_ca_file_is_the_trust_store_for_a_private_ca(
    tmp_path: Path, smtp_server: Callable[..., TestServer], tls_ca: Any, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server = smtp_server(tls_context=tls_ca.server, implicit_tls=security == "tls")
    folder = tmp_path / "c"
    campaign = tls_campaign(folder, server, security, ca_file="ca.pem")
    shutil.copy(tls_ca.path, folder / "ca.pem")
    # run from another folder: ca_file is found beside the campaign file, not in the working directory
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db", cwd=tmp_path)
    assert result.code == 0, result.err
    assert server.recipients() == ["r1@example.com", "r2@example.com"]


def test_a_private_ca_without_ca_file_is_refused_and_the_hint_names_ca_file(
    tmp_path: Path, smtp_server: Callable[..., TestServer], tls_ca: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = smtp_server(tls_context=tls_ca.server)
    campaign = tls_campaign(tmp_path / "c", server)
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 69
    assert "could not be verified" in result.err and "transport.ca_file" in result.err
    assert server.messages == []


def test_ca_file_of_another_ca_is_refused(tmp_path: Path, smtp_server: Callable[..., TestServer], tls_ca: Any) -> None:
    import trustme

    server = smtp_server(tls_context=tls_ca.server)
    folder = tmp_path / "c"
    campaign = tls_campaign(folder, server, ca_file="other-ca.pem")
    trustme.CA().cert_pem.write_to_path(str(folder / "other-ca.pem"))
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 69
    assert "transport.ca_file (other-ca.pem)" in result.err
    assert server.messages == []


@pytest.mark.parametrize(
    ("content", "said"), [(None, "not found"), (b"not a certificate\n", "holds no CA certificate")]
)
def test_a_missing_or_wrong_ca_file_is_a_config_error(
    tmp_path: Path, smtp_server: Callable[..., TestServer], tls_ca: Any, content: bytes | None, said: str
) -> None:
    server = smtp_server(tls_context=tls_ca.server)
    folder = tmp_path / "c"
    campaign = tls_campaign(folder, server, ca_file="ca.pem")
    if content is not None:
        (folder / "ca.pem").write_bytes(content)
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 78
    assert "transport.ca_file" in result.err and said in result.err
    assert server.messages == []
    assert mailcast("status", "--json", state=state).json() == []  # refused before a run was recorded


def test_ca_file_needs_tls(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, transport=smtp(2525, ca_file="ca.pem"))
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    line = campaign.read_text().splitlines().index("  ca_file: ca.pem") + 1
    assert result.code == 78
    assert f"news.yaml:{line}" in result.err + result.out and "security is none" in result.err + result.out


def test_helo_is_the_name_the_server_sees(tmp_path: Path, smtp_server: Callable[..., TestServer], tls_ca: Any) -> None:
    server = smtp_server(tls_context=tls_ca.server)
    folder = tmp_path / "c"
    campaign = tls_campaign(folder, server, ca_file="ca.pem", helo="mailer.example.org")
    shutil.copy(tls_ca.path, folder / "ca.pem")
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 0, result.err
    assert server.ehlo_names == ["mailer.example.org", "mailer.example.org"]  # before and after STARTTLS


def test_without_helo_the_server_sees_the_machine_name_or_its_address(
    smtp_server: Callable[..., TestServer],
) -> None:
    server = smtp_server()
    conn = SmtpConnection(config(server), password=None)
    conn.close()
    assert server.ehlo_names == [default_ehlo_name(socket.getfqdn(), "127.0.0.1")]


@pytest.mark.parametrize(
    ("fqdn", "address", "name"),
    [
        ("mail.example.com", "192.0.2.7", "mail.example.com"),
        ("vm", "192.0.2.7", "[192.0.2.7]"),  # no fully qualified name
        ("localhost", "127.0.0.1", "[127.0.0.1]"),
        ("localhost.localdomain", "127.0.0.1", "[127.0.0.1]"),
        ("vm", "2001:db8::5", "[IPv6:2001:db8::5]"),
        ("vm", "fe80::1%eth0", "[IPv6:fe80::1]"),
        ("vm", "::ffff:192.0.2.7", "[192.0.2.7]"),  # IPv4 over an IPv6 socket
        ("under_score.example", "192.0.2.7", "[192.0.2.7]"),  # not a name EHLO may carry
    ],
)
def test_default_ehlo_name(fqdn: str, address: str, name: str) -> None:
    assert default_ehlo_name(fqdn, address) == name


@pytest.mark.parametrize(
    "helo", ["mail.example.com", "relay-1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "xn--bcher-kva.example"]
)
def test_good_helo_names(tmp_path: Path, helo: str) -> None:
    campaign = write_campaign(tmp_path / "c", 1, transport=smtp(2525, helo=helo))
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize(
    ("helo", "said"),
    [
        ("mail example.com", "is not a host name"),
        ("-mail.example.com", "is not a host name"),
        ("mail..example.com", "is not a host name"),
        ("bücher.example", "is not a host name"),
        ("192.0.2.1", "[192.0.2.1]"),
        ("2001:db8::1", "[IPv6:2001:db8::1]"),
        ("[300.0.0.1]", "is not an address literal"),
        ("[2001:db8::1]", "is not an address literal"),
    ],
)
def test_bad_helo_names_are_refused_at_their_line(tmp_path: Path, helo: str, said: str) -> None:
    campaign = write_campaign(tmp_path / "c", 1, transport=smtp(2525, helo=helo))
    line = next(n for n, text in enumerate(campaign.read_text().splitlines(), start=1) if "helo:" in text)
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    shown = result.out + result.err
    assert result.code == 78
    assert f"news.yaml:{line}" in shown and "transport.helo" in shown and said in shown
