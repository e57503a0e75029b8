"""Feedback mail read back from a mailbox: each MTA's bounce, a complaint, an unsubscribe request, an
auto-reply and broken bytes, read from the samples in tests/samples/feedback/ (written for these
tests after RFC 3464, RFC 5965 and what each MTA sends)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from mailcast.feedback import Report, Verdict, read_report, verp_tag

SAMPLES = Path(__file__).parent / "samples" / "feedback"
UNSUBSCRIBE = frozenset({"unsubscribe@example.com"})
ORIGINAL_ID = "<{}123456789abcdef0123456789abcdef@mail.example.com>"  # one first digit per sample


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def read(raw: bytes) -> Report:
    return read_report(raw, unsubscribe_addresses=UNSUBSCRIBE)


@pytest.mark.parametrize(
    ("name", "kind", "verdicts", "original_id", "envelope_to"),
    [
        (
            "postfix-hard.eml",
            "dsn",
            [("zoe@example.org", "hard", "5.1.1")],
            ORIGINAL_ID.format(0),
            ["bounces+7-k3j9x2@mail.example.com"],
        ),
        (
            "postfix-delayed.eml",
            "dsn",
            [("ray@example.org", "soft", "4.2.2")],
            ORIGINAL_ID.format(5),
            ["bounces+7-r5t2w8@mail.example.com"],
        ),
        (
            "exim-plain.eml",
            "dsn",
            [("max@example.net", "hard", "5.1.1")],
            ORIGINAL_ID.format(1),
            ["bounces+7-m2p8q4@mail.example.com"],
        ),
        (
            "qmail.eml",
            "dsn",
            [("ines@example.org", "hard", "5.2.1")],
            ORIGINAL_ID.format(2),
            ["bounces+7-q7v3n1@mail.example.com"],
        ),
        (
            "exchange.eml",
            "dsn",
            [("ana@example.net", "hard", "5.1.10")],
            ORIGINAL_ID.format(3),
            ["bounces+7-x4c6b0@mail.example.com"],
        ),
        (
            "gmail.eml",
            "dsn",
            [("lee@example.org", "hard", "5.1.1")],
            ORIGINAL_ID.format(4),
            ["bounces+7-g8h1j5@mail.example.com"],
        ),
        (
            "amazon-ses.eml",
            "dsn",
            [("sam@example.com", "hard", "5.1.1"), ("pat@example.com", "hard", "5.2.2")],
            ORIGINAL_ID.format(6),
            ["bounces+7-s9d0f3@mail.example.com"],
        ),
        (
            "arf-abuse.eml",
            "arf",
            [("kim@example.net", "complaint", None)],
            ORIGINAL_ID.format(7),
            ["fbl@mail.example.com", "fbl-reports@example.net"],
        ),
        (
            "unsubscribe.eml",
            "unsubscribe",
            [("zoe@example.org", "unsubscribe", None)],
            None,
            ["unsubscribe@example.com", "Zoe@Example.org"],
        ),
        ("out-of-office.eml", "unmatched", [], None, ["bounces+7-o3u6i9@mail.example.com"]),
        ("malformed-truncated.eml", "malformed", [], None, ["bounces+7-z0y1x2@mail.example.com"]),
    ],
)
def test_each_sample_is_read_for_what_it_is(
    name: str,
    kind: str,
    verdicts: list[tuple[str, str, str | None]],
    original_id: str | None,
    envelope_to: list[str],
) -> None:
    report = read(sample(name))
    assert report.kind == kind
    assert [(verdict.address, verdict.kind, verdict.status) for verdict in report.verdicts] == verdicts
    assert report.original_message_ids == ([original_id] if original_id else [])
    assert report.envelope_to == envelope_to


@pytest.mark.parametrize(
    ("name", "diagnostic"),
    [
        (
            "postfix-hard.eml",
            "550 5.1.1 <zoe@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        ),
        ("postfix-delayed.eml", "452 4.2.2 <ray@example.org>: Mailbox full"),
        ("exim-plain.eml", "550 5.1.1 <max@example.net>: Recipient address rejected: User unknown"),
        ("qmail.eml", "550 5.2.1 <ines@example.org>... Mailbox disabled for this recipient"),
        (
            "exchange.eml",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        ),
        ("amazon-ses.eml", "550 5.1.1 user unknown"),
        ("arf-abuse.eml", "complaint (abuse)"),
        ("unsubscribe.eml", "unsubscribe request: unsubscribe"),
    ],
)
def test_a_verdict_says_why_in_a_few_words(name: str, diagnostic: str) -> None:
    assert read(sample(name)).verdicts[0].diagnostic == diagnostic


def test_the_report_names_who_sent_it_what_about_and_where_the_original_came_from() -> None:
    report = read(sample("postfix-hard.eml"))
    assert report.report_id == "<20240604091207.4VxQ2L0mT9z9sWb@relay.example.net>"
    assert report.sender == "mailer-daemon@relay.example.net"
    assert report.subject == "Undelivered Mail Returned to Sender"
    assert report.original_return_paths == ["bounces+7-k3j9x2@mail.example.com"]
    unsubscribe = read(sample("unsubscribe.eml"))
    assert (unsubscribe.sender, unsubscribe.subject) == ("zoe@example.org", "unsubscribe")


def test_a_complaint_carries_the_verp_envelope_of_the_original_it_went_back_about() -> None:
    # an ARF report goes to the feedback address, not to the VERP one: the original's sender has the tag
    report = read(sample("arf-abuse.eml"))
    assert report.original_return_paths == ["bounces+7-a1b2c3@mail.example.com"]
    assert verp_tag(report.original_return_paths[0], "bounces@mail.example.com") == "7-a1b2c3"
    assert [verp_tag(address, "bounces@mail.example.com") for address in report.envelope_to] == [None, None]


def test_the_verp_tag_of_a_bounce_is_found_in_its_envelope() -> None:
    report = read(sample("postfix-hard.eml"))
    assert {verp_tag(address, "bounces@mail.example.com") for address in report.envelope_to} == {"7-k3j9x2"}


def test_a_plain_text_bounce_quotes_the_original_return_path() -> None:
    assert read(sample("exim-plain.eml")).original_return_paths == ["bounces+7-m2p8q4@mail.example.com"]
    assert read(sample("qmail.eml")).original_return_paths == ["bounces+7-q7v3n1@mail.example.com"]


# --- DSNs written otherwise ---------------------------------------------------------------------


def dsn(*blocks: str, human: str = "Delivery report.") -> bytes:
    """A small RFC 3464 report with the given recipient blocks."""
    parts = "".join(f"\n{block.strip()}\n" for block in blocks)
    return (
        "From: MAILER-DAEMON@relay.example.net\n"
        "To: bounces+7-k3j9x2@mail.example.com\n"
        "Subject: Delivery Status Notification\n"
        "Message-ID: <dsn-1@relay.example.net>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        "\n--b\nContent-Type: text/plain\n\n"
        f"{human}\n"
        "\n--b\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; relay.example.net\n{parts}"
        "\n--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("block", "kind", "status"),
    [
        ("Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.7.1", "hard", "5.7.1"),
        ("Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 4.4.7", "soft", "4.4.7"),
        ("Final-Recipient: rfc822; a@example.org\nAction: failed", "hard", None),
        ("Final-Recipient: rfc822; a@example.org\nAction: delayed\nStatus: 4.4.1", "soft", "4.4.1"),
        ("Final-Recipient: rfc822; a@example.org\nAction: Failed (bad mailbox)\nStatus: 5.1.1 (bad)", "hard", "5.1.1"),
        ("Final-Recipient: rfc822; a@example.org\nAction: error\nStatus: 5.0.0", "hard", "5.0.0"),
        ("Final-Recipient: rfc822; a@example.org\nStatus: 5.2.1", "hard", "5.2.1"),
    ],
)
def test_failed_with_5xx_is_hard_and_4xx_or_delayed_soft(block: str, kind: str, status: str | None) -> None:
    report = read(dsn(block))
    assert report.kind == "dsn"
    assert [(verdict.address, verdict.kind, verdict.status) for verdict in report.verdicts] == [
        ("a@example.org", kind, status)
    ]


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_delivery_is_no_verdict(action: str) -> None:
    report = read(dsn(f"Final-Recipient: rfc822; a@example.org\nAction: {action}\nStatus: 2.0.0"))
    assert (report.kind, report.verdicts) == ("dsn", [])


def test_one_verdict_per_recipient_block_and_original_recipient_when_there_is_no_final_one() -> None:
    report = read(
        dsn(
            "Final-Recipient: rfc822; <B@Example.org>\nAction: failed\nStatus: 5.1.1",
            "Original-Recipient: rfc822; c@example.org\nAction: delayed\nStatus: 4.2.2",
            "Final-Recipient: rfc822; d@example.org\nAction: delivered\nStatus: 2.0.0",
        )
    )
    assert [(verdict.address, verdict.kind) for verdict in report.verdicts] == [
        ("b@example.org", "hard"),
        ("c@example.org", "soft"),
    ]


def test_without_a_diagnostic_code_the_bounce_speaks_in_its_own_words() -> None:
    raw = sample("postfix-hard.eml").replace(b"Diagnostic-Code:", b"X-Diagnostic:")
    (verdict,) = read(raw).verdicts
    assert verdict.diagnostic == (
        "550 5.1.1 <zoe@example.org>: Recipient address rejected: User unknown in virtual mailbox table "
        "(in reply to RCPT TO command)"
    )
    human = "Delivery to the following recipient failed permanently:\n\n     e@example.org\n"
    (bare,) = read(dsn("Final-Recipient: rfc822; e@example.org\nAction: failed", human=human)).verdicts
    assert (bare.status, bare.diagnostic) == (None, "e@example.org")


def test_a_postfix_bounce_without_its_delivery_status_part_is_read_from_its_text() -> None:
    raw = sample("postfix-hard.eml").replace(b"Content-Type: message/delivery-status", b"Content-Type: text/x-nothing")
    assert read(raw).kind == "malformed"  # a report that says it is a DSN, yet nothing in it reads as one
    older = raw.replace(b"The mail system", b"The Postfix program")
    report = read(older)  # signed as Postfix signed before 2.3, which flufl.bounce knows
    assert report.kind == "dsn"
    assert report.verdicts == [
        Verdict(
            "zoe@example.org",
            "hard",
            "5.1.1",
            "550 5.1.1 <zoe@example.org>: Recipient address rejected: User unknown in virtual mailbox table "
            "(in reply to RCPT TO command)",
        )
    ]


def test_an_exim_bounce_without_x_failed_recipients_is_still_recognised_by_its_text() -> None:
    report = read(sample("exim-plain.eml").replace(b"X-Failed-Recipients:", b"X-Other:"))
    assert [(verdict.address, verdict.kind, verdict.status) for verdict in report.verdicts] == [
        ("max@example.net", "hard", "5.1.1")
    ]


def test_a_multi_line_smtp_reply_is_one_sentence() -> None:
    raw = sample("exim-plain.eml").replace(
        b"    550 5.1.1 <max@example.net>: Recipient address rejected: User unknown\n",
        b"    550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
        b"    550-5.1.1 double-checking the recipient's email address for typos or\n"
        b"    550 5.1.1 unnecessary spaces.\n",
    )
    assert read(raw).verdicts[0].diagnostic == (
        "550-5.1.1 The email account that you tried to reach does not exist. Please try "
        "double-checking the recipient's email address for typos or unnecessary spaces."
    )


# --- complaints ---------------------------------------------------------------------------------


def test_a_complaint_without_original_rcpt_to_names_the_to_of_the_original() -> None:
    raw = sample("arf-abuse.eml").replace(b"Original-Rcpt-To: <kim@example.net>\n", b"")
    assert read(raw).verdicts == [Verdict("kim@example.net", "complaint", None, "complaint (abuse)")]


def test_a_complaint_may_enclose_only_the_original_headers() -> None:
    raw = (
        sample("arf-abuse.eml")
        .replace(b"Original-Rcpt-To: <kim@example.net>\n", b"")
        .replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
    )
    report = read(raw)
    assert [verdict.address for verdict in report.verdicts] == ["kim@example.net"]
    assert report.original_message_ids == [ORIGINAL_ID.format(7)]


def test_a_complaint_whose_recipient_is_redacted_has_an_unknown_address() -> None:
    raw = (
        sample("arf-abuse.eml")
        .replace(b"Original-Rcpt-To: <kim@example.net>\n", b"")
        .replace(b"To: Kim@example.net\n", b"To: redacted\n")
    )
    report = read(raw)
    assert report.verdicts == [Verdict("", "complaint", None, "complaint (abuse)")]
    assert report.original_message_ids == [ORIGINAL_ID.format(7)]  # the way back to the recipient


@pytest.mark.parametrize(("feedback_type", "verdicts"), [(b"fraud", 1), (b"not-spam", 0), (b"auth-failure", 0)])
def test_not_spam_and_auth_failure_reports_are_no_complaints(feedback_type: bytes, verdicts: int) -> None:
    report = read(sample("arf-abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: " + feedback_type))
    assert report.kind == "arf"
    assert len(report.verdicts) == verdicts


# --- unsubscribe requests and auto-replies ------------------------------------------------------


def test_an_unsubscribe_mail_is_a_request_only_to_an_unsubscribe_address() -> None:
    raw = sample("unsubscribe.eml")
    assert read_report(raw).kind == "unmatched"
    assert read_report(raw, unsubscribe_addresses=frozenset({"stop@example.com"})).kind == "unmatched"
    assert read_report(raw, unsubscribe_addresses=frozenset({"UNSUBSCRIBE@Example.COM"})).kind == "unsubscribe"


def test_the_unsubscribe_address_may_be_only_in_the_delivery_headers() -> None:
    raw = sample("unsubscribe.eml").replace(b"\nTo: unsubscribe@example.com", b"\nTo: Acme News <news@example.com>")
    assert read(raw).verdicts == [Verdict("zoe@example.org", "unsubscribe", None, "unsubscribe request: unsubscribe")]


def test_an_auto_reply_is_never_an_unsubscribe_request_or_a_bounce() -> None:
    to_unsubscribe = sample("out-of-office.eml").replace(
        b"To: bounces+7-o3u6i9@mail.example.com", b"To: unsubscribe@example.com"
    )
    assert read(to_unsubscribe).kind == "unmatched"
    quoting_a_failure = sample("out-of-office.eml") + (
        b"\nThis message was created automatically by mail delivery software.\n\n"
        b"    SMTP error from remote mail server after RCPT TO:<office@example.net>:\n"
        b"    550 5.1.1 User unknown\n"
    )
    assert read(quoting_a_failure).kind == "unmatched"


def test_a_bounce_to_the_unsubscribe_address_is_a_bounce() -> None:
    raw = sample("exim-plain.eml").replace(b"To: bounces+7-m2p8q4@mail.example.com", b"To: unsubscribe@example.com")
    report = read(raw)
    assert (report.kind, [verdict.address for verdict in report.verdicts]) == ("dsn", ["max@example.net"])


def test_a_newsletter_or_a_note_in_the_mailbox_is_unmatched() -> None:
    raw = b"From: Someone <someone@example.net>\nTo: bounces@mail.example.com\nSubject: hello\n\nJust saying hi.\n"
    assert read(raw).kind == "unmatched"


# --- broken bytes -------------------------------------------------------------------------------


def test_a_truncated_report_is_malformed_yet_says_what_it_can() -> None:
    report = read(sample("malformed-truncated.eml"))
    assert report.kind == "malformed"
    assert report.report_id.startswith("sha256:")
    assert report.sender == "mailer-daemon@relais.example.net"
    assert report.subject == "Message non d\ufffdlivr\ufffd"  # the bytes that were not UTF-8 replaced


def test_bytes_that_are_not_utf8_in_the_headers_leave_the_rest_readable() -> None:
    raw = sample("postfix-hard.eml").replace(
        b"Subject: Undelivered Mail Returned to Sender", b"Subject: Courrier non d\xe9livr\xe9"
    )
    report = read(raw)
    assert (report.kind, report.subject) == ("dsn", "Courrier non d\ufffdlivr\ufffd")
    assert report.verdicts[0].address == "zoe@example.org"


def test_bad_base64_in_the_human_part_leaves_the_report_readable() -> None:
    raw = sample("gmail.eml").replace(
        b'Content-Type: text/plain; charset="UTF-8"\n',
        b'Content-Type: text/plain; charset="UTF-8"\nContent-Transfer-Encoding: base64\n',
    )
    report = read(raw)
    assert [(verdict.address, verdict.status) for verdict in report.verdicts] == [("lee@example.org", "5.1.1")]


def test_a_report_truncated_inside_its_delivery_status_keeps_the_blocks_it_has() -> None:
    raw = sample("postfix-hard.eml")
    cut = raw[: raw.index(b"Remote-MTA: dns; mx.example.org")]
    assert [(verdict.address, verdict.kind) for verdict in read(cut).verdicts] == [("zoe@example.org", "hard")]


def test_line_endings_do_not_change_the_reading() -> None:
    for path in sorted(SAMPLES.glob("*.eml")):
        raw = path.read_bytes()
        lf, crlf = read(raw), read(raw.replace(b"\n", b"\r\n"))
        assert dataclasses.replace(crlf, report_id=lf.report_id) == lf, path.name


def test_the_report_id_is_the_same_for_the_same_bytes_and_a_hash_without_a_message_id() -> None:
    raw = sample("qmail.eml")  # qmail writes no Message-ID
    first = read(raw).report_id
    assert first == read(raw).report_id
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert read(raw + b"\n").report_id != first
    assert read(sample("gmail.eml")).report_id == "<66681c12.a70a0220.9c1f3.0d4a.GMR@mx.google.com>"


def fuzzed_inputs() -> list[bytes]:
    """Empty and random bytes, every sample cut short at many places, samples with bytes changed,
    and a few known traps (a charset name Python refuses, headers the email package chokes on)."""
    generator = random.Random(12)
    samples = [path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))]
    inputs = [b"", b"\n", b"\r\n\r\n", b"\x00" * 64, b"From:\n\n", b":\n", b"--\n--\n"]
    inputs += [generator.randbytes(generator.randint(1, 600)) for _ in range(40)]
    inputs += [raw[:cut] for raw in samples for cut in range(0, len(raw), 97)]
    for _ in range(200):
        mutated = bytearray(generator.choice(samples))
        for _ in range(generator.randint(1, 20)):
            at = generator.randrange(len(mutated))
            mutated[at : at + generator.randint(0, 3)] = generator.choice(
                [b"\n", b"\r", b"\xff", b"\x00", b"<", b">", b";", b"@", b":", b'"', b"=?utf-8?q?", b"\n\n", b"--"]
            )
        inputs.append(bytes(mutated))
    inputs += [
        b"From: MAILER-DAEMON@x.example.net\nContent-Type: text/plain; charset=utf\x00-8\n\nMessage-ID: <a@b>\n",
        b"From: MAILER-DAEMON@x.example.net\nContent-Type: text/plain; charset=idna\n\nr\xe9sum\xe9\n",
        b"From: <@>\nTo: a@, ,@b, <>\nSubject: =?utf-8?b?////?=\n\nHi. This is the qmail-send program\n",
        b"From: a@b.example\nTo: x:y@z:;\nContent-Type: multipart/report; report-type=delivery-status\n\nno boundary\n",
        b"Content-Type: message/rfc822\n\n" * 200 + b"Subject: deep\n\nhi\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" * 200,
    ]
    return inputs


def test_read_report_never_raises_on_any_bytes() -> None:
    kinds = {"dsn", "arf", "unsubscribe", "unmatched", "malformed"}
    for raw in fuzzed_inputs():
        report = read(raw)
        assert report.kind in kinds
        texts = [report.report_id, report.sender, report.subject, *report.envelope_to, *report.original_message_ids]
        texts += [text for verdict in report.verdicts for text in (verdict.address, verdict.diagnostic)]
        for text in texts:
            text.encode("utf-8")  # no lone surrogates left over from undecodable bytes


def test_nothing_at_all_is_malformed() -> None:
    assert read(b"").kind == "malformed"
    assert read(bytes(range(256)) * 4).kind == "malformed"


# --- VERP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "tag"),
    [
        ("bounces+7-k3j9x2@mail.example.com", "7-k3j9x2"),
        ("bounces+7-k3j9x2@MAIL.Example.COM", "7-k3j9x2"),
        ("<bounces+7-k3j9x2@mail.example.com>", "7-k3j9x2"),
        ("bounces+a+b@mail.example.com", "a+b"),
        ("Bounces+7-k3j9x2@mail.example.com", None),  # the local part is compared exactly
        ("bounces@mail.example.com", None),
        ("bounces+@mail.example.com", None),
        ("bounces-7-k3j9x2@mail.example.com", None),
        ("bouncesx+7@mail.example.com", None),
        ("bounces+7-k3j9x2@example.com", None),
        ("bounces+7-k3j9x2@mail.example.com.evil.example", None),
        ("bounces+7-k3j9x2", None),
        ("", None),
    ],
)
def test_verp_tag(address: str, tag: str | None) -> None:
    assert verp_tag(address, "bounces@mail.example.com") == tag


def test_verp_tag_takes_the_bounce_address_in_any_case_of_domain() -> None:
    assert verp_tag("bounces+9@mail.example.com", "bounces@Mail.Example.com") == "9"
    assert verp_tag("bounces+9@mail.example.com", "") is None
