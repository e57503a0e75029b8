"""`mailcast bounces import`: bounces, complaints and unsubscribe mails read back from a mailbox.

Campaigns are sent to a real SMTP test server; the reports come from tests/samples/feedback/
(written from the published formats) or are made here in RFC 3464's shape for the real Message-IDs
and VERP tags of what was sent, and are read from a real Maildir, mbox or Dovecot IMAP server.
"""

from __future__ import annotations

import mailbox
import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import mailcast, smtp, start_mailcast, write_campaign
from smtp_server import TestServer

SAMPLES = Path(__file__).parent / "samples" / "feedback"
PEOPLE = [
    "zoe@example.org", "max@example.net", "ana@example.net", "lee@example.org", "pat@example.com",
    "sam@example.com", "kim@example.net", "ray@example.org", "ines@example.org", "fay@example.com",
]  # fmt: skip
BOUNCES = "bounces@mail.example.com"
NOW = "2026-12-01T10:00:00+00:00"


def send(
    tmp_path: Path, server: TestServer, *, verp: bool = True, emails: list[str] | None = None, now: str = NOW
) -> tuple[Path, Path]:
    extra: dict[str, Any] = {"unsubscribe": {"mailto": "unsubscribe@example.com"}, "limits": {"warmup": "off"}}
    if verp:
        extra["bounce_address"] = BOUNCES
    campaign = write_campaign(
        tmp_path / "c",
        transport=smtp(server.port),
        emails=emails or PEOPLE,
        sender="Acme News <news@mail.example.com>",
        extra=extra,
    )
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state, now=now)
    assert result.code == 0, result.out + result.err
    return campaign, state


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def maildir(folder: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for message in messages:
        box.add(message)
    box.close()
    return folder


def sent_to(server: TestServer, email: str) -> tuple[str, str]:
    """(VERP envelope sender, Message-ID) of the message the server took for `email`."""
    message = next(m for m in server.messages if m.to == email)
    return message.mail_from, str(message.parsed()["Message-ID"])


def dsn(final_recipient: str, *, to: str, original_id: str = "", status: str = "5.1.1", report_id: str = "") -> bytes:
    """A delivery status notification in RFC 3464's shape."""
    action = "failed" if status.startswith("5") else "delayed"
    headers = f"Message-ID: {original_id}\r\n" if original_id else ""
    return (
        f"From: MAILER-DAEMON@relay.example.net\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{report_id or final_recipient + status}.dsn@relay.example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {final_recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} no such mailbox\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@mail.example.com\r\n{headers}\r\n--b--\r\n"
    ).encode()


def import_json(source: Path | str, state: Path, *args: str, now: str = NOW, password: str = "") -> dict[str, Any]:
    result = mailcast(
        "bounces", "import", str(source), "--json", *args, state=state, now=now, MAILCAST_IMAP_PASSWORD=password
    )
    assert result.code == 0, result.err
    data: dict[str, Any] = result.json()
    return data


def statuses(campaign: Path, state: Path) -> dict[str, str]:
    report = mailcast("report", str(campaign), "--json", state=state).json()
    return {r["email"]: r["status"] for r in report["recipients"]}


def suppressed(state: Path) -> dict[str, str]:
    return {
        e["email"].lower(): e["reason"] for e in mailcast("suppress", "list", "--json", state=state, now=NOW).json()
    }


def test_verp_gives_each_message_its_own_envelope_sender(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    send(tmp_path, server)
    senders = {m.to: m.mail_from for m in server.messages}
    assert len(set(senders.values())) == len(PEOPLE)
    for email, envelope in senders.items():
        assert re.fullmatch(r"bounces\+1-[a-z2-7]{8}@mail\.example\.com", envelope), envelope
        assert email.partition("@")[0] not in envelope  # the tag does not give the address away
    assert all(m.parsed()["From"] == "Acme News <news@mail.example.com>" for m in server.messages)


def test_without_bounce_address_the_envelope_sender_is_from(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    send(tmp_path, server, verp=False)
    assert {m.mail_from for m in server.messages} == {"news@mail.example.com"}


@pytest.mark.parametrize(
    ("name", "bounced"),
    [
        ("postfix-hard", {"zoe@example.org"}),
        ("exim-plain", {"max@example.net"}),
        ("exchange", {"ana@example.net"}),
        ("gmail", {"lee@example.org"}),
        ("amazon-ses", {"pat@example.com", "sam@example.com"}),
        ("qmail", {"ines@example.org"}),
    ],
)
def test_a_hard_bounce_marks_the_recipient_bounced_and_suppressed(
    tmp_path: Path, smtp_server: Callable[..., TestServer], name: str, bounced: set[str]
) -> None:
    campaign, state = send(tmp_path, smtp_server(), verp=False)
    result = import_json(maildir(tmp_path / "box", sample(name)), state)
    assert result["counts"]["hard"] == len(bounced) and result["counts"]["unmatched"] == 0
    after = statuses(campaign, state)
    assert {e for e, s in after.items() if s == "bounced"} == bounced
    assert all(after[e] == "sent" for e in PEOPLE if e not in bounced)
    blocked = suppressed(state)
    assert set(blocked) == bounced and all(r.startswith("bounced") for r in blocked.values())
    # sending to the same list again skips them
    again = mailcast("send", str(campaign), "--yes", "--again", state=state, now=NOW)
    assert f"{len(PEOPLE) - len(bounced)} sent now" in again.out


def test_matching_by_verp_tag_alone(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign, state = send(tmp_path, server)
    envelope, _ = sent_to(server, "fay@example.com")  # run 1's
    assert mailcast("send", str(campaign), "--yes", "--again", state=state, now=NOW).code == 0  # run 2, same people
    # no Message-ID quoted: only the tag tells which of fay's two messages bounced
    assert import_json(maildir(tmp_path / "box", dsn("fay@example.com", to=envelope)), state)["counts"]["hard"] == 1
    run1 = mailcast("report", str(campaign), "--json", "--run", "1", state=state).json()
    run2 = mailcast("report", str(campaign), "--json", "--run", "2", state=state).json()
    assert next(r for r in run1["recipients"] if r["email"] == "fay@example.com")["status"] == "bounced"
    assert next(r for r in run2["recipients"] if r["email"] == "fay@example.com")["status"] == "sent"


def test_a_bounce_about_a_cc_is_not_the_to_recipients(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign, state = send(tmp_path, server)
    envelope, _ = sent_to(server, "zoe@example.org")
    # the archive copy (a Bcc) bounced: same envelope sender, another final recipient
    result = import_json(maildir(tmp_path / "box", dsn("archive@example.net", to=envelope, status="5.2.2")), state)
    assert (result["counts"]["hard"], result["counts"]["unmatched"]) == (0, 1)
    assert statuses(campaign, state)["zoe@example.org"] == "sent" and suppressed(state) == {}


def test_matching_by_message_id_alone(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign, state = send(tmp_path, server, verp=False)
    _, message_id = sent_to(server, "fay@example.com")
    report = dsn("", to="news@mail.example.com", original_id=message_id)
    assert import_json(maildir(tmp_path / "box", report), state)["counts"]["hard"] == 1
    assert statuses(campaign, state)["fay@example.com"] == "bounced"


def test_a_complaint_and_an_unsubscribe_mail(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    campaign, state = send(tmp_path, smtp_server())
    result = import_json(maildir(tmp_path / "box", sample("arf-abuse"), sample("unsubscribe")), state)
    assert (result["counts"]["complaints"], result["counts"]["unsubscribes"]) == (1, 1)
    assert statuses(campaign, state)["kim@example.net"] == "complained"
    assert suppressed(state) == {"kim@example.net": "complaint", "zoe@example.org": "unsubscribed"}
    report = mailcast("report", str(campaign), "--json", state=state).json()
    assert report["totals"]["complained"] == 1 and report["rates"]["complained"] == 0.1
    assert "1 complained (10.0%)" in mailcast("report", str(campaign), state=state).out
    status = mailcast("status", "--json", state=state).json()[0]
    assert (status["sent"], status["complained"], status["bounced"]) == (10, 1, 0)


def test_soft_bounces_are_noted_and_three_messages_in_30_days_suppress(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign, state = send(tmp_path, server)
    first = import_json(maildir(tmp_path / "b1", sample("postfix-delayed")), state)
    assert first["counts"]["soft"] == 1
    report = mailcast("report", str(campaign), "--json", state=state).json()
    ray = next(r for r in report["recipients"] if r["email"] == "ray@example.org")
    assert ray["status"] == "sent" and "4.2.2" in ray["last_reply"]
    # more delay warnings about that same message count once
    envelope, _ = sent_to(server, "ray@example.org")
    again = [dsn("ray@example.org", to=envelope, status="4.2.2", report_id=f"warning{n}") for n in (2, 3)]
    import_json(maildir(tmp_path / "b2", *again), state)
    assert suppressed(state) == {}
    # two more messages (runs 2 and 3) soft-bounce too: three messages in 30 days
    for run in (2, 3):
        before = len(server.messages)
        assert mailcast("send", str(campaign), "--yes", "--again", state=state, now=NOW).code == 0
        envelope = next(m.mail_from for m in server.messages[before:] if m.to == "ray@example.org")
        report = dsn("ray@example.org", to=envelope, status="4.2.2", report_id=f"run{run}")
        import_json(maildir(tmp_path / f"b{run + 1}", report), state)
    entry = mailcast("suppress", "list", "--json", state=state, now=NOW).json()
    assert [(e["email"], e["expires_at"][:10]) for e in entry] == [("ray@example.org", "2026-12-31")]
    later = mailcast("suppress", "list", "--json", state=state, now="2027-01-01T10:00:00+00:00").json()
    assert later == []  # suppressed for 30 days only


def test_soft_bounces_never_shorten_an_unsubscribe(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign, state = send(tmp_path, server)
    for _ in (2, 3):
        assert mailcast("send", str(campaign), "--yes", "--again", state=state, now=NOW).code == 0
    envelopes = [m.mail_from for m in server.messages if m.to == "zoe@example.org"]  # runs 1, 2 and 3
    import_json(maildir(tmp_path / "b1", sample("unsubscribe")), state)  # zoe unsubscribes: for good
    soft = [dsn("zoe@example.org", to=e, status="4.2.2", report_id=e) for e in envelopes]
    assert import_json(maildir(tmp_path / "b2", *soft), state)["counts"]["soft"] == 3
    later = mailcast("suppress", "list", "--json", state=state, now="2027-06-01T10:00:00+00:00").json()
    assert [(e["email"].lower(), e["reason"], e["expires_at"]) for e in later] == [
        ("zoe@example.org", "unsubscribed", None)
    ]


def test_importing_twice_changes_nothing_the_second_time(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    campaign, state = send(tmp_path, smtp_server(), verp=False)
    box = maildir(tmp_path / "box", sample("postfix-hard"), sample("arf-abuse"), sample("postfix-delayed"))
    import_json(box, state)
    before = (statuses(campaign, state), suppressed(state), mailcast("warmup", "--json", state=state, now=NOW).out)
    second = import_json(box, state)
    assert second["counts"]["already_seen"] == 3
    assert sum(v for k, v in second["counts"].items() if k != "already_seen") == 0
    after = (statuses(campaign, state), suppressed(state), mailcast("warmup", "--json", state=state, now=NOW).out)
    assert after == before
    assert len(list(mailbox.Maildir(box, create=False).keys())) == 3  # nothing is deleted from the source


def test_dry_run_says_what_would_change_and_changes_nothing(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    campaign, state = send(tmp_path, smtp_server(), verp=False)
    box = maildir(tmp_path / "box", sample("postfix-hard"))
    dry = import_json(box, state, "--dry-run")
    assert dry["dry_run"] and dry["counts"]["hard"] == 1 and dry["changes"][0]["email"] == "zoe@example.org"
    assert statuses(campaign, state)["zoe@example.org"] == "sent" and suppressed(state) == {}
    text = mailcast("bounces", "import", str(box), "--dry-run", state=state, now=NOW)
    assert "Dry run: would change" in text.out and "hard: 1" in text.out


def _ledger(state: Path) -> tuple[Any, ...]:
    db = sqlite3.connect(state)
    try:
        return tuple(
            db.execute(sql).fetchall()
            for sql in (
                "SELECT key, status, last_reply FROM recipients ORDER BY key",
                "SELECT key, reason FROM suppressions ORDER BY key",
                "SELECT domain, day, claimed, sent, rejected FROM domain_days ORDER BY domain, day",
                "SELECT key, COUNT(*) FROM soft_bounces GROUP BY key ORDER BY key",
                "SELECT COUNT(*) FROM feedback_seen",
            )
        )
    finally:
        db.close()


def test_an_import_killed_midway_and_run_again_ends_as_one_that_ran_through(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    emails = [f"r{i}@example.com" for i in range(1, 121)]
    server = smtp_server()
    _, state = send(tmp_path, server, emails=emails)
    reports = [dsn(e, to=sent_to(server, e)[0]) for e in emails[:100]]
    reports += [
        dsn(e, to=sent_to(server, e)[0], status="4.2.2", report_id=f"{e}-{n}") for e in emails[100:] for n in (1, 2, 3)
    ]
    box = maildir(tmp_path / "box", *reports * 3)  # each report three times, as a mailbox that is never emptied
    reference = tmp_path / "reference.db"
    reference.write_bytes(state.read_bytes())
    import_json(box, reference)

    proc = start_mailcast("bounces", "import", str(box), state=state, now=NOW)
    deadline = time.monotonic() + 60
    while True:  # kill it once some reports are in and others are not
        db = sqlite3.connect(state)
        seen = db.execute("SELECT COUNT(*) FROM feedback_seen").fetchone()[0]
        db.close()
        if seen >= 20 or proc.poll() is not None:
            break
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    db = sqlite3.connect(state)
    assert 0 < db.execute("SELECT COUNT(*) FROM feedback_seen").fetchone()[0] < len(reports)  # killed midway
    db.close()
    again = import_json(box, state)
    assert again["counts"]["already_seen"] > 0
    assert _ledger(state) == _ledger(reference)


def test_an_mbox_source(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    campaign, state = send(tmp_path, smtp_server(), verp=False)
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(sample("postfix-hard"))
    box.add(sample("gmail"))
    box.close()
    assert import_json(tmp_path / "bounces.mbox", state)["counts"]["hard"] == 2
    after = statuses(campaign, state)
    assert after["zoe@example.org"] == after["lee@example.org"] == "bounced"


def test_an_imap_folder(tmp_path: Path, smtp_server: Callable[..., TestServer], imap_server: Any) -> None:
    campaign, state = send(tmp_path, smtp_server(), verp=False)
    imap = imap_server()
    imap.deliver(sample("exchange"))
    imap.deliver(sample("out-of-office"))
    result = import_json(imap.spec(), state, password=imap.password)
    assert (result["counts"]["hard"], result["counts"]["unmatched"]) == (1, 1)
    assert statuses(campaign, state)["ana@example.net"] == "bounced"
    assert all("\\Seen" in flags for flags in imap.flags().values())  # processed messages are flagged seen
    wrong = mailcast("bounces", "import", imap.spec(), state=state, MAILCAST_IMAP_PASSWORD="wrong")
    assert wrong.code == 77


def _level_next_day(tmp_path: Path, server: TestServer, bounced: int) -> int:
    emails = [f"w{i}@example.com" for i in range(1, 101)]
    campaign = write_campaign(
        tmp_path / "c", transport=smtp(server.port), emails=emails, sender="News <news@mail.example.com>"
    )
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state, now=NOW).code == 0
    ids = {m.to: str(m.parsed()["Message-ID"]) for m in server.messages}
    reports = [dsn(e, to="news@mail.example.com", original_id=ids[e]) for e in emails[:bounced]]
    import_json(maildir(tmp_path / "box", *reports), state, now="2026-12-01T18:00:00+00:00")
    domains = mailcast("warmup", "--json", state=state, now="2026-12-02T09:00:00+00:00").json()
    level: int = domains[0]["level"]
    return level


def test_hard_bounces_hold_warmup_back_as_rejections_do(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    assert _level_next_day(tmp_path / "clean", smtp_server(), bounced=0) == 2
    assert _level_next_day(tmp_path / "bounced", smtp_server(), bounced=10) == 1


def test_bad_input_is_counted_never_a_traceback(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    _, state = send(tmp_path, smtp_server(), verp=False)
    box = maildir(
        tmp_path / "box",
        sample("malformed-truncated"),
        sample("out-of-office"),
        dsn("stranger@example.net", to="news@mail.example.com"),  # never sent to
        b"\xff\xfe not a message at all",
    )
    (box / "cur" / "README.txt").write_text("not a message", encoding="utf-8")
    result = mailcast("bounces", "import", str(box), state=state, now=NOW)
    assert result.code == 0
    assert "unmatched: 3" in result.out  # the malformed report, the out-of-office, the stranger
    assert "README.txt: not a message" in result.out and result.out.count("not a message") == 2  # with a warning
    truncated = tmp_path / "cut.mbox"
    truncated.write_bytes(b"From MAILER-DAEMON Tue Jun  4 09:12:07 2024\n" + sample("postfix-hard")[:700])
    assert mailcast("bounces", "import", str(truncated), state=state, now=NOW).code == 0
    missing = mailcast("bounces", "import", str(tmp_path / "nowhere"), state=state, now=NOW)
    assert missing.code == 66 and "nowhere" in missing.err


def test_two_imports_at_once_apply_each_report_once(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    emails = [f"r{i}@example.com" for i in range(1, 41)]
    server = smtp_server()
    _, state = send(tmp_path, server, emails=emails)
    reports = [dsn(e, to=sent_to(server, e)[0], status="4.2.2", report_id=e) for e in emails]
    box = maildir(tmp_path / "box", *reports)
    reference = tmp_path / "reference.db"
    reference.write_bytes(state.read_bytes())
    import_json(box, reference)
    first = start_mailcast("bounces", "import", str(box), state=state, now=NOW)
    second = start_mailcast("bounces", "import", str(box), state=state, now=NOW)
    for proc in (first, second):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert _ledger(state) == _ledger(reference)  # each soft bounce counted once, not twice
