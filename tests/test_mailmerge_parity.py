"""What people coming from mail merge rely on (issue #11): a display name in To, Cc and Bcc, attachments
and inline images chosen per recipient, markdown line breaks, List-Id. Sent to a real SMTP server and
parsed back with the standard library."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from helpers import mailcast, maildir_recipients, smtp, write_campaign
from smtp_server import TestServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def campaign_with(folder: Path, csv: str, port: int | None = None, **extra: Any) -> Path:
    """A campaign whose recipients.csv is `csv` (header line included)."""
    transport = smtp(port) if port is not None else None
    path = write_campaign(folder, 1, transport=transport, extra=extra)
    (folder / "recipients.csv").write_text(csv, encoding="utf-8")
    return path


def send(campaign: Path, tmp_path: Path) -> None:
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 0, result.out + result.err


def parsed(server: TestServer) -> dict[str, tuple[Any, EmailMessage]]:
    """Each received message by its main recipient: (what the server got, the parsed message)."""
    return {received.to: (received, received.parsed()) for received in server.messages}


def html_and_text(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert isinstance(html, EmailMessage) and isinstance(text, EmailMessage)
    return str(html.get_content()), str(text.get_content()).replace("\r\n", "\n")


# to_name


def test_to_name_gives_to_a_display_name_encoded_as_rfc_2047_asks(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    csv = 'email,first_name,last_name\nzoe@example.com,Zoë,Müller\nann@example.com,Ann,"O\'Neil, Jr"\nbare@example.com,,\n'
    campaign = campaign_with(tmp_path / "c", csv, server.port, to_name="{{ first_name }} {{ last_name }}")
    send(campaign, tmp_path)
    messages = parsed(server)
    received, zoe = messages["zoe@example.com"]
    assert b"To: =?utf-8?" in received.data  # RFC 2047 encoded words, not raw UTF-8
    assert received.data.split(b"\r\n\r\n")[0].isascii()
    assert zoe["To"].addresses[0].display_name == "Zoë Müller"
    assert zoe["To"].addresses[0].addr_spec == "zoe@example.com"
    _, ann = messages["ann@example.com"]
    assert ann["To"].addresses[0].display_name == "Ann O'Neil, Jr"  # the comma is quoted, not a second address
    assert len(ann["To"].addresses) == 1
    received, bare = messages["bare@example.com"]
    assert bare["To"] == "bare@example.com" and b"\r\nTo: bare@example.com\r\n" in received.data


def test_a_line_break_in_the_to_name_is_a_problem_at_its_csv_line(tmp_path: Path) -> None:
    csv = 'email,first_name\nok@example.com,Ann\nbad@example.com,"Eve\nBcc: victim@example.com"\n'
    campaign = campaign_with(tmp_path / "c", csv, to_name="{{ first_name }}")
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 65
    assert "recipients.csv:3" in result.out and "to_name" in result.out and "line break" in result.out


# cc and bcc


def test_cc_and_bcc_go_in_the_envelope_and_bcc_nowhere_in_the_message(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    csv = "email,first_name,manager_email\nr1@example.com,A,boss@example.com\nr2@example.com,B,\n"
    extra = {"cc": ["{{ manager_email }}", "team@example.com"], "bcc": "archive@example.org"}
    campaign = campaign_with(tmp_path / "c", csv, server.port, **extra)
    send(campaign, tmp_path)
    assert len(server.messages) == 2  # one message per row, whoever else it goes to
    messages = parsed(server)
    received, first = messages["r1@example.com"]
    assert received.rcpt_tos == ["r1@example.com", "boss@example.com", "team@example.com", "archive@example.org"]
    assert [a.addr_spec for a in first["Cc"].addresses] == ["boss@example.com", "team@example.com"]
    assert first["Bcc"] is None and b"archive" not in received.data.lower()
    received, second = messages["r2@example.com"]  # an empty manager_email is left out
    assert received.rcpt_tos == ["r2@example.com", "team@example.com", "archive@example.org"]
    assert [a.addr_spec for a in second["Cc"].addresses] == ["team@example.com"]
    assert b"archive" not in received.data.lower()
    report = mailcast("report", str(campaign), "--json", state=tmp_path / "state.db").json()
    assert sorted(r["email"] for r in report["recipients"]) == ["r1@example.com", "r2@example.com"]


def test_a_cc_repeating_the_recipient_is_sent_once(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    csv = "email,first_name,manager_email\nr1@example.com,A,R1@example.com\n"
    campaign = campaign_with(tmp_path / "c", csv, server.port, cc="{{ manager_email }}", bcc="r1@EXAMPLE.com")
    send(campaign, tmp_path)
    received, message = parsed(server)["r1@example.com"]
    assert received.rcpt_tos == ["r1@example.com"] and message["Cc"] is None


def test_a_refused_cc_is_noted_and_the_row_follows_its_main_recipient(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(replies={"boss@example.com": "550 5.1.1 No such user"})
    csv = "email,first_name,manager_email\nr1@example.com,A,boss@example.com\nr2@example.com,B,\n"
    campaign = campaign_with(tmp_path / "c", csv, server.port, cc="{{ manager_email }}", bcc="archive@example.org")
    send(campaign, tmp_path)
    received, _ = parsed(server)["r1@example.com"]
    assert received.rcpt_tos == ["r1@example.com", "archive@example.org"]  # the others still get it
    report = mailcast("report", str(campaign), "--json", state=tmp_path / "state.db").json()
    rows = {r["email"]: r for r in report["recipients"]}
    assert rows["r1@example.com"]["status"] == "sent"
    assert "cc boss@example.com refused: 550 5.1.1 No such user" in rows["r1@example.com"]["last_reply"]
    assert rows["r1@example.com"]["last_reply"].startswith("250")
    assert "refused" not in rows["r2@example.com"]["last_reply"]
    suppressed = mailcast("suppress", "list", "--json", state=tmp_path / "state.db")
    assert "boss@example.com" not in suppressed.out  # a cc is no recipient of the campaign


def test_a_refused_bcc_is_noted_as_bcc(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"archive@example.org": "451 4.3.0 Try later"})
    campaign = campaign_with(
        tmp_path / "c", "email,first_name\nr1@example.com,A\n", server.port, bcc="archive@example.org"
    )
    send(campaign, tmp_path)
    report = mailcast("report", str(campaign), "--json", state=tmp_path / "state.db").json()
    [row] = report["recipients"]
    assert row["status"] == "sent" and "bcc archive@example.org refused: 451 4.3.0 Try later" in row["last_reply"]
    assert len(server.messages) == 1  # not sent again to the main recipient for the sake of a bcc


def test_a_run_continued_later_still_sends_each_row_to_its_cc(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    csv = "email,first_name,manager_email\nr1@example.com,A,b1@example.com\nr2@example.com,B,b2@example.com\n"
    campaign = campaign_with(tmp_path / "c", csv, server.port, cc="{{ manager_email }}", to_name="{{ first_name }}")
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=state).code == 75
    send(campaign, tmp_path)  # rendered again from the recorded values
    assert sorted(tuple(m.rcpt_tos) for m in server.messages) == [
        ("r1@example.com", "b1@example.com"),
        ("r2@example.com", "b2@example.com"),
    ]
    _, second = parsed(server)["r2@example.com"]
    assert str(second["To"]) == "B <r2@example.com>" and second["Cc"] == "b2@example.com"


def test_a_row_counts_once_against_the_daily_limit_whoever_else_it_goes_to(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    csv = "email,first_name\n" + "".join(f"r{i}@example.com,N{i}\n" for i in range(1, 4))
    extra = {"cc": "team@example.com", "bcc": "archive@example.com", "limits": {"daily": 2}}
    campaign = campaign_with(tmp_path / "c", csv, server.port, **extra)
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 75
    assert len(server.messages) == 2 and all(len(m.rcpt_tos) == 3 for m in server.messages)


def test_a_bad_cc_is_a_problem_at_its_csv_line_and_nothing_is_sent(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    csv = "email,first_name,manager_email\nr1@example.com,A,boss@example.com\nr2@example.com,B,boss@\n"
    campaign = campaign_with(tmp_path / "c", csv, server.port, cc=["{{ manager_email }}"])
    state = tmp_path / "state.db"
    result = mailcast("check", str(campaign), state=state)
    assert result.code == 65
    [line] = [line for line in result.out.splitlines() if "boss@" in line and "not a valid address" in line]
    assert "recipients.csv:3" in line and "row 2" in line and "cc.0" in line
    assert mailcast("send", str(campaign), "--yes", state=state).code == 65
    assert server.messages == []


def test_a_bad_fixed_cc_is_a_campaign_file_problem_at_its_line(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, extra={"cc": ["team@example.com", "team@"]})
    lines = campaign.read_text(encoding="utf-8").splitlines()
    bad_line = next(number for number, line in enumerate(lines, start=1) if "team@" in line and "example" not in line)
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 78
    assert f"news.yaml:{bad_line}" in result.out and "cc.1" in result.out and "not a valid address" in result.out


def test_a_cc_template_with_no_column_is_found_at_its_line(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, extra={"bcc": ["a@example.com", "{{ manager }}"]})
    lines = campaign.read_text(encoding="utf-8").splitlines()
    line = next(number for number, text in enumerate(lines, start=1) if "manager" in text)
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 65
    assert f"news.yaml:{line}" in result.out and "'manager'" in result.out and "bcc.1" in result.out


def test_maildir_keeps_one_copy_of_a_message_with_cc_and_bcc(tmp_path: Path) -> None:
    campaign = campaign_with(
        tmp_path / "c", "email,first_name\nr1@example.com,A\n", cc="x@example.com", bcc="y@example.com"
    )
    send(campaign, tmp_path)
    assert maildir_recipients(tmp_path / "c" / "outbox") == ["r1@example.com"]


# attachments chosen per recipient


def invoice_campaign(folder: Path, invoices: dict[str, str], port: int | None = None) -> Path:
    rows = "".join(f"r{i}@example.com,N{i},{number}\n" for i, number in enumerate(invoices, start=1))
    (folder / "invoices").mkdir(parents=True, exist_ok=True)
    (folder / "files").mkdir(exist_ok=True)
    (folder / "files" / "terms.txt").write_text("Terms for everyone\n", encoding="utf-8")
    for number, content in invoices.items():
        if content:
            (folder / "invoices" / f"{number}.pdf").write_bytes(content.encode())
    attachments = ["invoices/{{ invoice_no }}.pdf", "files/terms.txt"]
    return campaign_with(folder, "email,first_name,invoice_no\n" + rows, port, attachments=attachments)


def test_each_recipient_gets_their_own_attachment(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = invoice_campaign(tmp_path / "c", {"1001": "%PDF invoice 1001", "1002": "%PDF invoice 1002"}, server.port)
    send(campaign, tmp_path)
    for address, number in (("r1@example.com", "1001"), ("r2@example.com", "1002")):
        _, message = parsed(server)[address]
        files = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
        assert files == {f"{number}.pdf": f"%PDF invoice {number}".encode(), "terms.txt": "Terms for everyone\n"}
        assert [part.get_filename() for part in message.iter_attachments()] == [f"{number}.pdf", "terms.txt"]


def test_a_missing_attachment_of_a_row_is_a_problem_at_its_csv_line(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign = invoice_campaign(tmp_path / "c", {"1001": "%PDF 1001", "1002": "", "1003": "%PDF 1003"}, server.port)
    state = tmp_path / "state.db"
    result = mailcast("check", str(campaign), state=state)
    assert result.code == 65
    [line] = [line for line in result.out.splitlines() if "1002.pdf" in line]
    assert "recipients.csv:3" in line and "not found" in line and "attachments.0" in line
    assert mailcast("send", str(campaign), "--yes", state=state).code == 65
    assert server.messages == []


def test_an_attachment_gone_before_its_row_goes_stops_the_run_until_it_is_back(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    invoices = {"1001": "%PDF 1001", "1002": "%PDF 1002", "1003": "%PDF 1003"}
    campaign = invoice_campaign(tmp_path / "c", invoices, server.port)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=state).code == 75
    gone = tmp_path / "c" / "invoices" / "1002.pdf"
    gone.unlink()  # checked when the run began, gone by its turn
    stopped = mailcast("send", str(campaign), "--yes", state=state)
    assert stopped.code == 65, stopped.out + stopped.err
    assert "row 2 (r2@example.com) could not be built" in stopped.out and "1002.pdf" in stopped.out
    assert server.recipients() == ["r1@example.com"]  # the rows after it wait too
    report = json.loads(mailcast("report", str(campaign), "--json", state=state).out)
    second = report["recipients"][1]
    assert (second["status"], second["attempts"], second["message_id"]) == ("pending", 0, None)
    gone.write_bytes(b"%PDF 1002")
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0  # the same run goes on
    assert server.recipients() == ["r1@example.com", "r2@example.com", "r3@example.com"]


def test_under_permissive_validation_a_row_that_cannot_be_built_is_skipped(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign = invoice_campaign(tmp_path / "c", {"1001": "%PDF 1001", "1002": "%PDF 1002"}, server.port)
    campaign.write_text(campaign.read_text(encoding="utf-8") + "validation: permissive\n", encoding="utf-8")
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=state).code == 75
    (tmp_path / "c" / "invoices" / "1002.pdf").unlink()
    assert mailcast("send", str(campaign), "--yes", state=state).code == 1  # someone was not sent to
    report = json.loads(mailcast("report", str(campaign), "--json", state=state).out)
    second = report["recipients"][1]
    assert (second["status"], second["attempts"], second["message_id"]) == ("skipped", 0, None)
    assert second["last_reply"].startswith("not built: attachments.0") and "1002.pdf" in second["last_reply"]


def test_an_attachment_path_a_row_makes_escape_the_folder_is_refused_with_nothing_sent(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    (tmp_path / "secret.pdf").write_bytes(b"%PDF private")  # exists, outside the campaign's folder
    campaign = invoice_campaign(tmp_path / "c", {"1001": "%PDF 1001", "../../secret": ""}, server.port)
    state = tmp_path / "state.db"
    result = mailcast("check", str(campaign), state=state)
    assert result.code == 65
    [line] = [line for line in result.out.splitlines() if "secret" in line]
    assert "recipients.csv:3" in line and "outside the campaign's folder" in line
    sent = mailcast("send", str(campaign), "--yes", state=state)
    assert sent.code == 65
    assert server.messages == []


def test_a_fixed_attachment_is_still_checked_when_the_campaign_loads(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, extra={"attachments": ["files/gone.pdf"]})
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 78 and "files/gone.pdf" in result.out + result.err


# inline images


def image_campaign(folder: Path, html: str, port: int | None = None, **extra: Any) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "logo.png").write_bytes(PNG)
    (folder / "body.html").write_text(html, encoding="utf-8")
    return campaign_with(
        folder, "email,first_name\nr1@example.com,A\nr2@example.com,B\n", port, template={"html": "body.html"}, **extra
    )


def test_an_image_of_the_campaign_folder_is_sent_inline(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    html = (
        "<html><body><p>Hi {{ first_name }}</p>\n"
        '<img src="images/logo.png" alt="Logo">\n'
        "<img alt='again' src='images/logo.png'>\n"
        '<img src="https://cdn.example.com/banner.png" alt="Banner">\n'
        '<img src="data:image/png;base64,AAAA" alt="Dot"></body></html>\n'
    )
    campaign = image_campaign(tmp_path / "c", html, server.port)
    send(campaign, tmp_path)
    _, message = parsed(server)["r1@example.com"]
    assert message.get_content_type() == "multipart/related"  # no attachments: related at the top
    assert message.get_param("type") == "multipart/alternative"
    alternative, image = list(message.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    assert image.get_content_type() == "image/png" and image.get_content_disposition() == "inline"
    assert image.get_content() == PNG  # the bytes intact
    content_id = image["Content-ID"].strip("<>")
    body, text = html_and_text(message)
    assert body.count(f'src="cid:{content_id}"') == 2  # one part for the file, however often it is shown
    assert "images/logo.png" not in body
    assert 'src="https://cdn.example.com/banner.png"' in body and 'src="data:image/png;base64,AAAA"' in body
    assert "[Logo]" in text
    _, other = parsed(server)["r2@example.com"]
    assert other.get_body(("related",)) is not None
    assert [p["Content-ID"] for p in other.walk() if p.get_content_type() == "image/png"] == [f"<{content_id}>"]


def test_inline_images_and_attachments_nest_as_mixed_related_alternative(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "guide.txt").write_text("guide\n", encoding="utf-8")
    campaign = image_campaign(folder, '<p>Hi</p><img src="images/logo.png">', server.port, attachments=["guide.txt"])
    send(campaign, tmp_path)
    _, message = parsed(server)["r1@example.com"]
    structure = [part.get_content_type() for part in message.walk()]
    assert structure == [
        "multipart/mixed",
        "multipart/related",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "image/png",
        "text/plain",
    ]
    assert [part.get_filename() for part in message.iter_attachments()] == ["guide.txt"]


def test_a_markdown_image_and_a_row_s_own_image_are_sent_inline(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    folder = tmp_path / "c"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "logo.png").write_bytes(PNG)
    (folder / "photos").mkdir()
    (folder / "photos" / "a b.png").write_bytes(PNG + b"A")
    (folder / "photos" / "b.png").write_bytes(PNG + b"B")
    (folder / "body.md").write_text(
        "# Hi {{ first_name }}\n\n![Logo](images/logo.png)\n\n![Me](<photos/{{ photo }}>)\n"
    )
    csv = "email,first_name,photo\nr1@example.com,A,a b.png\nr2@example.com,B,b.png\n"
    campaign = campaign_with(folder, csv, server.port, template={"markdown": "body.md"})
    send(campaign, tmp_path)
    for address, own in (("r1@example.com", PNG + b"A"), ("r2@example.com", PNG + b"B")):
        _, message = parsed(server)[address]
        images = {p["Content-ID"].strip("<>"): p.get_content() for p in message.walk() if p["Content-ID"]}
        assert sorted(images.values()) == sorted([PNG, own])
        body, _ = html_and_text(message)
        assert sorted(re.findall(r'src="cid:([^"]+)"', body)) == sorted(images)


def test_a_missing_image_is_a_problem_at_its_template_line(tmp_path: Path) -> None:
    html = '<p>Hi {{ first_name }}</p>\n<p>\n<img src="images/missing.png">\n<img src="../outside.png"></p>\n'
    (tmp_path / "outside.png").write_bytes(PNG)
    campaign = image_campaign(tmp_path / "c", html)
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 65
    assert "body.html:3" in result.out and "images/missing.png is not found" in result.out
    assert "body.html:4" in result.out and "../outside.png is outside the campaign's folder" in result.out
    assert "row" not in result.out  # found from the template, not per row


def test_a_missing_image_named_by_a_row_is_a_problem_at_its_csv_line(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    folder = tmp_path / "c"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos" / "a.png").write_bytes(PNG)
    (folder / "body.html").write_text('<p>Hi</p><img src="photos/{{ photo }}">\n', encoding="utf-8")
    csv = "email,first_name,photo\nr1@example.com,A,a.png\nr2@example.com,B,zz.png\n"
    campaign = campaign_with(folder, csv, server.port, template={"html": "body.html"})
    state = tmp_path / "state.db"
    result = mailcast("check", str(campaign), state=state)
    assert result.code == 65
    [line] = [line for line in result.out.splitlines() if "zz.png" in line]
    assert "recipients.csv:3" in line and "body.html" in line and "not found" in line
    assert mailcast("send", str(campaign), "--yes", state=state).code == 65
    assert server.messages == []


# markdown line breaks


def test_a_single_line_break_in_markdown_is_a_line_break_in_both_parts(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "body.md").write_text("Dear {{ first_name }},\nthank you.\n\nAcme\n42 Main St\n", encoding="utf-8")
    campaign = campaign_with(
        folder, "email,first_name\nr1@example.com,Ann\n", server.port, template={"markdown": "body.md"}
    )
    send(campaign, tmp_path)
    _, message = parsed(server)["r1@example.com"]
    html, text = html_and_text(message)
    assert re.search(r"Dear Ann,<br ?/?>\s*thank you\.", html)
    assert re.search(r"Acme<br ?/?>\s*42 Main St", html)
    assert text.startswith("Dear Ann,\nthank you.\n\nAcme\n42 Main St\n")


# List-Id


def test_every_message_has_a_list_id_by_default(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = write_campaign(tmp_path / "c", 2, name="Spring_News 2026", transport=smtp(server.port))
    send(campaign, tmp_path)
    for received in server.messages:
        assert received.parsed()["List-Id"] == "<spring-news-2026.example.com>"


def test_list_id_as_set(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    extra = {"list_id": "Acme weekly <weekly.acme.example.net>"}
    campaign = write_campaign(tmp_path / "c", 1, transport=smtp(server.port), extra=extra)
    send(campaign, tmp_path)
    [received] = server.messages
    assert received.parsed()["List-Id"] == "Acme weekly <weekly.acme.example.net>"
    assert b"\r\nList-Id: Acme weekly <weekly.acme.example.net>\r\n" in received.data


def test_a_list_id_with_a_name_that_is_not_ascii(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = write_campaign(
        tmp_path / "c", 1, transport=smtp(server.port), extra={"list_id": "Café <cafe.example.net>"}
    )
    send(campaign, tmp_path)
    [received] = server.messages
    assert received.data.split(b"\r\n\r\n")[0].isascii()
    assert received.parsed()["List-Id"] == "Café <cafe.example.net>"


def test_a_bad_list_id_is_a_problem_at_its_key(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, extra={"list_id": "weekly news"})
    lines = campaign.read_text(encoding="utf-8").splitlines()
    line = next(number for number, text in enumerate(lines, start=1) if text.startswith("list_id:"))
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 78
    assert f"news.yaml:{line}" in result.out and "list_id" in result.out and "<weekly.acme.example.net>" in result.out


def test_list_id_is_set_by_mailcast_not_by_headers(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, extra={"headers": {"List-Id": "<x.example.com>"}})
    result = mailcast("check", str(campaign), state=tmp_path / "state.db")
    assert result.code == 78 and "List-Id is set by mailcast" in result.out
