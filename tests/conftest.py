"""Shared fixtures: real SMTP servers on 127.0.0.1, a trusted test CA, campaigns on disk."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from smtp_server import Behaviour, TestServer


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., TestServer]]:
    """`smtp_server(**behaviour)` starts a server (stopped at teardown); see tests/smtp_server.py."""
    started: list[TestServer] = []

    def start(*, tls_context: ssl.SSLContext | None = None, implicit_tls: bool = False, **behaviour: Any) -> TestServer:
        server = TestServer(Behaviour(**behaviour), tls_context=tls_context, implicit_tls=implicit_tls)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A CA from trustme with a server certificate for 127.0.0.1 and localhost; `.pem` is its file."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))

    class Tls:
        server = server_context
        client = client_context
        path = pem

    return Tls


@pytest.fixture
def imap_server() -> Iterator[Callable[..., Any]]:
    """`imap_server(tls=False, capabilities=None)` starts Dovecot on 127.0.0.1 (stopped at teardown); see
    tests/imap_server.py. Skips the test when Dovecot is not installed (Debian: dovecot-imapd)."""
    from imap_server import DOVECOT, DovecotServer

    if DOVECOT is None:
        pytest.skip("dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)")
    started: list[DovecotServer] = []

    def start(**options: Any) -> DovecotServer:
        server = DovecotServer(**options)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
