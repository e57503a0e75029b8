"""Unsubscribe links as mail clients read them (RFC 2369, RFC 8058): the header, the footer, check, test sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from helpers import mailcast, smtp, write_campaign
from mailcast.campaign_file import load_campaign
from mailcast.checks import check_campaign
from mailcast.compose import Composer
from smtp_server import TestServer

DATE = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
HTML = '<html><body><p>Hi {{ first_name }}</p><p><a href="{{ unsubscribe_url }}">Leave</a></p></body></html>\n'
TEXT = "Hi {{ first_name }}\nLeave: {{ unsubscribe_url }}\n"


def campaign_with(
    folder: Path, unsubscribe: dict[str, Any], *, emails: list[str] | None = None, html_only: bool = False, **extra: Any
) -> Path:
    template = {"html": "body.html"} if html_only else {"html": "body.html", "text": "body.txt"}
    path = write_campaign(folder, 3, emails=emails, extra={"unsubscribe": unsubscribe, "template": template, **extra})
    (folder / "body.html").write_text(HTML, encoding="utf-8")
    (folder / "body.txt").write_text(TEXT, encoding="utf-8")
    return path


def set_names(path: Path, names: list[str]) -> None:
    """Give the recipients r1@example.com … these first names."""
    lines = ["email,first_name"] + [f"r{i}@example.com,{name}" for i, name in enumerate(names, start=1)]
    (path.parent / "recipients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def composed(path: Path, row: int = 1, *, test: bool = False) -> tuple[bytes, EmailMessage]:
    campaign = load_campaign(path)
    report = check_campaign(campaign)
    assert report.ok and report.templates is not None, report.errors
    recipient = next(r for r in report.sendable if r.row == row)
    composer = Composer(campaign, report.templates)
    values, email, key = recipient.values, recipient.email, recipient.key
    data = composer.compose(values=values, email=email, run_token="run", key=key, date=DATE, test=test).data
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return data, parsed


def header_block(data: bytes, name: bytes) -> bytes:
    """The raw lines of one header, folds included."""
    lines = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(name + b":"))
    end = start + 1
    while lines[end].startswith((b" ", b"\t")):
        end += 1
    return b"\r\n".join(lines[start:end])


def parts(message: EmailMessage) -> dict[str, str]:
    return {
        p.get_content_type(): str(p.get_content()).replace("\r\n", "\n") for p in message.walk() if not p.is_multipart()
    }


def test_a_non_ascii_value_gives_a_percent_encoded_uri_in_header_and_footer(tmp_path: Path) -> None:
    path = campaign_with(
        tmp_path / "c",
        {"url": "https://example.com/u?name={{ first_name }}&e={{ email | urlencode }}", "mailto": "u@example.com"},
    )
    set_names(path, ["Zoë", "Ann"])
    data, parsed = composed(path)
    header = header_block(data, b"List-Unsubscribe")
    assert b"=?" not in header and b"Zo%C3%AB" in header
    url = "https://example.com/u?name=Zo%C3%AB&e=r1%40example.com"
    assert parsed["List-Unsubscribe"] == f"<{url}>, <mailto:u@example.com?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = parts(parsed)
    # the footer and the template's own {{ unsubscribe_url }} show what the header holds
    assert body["text/plain"].startswith(f"Hi Zoë\nLeave: {url}\n") and f"Unsubscribe: {url}\n" in body["text/plain"]
    html_url = url.replace("&", "&amp;")
    assert f'<a href="{html_url}">Leave</a>' in body["text/html"]
    assert f'<a href="{html_url}">Unsubscribe</a>' in body["text/html"]


def test_an_http_url_gets_no_one_click_header(tmp_path: Path) -> None:
    path = campaign_with(tmp_path / "c", {"url": "http://example.com/u?e={{ email | urlencode }}"})
    _, parsed = composed(path)
    assert parsed["List-Unsubscribe"] == "<http://example.com/u?e=r1%40example.com>"
    assert parsed["List-Unsubscribe-Post"] is None


def test_check_refuses_a_url_too_long_for_a_header_line_at_its_row(tmp_path: Path) -> None:
    path = campaign_with(tmp_path / "c", {"url": "https://example.com/u?t={{ token }}"})  # 24 characters + token
    rows = [
        "email,first_name,token",
        "r1@example.com,Ann,abc",
        f"r2@example.com,Bo,{'é' * 160}",
        f"r3@example.com,Cy,{'x' * 953}",
    ]
    (path.parent / "recipients.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = mailcast("check", str(path), "--json", state=tmp_path / "s.db")
    assert result.code == 65
    errors = result.json()["errors"]
    assert [(e["file"], e["line"]) for e in errors] == [("recipients.csv", 3)]  # 984 once encoded; 977 still fits
    assert "unsubscribe URL" in errors[0]["message"] and "984 characters" in errors[0]["message"]


def warnings_of(path: Path) -> list[tuple[str, str | None, int | None, str | None]]:
    report = check_campaign(load_campaign(path))
    assert report.ok, report.errors
    return [(w.message, w.file, w.line, w.key) for w in report.warnings if w.key == "unsubscribe.url"]


def test_check_warns_when_one_click_cannot_work(tmp_path: Path) -> None:
    good = campaign_with(tmp_path / "good", {"url": "https://example.com/u?e={{ email | urlencode }}"})
    assert warnings_of(good) == []
    http = campaign_with(tmp_path / "http", {"url": "http://example.com/u?e={{ email | urlencode }}"})
    line = load_campaign(http).line_of("unsubscribe.url")
    assert line is not None
    [(message, file, at, _)] = warnings_of(http)
    assert (file, at) == ("news.yaml", line)
    assert "https" in message and "one-click" in message
    constant = campaign_with(tmp_path / "constant", {"url": "https://example.com/unsubscribe"})
    [(message, _, _, _)] = warnings_of(constant)
    assert "same for every recipient" in message
    assert len(warnings_of(campaign_with(tmp_path / "both", {"url": "http://example.com/u"}))) == 2
    # warnings do not fail check
    result = mailcast("check", str(constant), "--json", state=tmp_path / "s.db")
    assert result.code == 0
    assert any("same for every recipient" in w["message"] for w in result.json()["warnings"])


def test_test_sends_get_their_own_message_id_and_links_that_go_nowhere(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    path = campaign_with(
        tmp_path / "c",
        {"url": "https://example.com/u?e={{ email | urlencode }}&n={{ first_name }}", "mailto": "u@example.com"},
        transport=smtp(server.port),
    )
    set_names(path, ["Ann", "Zoë & Co"])
    state = tmp_path / "s.db"
    for _ in range(2):
        result = mailcast("test", str(path), "--to", "me@example.org", "--row", "2", state=state)
        assert result.code == 0, result.err
    first, second = (m.parsed() for m in server.messages)
    assert first["Message-ID"] != second["Message-ID"]
    assert all(str(m["Message-ID"]).endswith("@example.com>") for m in (first, second))
    for message in (first, second):
        header = str(message["List-Unsubscribe"])
        assert "example.com/u" not in header and "u@example.com" not in header
        assert "unsubscribe.invalid" in header and ".invalid?subject=unsubscribe>" in header
        body = parts(message)
        assert set(body) == {"text/plain", "text/html"}
        for content in body.values():
            assert "example.com/u" not in content and "r2%40example.com" not in content
            assert "https://unsubscribe.invalid/test-message" in content
            assert "This is a test message: its unsubscribe link goes nowhere." in content
        assert body["text/plain"].startswith("Hi Zoë & Co\nLeave: https://unsubscribe.invalid/test-message\n")
        assert '<a href="https://unsubscribe.invalid/test-message">Leave</a>' in body["text/html"]
    # a real send to that row carries the real link
    _, real = composed(path, row=2)
    assert "https://example.com/u?e=r2%40example.com&n=Zo%C3%AB%20&%20Co" in str(real["List-Unsubscribe"])


def test_html_only_the_generated_text_part_carries_the_same_link(tmp_path: Path) -> None:
    path = campaign_with(
        tmp_path / "c", {"url": "https://example.com/u?n={{ first_name }}&e={{ email | urlencode }}"}, html_only=True
    )
    set_names(path, ["Zoë"])
    _, parsed = composed(path)
    url = "https://example.com/u?n=Zo%C3%AB&e=r1%40example.com"
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    body = parts(parsed)
    assert body["text/plain"] == (
        f"Hi Zoë\n\nLeave ({url})\n\n-- \nYou are receiving this email because you subscribed to it.\n"
        f"Unsubscribe: {url}\n"
    )
    assert f'<a href="{url.replace("&", "&amp;")}">Leave</a>' in body["text/html"]


def test_html_only_test_messages_carry_no_real_link_in_either_part(tmp_path: Path) -> None:
    for name, unsubscribe, real_link, dead_link in (
        (
            "url",
            {"url": "https://example.com/u?e={{ email | urlencode }}"},
            "example.com/u",
            "https://unsubscribe.invalid/test-message",
        ),
        (  # text made from HTML shows a mailto link's address without "mailto:"
            "mailto",
            {"mailto": "stop@example.com"},
            "stop@example.com",
            "unsubscribe@test-message.invalid?subject=unsubscribe",
        ),
    ):
        path = campaign_with(tmp_path / name, unsubscribe, html_only=True)
        _, real = composed(path)
        assert real_link in parts(real)["text/plain"]
        _, parsed = composed(path, test=True)
        assert ".invalid" in str(parsed["List-Unsubscribe"])
        for content in parts(parsed).values():
            assert real_link not in content, content
            assert "This is a test message: its unsubscribe link goes nowhere." in content
        assert f"Leave ({dead_link})" in parts(parsed)["text/plain"]
