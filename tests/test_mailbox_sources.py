"""Reading messages back from a Maildir, an mbox and a real IMAP server (Dovecot, see tests/imap_server.py)."""

from __future__ import annotations

import mailbox
import os
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from imap_server import DovecotServer, free_port
from mailcast.errors import LoginRefusedError, MailcastError, ServerUnavailableError, SourceMissingError
from mailcast.mailbox_sources import (
    MailSource,
    SourceSpecError,
    _fetched_bodies,
    decode_folder_name,
    imap_folder_name,
    imap_user,
    is_imap,
    message_problem,
    open_source,
    parse_imap,
)

ImapServer = Callable[..., DovecotServer]


def message(number: int) -> bytes:
    return (
        f"From: MAILER-DAEMON@example.com\nTo: bounces@example.com\nSubject: bounce {number}\n"
        f"Message-ID: <bounce-{number}@example.com>\n\nDelivery to user{number}@example.com failed.\n"
    ).encode()


def read_all(source: MailSource) -> list[tuple[str, bytes]]:
    return [(m.ref, m.data.replace(b"\r\n", b"\n")) for m in source.messages()]


def exit_code(exc: MailcastError) -> int:
    return int(exc.exit_code)


# --- Maildir ------------------------------------------------------------------------------------------


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    return path


def test_maildir_messages_oldest_first_and_foreign_entries_skipped(tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "Maildir")
    (box / "new" / "1700000001.M1P1.mx").write_bytes(message(2))
    (box / "cur" / "1700000000.M2P2.mx:2,S").write_bytes(message(1))
    (box / "cur" / "1700000002.M3P3.mx:2,").write_bytes(message(3))
    (box / "tmp" / "1700000003.M4P4.mx").write_bytes(message(4))  # still being delivered: not read
    (box / "cur" / "README.txt").write_text("This folder holds the bounces.\n")
    (box / "new" / "sub").mkdir()
    (box / "cur" / ".hidden").write_bytes(message(5))
    (box / "cur" / "1700000004.M5P5.mx:2,").write_bytes(b"")
    (box / "cur" / "1700000005.M6P6.mx:2,").write_bytes(b"just some words\n")
    (box / "new" / "1700000006.M7P7.mx").symlink_to(tmp_path / "nowhere")
    (box / "new" / "bounce.eml").write_bytes(message(6))  # put there by hand: read too, after the others
    before = sorted(p.relative_to(box) for p in box.rglob("*"))

    source = open_source(str(box))
    assert source.count == 8  # every file that is not hidden; 4 of them turn out not to be messages
    got = read_all(source)
    for m in source.messages():
        source.done(m)
    source.close()

    assert got == [
        ("1700000000.M2P2.mx", message(1)),
        ("1700000001.M1P1.mx", message(2)),
        ("1700000002.M3P3.mx", message(3)),
        ("bounce.eml", message(6)),
    ]
    skipped = "\n".join(source.skipped)
    assert f"{box}/cur/README.txt: not a message (skipped)" in skipped
    assert f"{box}/new/sub: a folder inside new/, not a message (skipped)" in skipped
    assert f"{box}/cur/.hidden: a hidden file, not a message (skipped)" in skipped
    assert f"{box}/cur/1700000004.M5P5.mx:2,: empty (skipped)" in skipped
    assert f"{box}/cur/1700000005.M6P6.mx:2,: not a message (skipped)" in skipped
    assert f"{box}/new/1700000006.M7P7.mx: cannot be read: No such file or directory (skipped)" in skipped
    assert sorted(p.relative_to(box) for p in box.rglob("*")) == before  # nothing moved, nothing deleted


def test_empty_maildir_has_no_messages(tmp_path: Path) -> None:
    source = open_source(str(make_maildir(tmp_path / "Maildir")))
    assert (source.count, read_all(source), source.skipped) == (0, [], [])


def test_folder_that_is_no_maildir(tmp_path: Path) -> None:
    folder = tmp_path / "mail.mbox"
    (folder / "cur").mkdir(parents=True)
    with pytest.raises(SourceMissingError) as caught:
        open_source(str(folder))
    assert exit_code(caught.value) == 66
    assert f"{folder} is a folder but not a Maildir: it has no new/ inside" in str(caught.value)
    assert not (folder / "new").exists() and not (folder / "tmp").exists()  # nothing created


def test_missing_source(tmp_path: Path) -> None:
    path = tmp_path / "bounces"
    with pytest.raises(SourceMissingError) as caught:
        open_source(str(path))
    assert exit_code(caught.value) == 66
    assert str(caught.value).startswith(f"{path}: no such file or folder\nCheck the path.")
    assert not path.exists()


def test_unknown_address_scheme() -> None:
    with pytest.raises(SourceMissingError, match="not an imap:// or imaps:// address") as caught:
        open_source("pop3://bounces@example.com/INBOX")
    assert exit_code(caught.value) == 66


def test_local_source_cannot_move(tmp_path: Path) -> None:
    with pytest.raises(SourceSpecError, match="only an IMAP folder can move messages"):
        open_source(str(make_maildir(tmp_path / "Maildir")), move_to="Processed")


# --- mbox ---------------------------------------------------------------------------------------------


def make_mbox(path: Path, count: int) -> Path:
    box = mailbox.mbox(path)
    for number in range(1, count + 1):
        box.add(message(number))
    box.close()
    return path


def test_mbox_messages_in_order_and_last_cut_short_in_its_header(tmp_path: Path) -> None:
    path = make_mbox(tmp_path / "bounces.mbox", 3)
    with path.open("ab") as file:
        file.write(b"From MAILER-DAEMON Thu Nov 30 08:00:00 2023\nFrom: MAILER-DAEMON@example.com\nSubj")
    source = open_source(str(path))
    assert source.count == 4
    assert read_all(source) == [("1", message(1)), ("2", message(2)), ("3", message(3))]
    assert source.skipped == [f"{path}, message 4: cut short in its header (skipped)"]
    source.close()


def test_mbox_last_message_cut_short_in_its_body_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    path = make_mbox(tmp_path / "bounces.mbox", 2)
    cut = message(3)[:-12]
    with path.open("ab") as file:
        file.write(b"From MAILER-DAEMON Thu Nov 30 08:00:00 2023\n" + cut)
    source = open_source(str(path))
    assert read_all(source) == [("1", message(1)), ("2", message(2)), ("3", cut)]
    assert source.skipped == []
    source.close()


def test_empty_mbox_has_no_messages(tmp_path: Path) -> None:
    path = tmp_path / "empty.mbox"
    path.write_bytes(b"")
    source = open_source(str(path))
    assert (source.count, read_all(source), source.skipped) == (0, [], [])


def test_file_that_is_no_mbox(tmp_path: Path) -> None:
    path = tmp_path / "Maildir"  # meant as a Maildir, but a file
    path.write_bytes(message(1))
    with pytest.raises(SourceMissingError) as caught:
        open_source(str(path))
    assert exit_code(caught.value) == 66
    assert f"{path} is not an mbox file: it does not begin with a 'From ' line" in str(caught.value)
    assert "a Maildir is a folder" in str(caught.value)


def test_unreadable_mbox(tmp_path: Path) -> None:
    if os.getuid() == 0:
        pytest.skip("root reads every file")
    path = make_mbox(tmp_path / "bounces.mbox", 1)
    path.chmod(0)
    with pytest.raises(SourceMissingError, match="cannot be read: Permission denied"):
        open_source(str(path))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (message(1), None),
        (b"From: a@example.com\r\nSubject: x\r\n\r\nbody", None),  # body cut short: read
        (b"From: a@example.com\nSubject: headers only\n", None),
        (b"", "empty"),
        (b" \n\n", "empty"),
        (b"Hello there\n\nnot mail\n", "not a message"),
        (b"From: a@example.com\nSubj", "cut short in its header"),
    ],
)
def test_message_problem(data: bytes, problem: str | None) -> None:
    assert message_problem(data) == problem


# --- IMAP addresses -----------------------------------------------------------------------------------


def test_imap_addresses() -> None:
    assert is_imap("IMAPS://a@b/INBOX") and is_imap("imap://a@b") and not is_imap("imapfolder")
    assert imap_user("imaps://bounces%40example.com@imap.example.com/INBOX") == "bounces@example.com"
    location = parse_imap("imaps://bounces@example.com@imap.example.com/Folder%20With Space/")
    assert (location.tls, location.user, location.host, location.port, location.folder) == (
        True,
        "bounces@example.com",
        "imap.example.com",
        993,
        "Folder With Space",
    )
    assert parse_imap("imap://u@[::1]:1143").where == "[::1]:1143/INBOX"
    assert parse_imap("imap://u@mail.example.com").port == 143


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("imaps://u:hunter2@example.com/INBOX", "imaps://u:***@example.com/INBOX: the password does not belong"),
        ("imaps://example.com/INBOX", "no user before the host"),
        ("imaps://u@example.com:99999/INBOX", "a port that is not a number"),
        ("imaps://u@/INBOX", "no host"),
    ],
)
def test_bad_imap_addresses(spec: str, problem: str) -> None:
    with pytest.raises(SourceSpecError) as caught:
        open_source(spec, password="x")
    assert problem in str(caught.value) and "hunter2" not in str(caught.value)
    assert exit_code(caught.value) == 2


def test_folder_names_in_modified_utf7() -> None:
    assert imap_folder_name("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'  # RFC 3501's example
    assert imap_folder_name('Ärger & "Spam"') == '"&AMQ-rger &- \\"Spam\\""'
    assert decode_folder_name("&AMQ-rger &- Entw&APw-rfe") == "Ärger & Entwürfe"


# --- IMAP against Dovecot -----------------------------------------------------------------------------


def test_imap_reads_every_message_and_leaves_them_unseen(imap_server: ImapServer) -> None:
    server = imap_server()
    for number in (1, 2, 3):
        server.deliver(message(number))
    source = open_source(server.spec(), password=server.password)
    assert source.count == 3
    assert read_all(source) == [("1", message(1)), ("2", message(2)), ("3", message(3))]
    assert source.skipped == []
    source.close()
    assert all("\\Seen" not in flags for flags in server.flags().values())


def test_imap_done_flags_seen(imap_server: ImapServer) -> None:
    server = imap_server()
    for number in (1, 2, 3):
        server.deliver(message(number))
    source = open_source(server.spec(), password=server.password)
    for m in source.messages():
        if m.ref == "2":
            source.done(m)
    source.close()
    seen = {uid for uid, flags in server.flags().items() if "\\Seen" in flags}
    assert seen == {2}
    assert len(server.flags()) == 3  # nothing moved or deleted


@pytest.mark.parametrize(
    "capabilities",
    [None, "IMAP4rev1 UIDPLUS", "IMAP4rev1"],
    ids=["MOVE", "COPY and UID EXPUNGE", "COPY and flag deleted"],
)
def test_imap_done_moves_to_another_folder(imap_server: ImapServer, capabilities: str | None) -> None:
    server = imap_server(capabilities=capabilities)
    for number in (1, 2, 3):
        server.deliver(message(number))
    source = open_source(server.spec(), password=server.password, move_to="Processed")
    for m in source.messages():
        if m.ref != "2":
            source.done(m)  # the first creates Processed
    source.close()

    moved = server.flags("Processed")
    assert len(moved) == 2 and all("\\Seen" in flags for flags in moved.values())
    left = {uid for uid, flags in server.flags().items() if "\\Deleted" not in flags}
    assert left == {2}
    again = open_source(server.spec(), password=server.password, move_to="Processed")
    assert read_all(again) == [("2", message(2))]  # a message flagged deleted (no UIDPLUS) is not read again
    again.close()


def test_imap_folder_with_a_space_and_a_non_ascii_folder_to_move_to(imap_server: ImapServer) -> None:
    server = imap_server()
    server.deliver(message(1), folder="Folder With Space")
    server.deliver(message(2), folder="Folder With Space")
    for spec in (server.spec("Folder With Space"), server.spec("Folder%20With%20Space")):
        source = open_source(spec, password=server.password)
        assert read_all(source) == [("1", message(1)), ("2", message(2))]
        source.close()

    source = open_source(server.spec("Folder With Space"), password=server.password, move_to="Erledigt Entwürfe")
    for m in source.messages():
        source.done(m)
    source.close()
    imap = server.connect()
    _typ, data = imap.list()
    imap.logout()
    assert any(isinstance(line, bytes) and line.endswith(b'"Erledigt Entw&APw-rfe"') for line in data)
    assert server.flags("Folder With Space") == {}


def test_imap_missing_folder(imap_server: ImapServer) -> None:
    server = imap_server()
    server.deliver(message(1), folder="Bounces")
    with pytest.raises(SourceMissingError) as caught:
        open_source(server.spec("Bounced"), password=server.password)
    assert exit_code(caught.value) == 66
    assert f"127.0.0.1:{server.port}/Bounced: no such folder for bounces" in str(caught.value)
    assert "Folders there: Bounces, INBOX." in str(caught.value)


def test_imap_wrong_password(imap_server: ImapServer) -> None:
    server = imap_server()
    with pytest.raises(LoginRefusedError) as caught:
        open_source(server.spec(), password="wrong")
    assert exit_code(caught.value) == 77
    assert f"the IMAP server 127.0.0.1:{server.port} refused the login of bounces" in str(caught.value)
    assert "--password-env" in str(caught.value)


def test_imap_without_password() -> None:
    with pytest.raises(
        LoginRefusedError, match=r"no password for bounces at the IMAP server example\.com:993"
    ) as caught:
        open_source("imaps://bounces@example.com/INBOX")
    assert exit_code(caught.value) == 77


def test_imap_server_not_there() -> None:
    port = free_port()
    with pytest.raises(ServerUnavailableError) as caught:
        open_source(f"imap://bounces@127.0.0.1:{port}/INBOX", password="x", timeout=5)
    assert exit_code(caught.value) == 69
    assert f"cannot reach the IMAP server 127.0.0.1:{port}: Connection refused" in str(caught.value)


def test_imaps_with_a_trusted_certificate(imap_server: ImapServer) -> None:
    server = imap_server(tls=True)
    server.deliver(message(1))
    source = open_source(server.spec(tls=True), password=server.password, ssl_context=server.client_context)
    assert read_all(source) == [("1", message(1))]
    source.close()


def test_imaps_with_an_untrusted_certificate(imap_server: ImapServer) -> None:
    server = imap_server(tls=True)
    with pytest.raises(ServerUnavailableError, match="could not be verified") as caught:
        open_source(server.spec(tls=True), password=server.password, ssl_context=ssl.create_default_context())
    assert exit_code(caught.value) == 69


def test_imaps_to_a_plain_port(imap_server: ImapServer) -> None:
    server = imap_server()
    spec = f"imaps://bounces@127.0.0.1:{server.port}/INBOX"
    with pytest.raises(ServerUnavailableError, match="for a server without TLS use imap://"):
        open_source(spec, password=server.password, timeout=5)


def test_imap_connection_lost_while_reading(imap_server: ImapServer) -> None:
    server = imap_server()
    server.deliver(message(1))
    source = open_source(server.spec(), password=server.password)
    server.stop()
    with pytest.raises(ServerUnavailableError) as caught:
        list(source.messages())
    assert exit_code(caught.value) == 69
    assert f"the connection to the IMAP server 127.0.0.1:{server.port}/INBOX broke while reading messages" in str(
        caught.value
    )
    source.close()


def test_fetch_reply_with_the_uid_before_or_after_the_message() -> None:
    reply = [
        (b"1 (UID 7 BODY[] {5}", b"one\r\n"),
        b")",
        b"2 (FLAGS (\\Seen))",  # an unsolicited flag change: not a message
        (b"3 (BODY[] {5}", b"two\r\n"),
        b" UID 9)",
    ]
    assert _fetched_bodies(reply) == {7: b"one\r\n", 9: b"two\r\n"}
