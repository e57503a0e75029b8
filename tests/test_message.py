"""Messages built as bytes, proved by parsing them back with the standard library."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from helpers import rsa_key_pem
from mailcast.errors import ConfigError, ExitCode
from mailcast.message import (
    Attachment,
    DkimSigner,
    HeaderInjectionError,
    MessageBuilder,
    ad_subject,
    encode_uri,
)
from mailcast.message_ids import make_message_id
from mailcast.unsubscribe import FOOTERS, add_footer_html, footer_html, footer_text, list_unsubscribe_header

DATE = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def build(builder: MessageBuilder | None = None, **kwargs: object) -> tuple[bytes, EmailMessage]:
    builder = builder or MessageBuilder(
        sender="Acme <news@example.com>", reply_to=[], headers={}, tags={}, attachments=[]
    )
    values: dict[str, object] = {
        "to": "zoe@example.org",
        "subject": "Hi",
        "text": "Hello\n",
        "html": None,
        "message_id": "<1@example.com>",
        "date": DATE,
    }
    values.update(kwargs)
    data = builder.build(**values)  # type: ignore[arg-type]
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return data, parsed


def body(part: EmailMessage) -> str:
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize(
    "subject",
    [
        "Hello",
        "Zoë, our spring picks",
        "春天的精选，只给你",
        "عروض الربيع لك",
        "🌸 " * 30 + "end",
        "word " * 40,
        "x" * 2000,
    ],
)
def test_subjects_round_trip_and_lines_stay_short(subject: str) -> None:
    data, parsed = build(subject=subject.strip())
    assert parsed["Subject"] == subject.strip()
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    header_lines = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends with CRLF


def test_all_headers() -> None:
    builder = MessageBuilder(
        sender="Zoë Müller <news@example.com>",
        reply_to=["support@example.com", "Help Desk <help@example.org>"],
        headers={"X-Campaign": "spring"},
        tags={"campaign": "spring", "kind": "news"},
        attachments=[],
    )
    _, parsed = build(builder, list_unsubscribe=["https://example.com/u", "mailto:u@example.com"], one_click=True)
    assert parsed["From"].addresses[0].display_name == "Zoë Müller"
    assert parsed["To"] == "zoe@example.org"
    assert [a.addr_spec for a in parsed["Reply-To"].addresses] == ["support@example.com", "help@example.org"]
    assert parsed["X-Campaign"] == "spring"
    assert parsed["X-Mailcast-Tags"] == "campaign=spring, kind=news"
    assert parsed["Message-ID"] == "<1@example.com>"
    assert parsed["Date"].datetime == DATE
    assert parsed["List-Unsubscribe"] == "<https://example.com/u>, <mailto:u@example.com>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"


def test_text_only_is_a_single_part() -> None:
    text = "Line one\n.starts with a dot\nFrom the start\n" + "long " * 60 + "\nend\n"
    data, parsed = build(text=text)
    assert parsed.get_content_type() == "text/plain"
    assert body(parsed) == text
    assert b"\r\n.starts" not in data and b"\r\nFrom the" not in data


def test_html_and_text_make_multipart_alternative_text_first() -> None:
    _, parsed = build(text="Hi Zoë\n", html="<h1>Hi Zoë</h1>")
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = [p for p in parsed.walk() if not p.is_multipart()]
    assert plain.get_content_type() == "text/plain" and body(plain) == "Hi Zoë\n"
    assert html.get_content_type() == "text/html" and body(html) == "<h1>Hi Zoë</h1>"


def test_attachments_make_multipart_mixed() -> None:
    pdf = bytes(range(256)) * 10
    builder = MessageBuilder(sender="news@example.com", reply_to=[], headers={}, tags={},
                             attachments=[Attachment("guide é.pdf", "application/pdf", pdf)])  # fmt: skip
    _, parsed = build(builder, html="<p>x</p>", text="x\n")
    assert parsed.get_content_type() == "multipart/mixed"
    attachment = next(parsed.iter_attachments())
    assert attachment.get_filename() == "guide é.pdf"
    assert attachment.get_content() == pdf


@pytest.mark.parametrize("field", ["subject", "to"])
def test_line_breaks_never_reach_a_header(field: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        build(None, **{field: "x@example.com\r\nBcc: victim@example.com"})
    assert caught.value.exit_code == ExitCode.DATA


def test_message_id_is_deterministic() -> None:
    one = make_message_id("run-a", "zoe@example.org", "example.com")
    assert one == make_message_id("run-a", "zoe@example.org", "example.com")
    assert one != make_message_id("run-b", "zoe@example.org", "example.com")
    assert one != make_message_id("run-a", "ana@example.org", "example.com")
    assert one.startswith("<") and one.endswith("@example.com>")


def test_ad_marker() -> None:
    assert (ad_subject("Sale", "none"), ad_subject("Sale", "before"), ad_subject("Sale", "after")) == (
        "Sale",
        "[AD] Sale",
        "Sale [AD]",
    )


def test_dkim_signature_verifies() -> None:
    import dkim
    from cryptography.hazmat.primitives import serialization

    pem = rsa_key_pem()
    key = serialization.load_pem_private_key(pem, password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner(domain="example.com", selector="s1", private_key=pem, key_file="dkim.key")
    builder = MessageBuilder(sender="news@example.com", reply_to=[], headers={}, tags={}, attachments=[], dkim=signer)
    data, parsed = build(builder, subject="Signed ✓")
    assert parsed["DKIM-Signature"] is not None
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record if name == b"s1._domainkey.example.com." else None)


def test_bad_dkim_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"dkim\.key"):
        DkimSigner(domain="example.com", selector="s1", private_key=b"not a key", key_file="dkim.key")


def test_footers_in_eleven_languages() -> None:
    assert set(FOOTERS) == {"en", "zh-hans", "zh-hant", "es", "fr", "de", "ja", "ko", "ar", "th", "id"}
    url = "https://example.com/u?e=a&b"
    for language in FOOTERS:
        assert url in footer_text(language, url)
        assert 'href="https://example.com/u?e=a&amp;b"' in footer_html(language, url)
    assert 'dir="rtl"' in footer_html("ar", url) and 'dir="rtl"' not in footer_html("en", url)
    assert footer_text("none", url) == footer_html("none", url) == ""
    assert (
        add_footer_html("<html><body><p>x</p></body></html>", "<div>F</div>")
        == "<html><body><p>x</p><div>F</div>\n</body></html>"
    )


def test_list_unsubscribe_one_click_needs_an_https_url() -> None:
    assert list_unsubscribe_header("https://example.com/u", "u@example.com") == (
        ["https://example.com/u", "mailto:u@example.com?subject=unsubscribe"], True,
    )  # fmt: skip
    assert list_unsubscribe_header("http://example.com/u", None) == (["http://example.com/u"], False)
    assert list_unsubscribe_header("HTTPS://example.com/u", None)[1] is True
    assert list_unsubscribe_header(None, "u@example.com") == (["mailto:u@example.com?subject=unsubscribe"], False)
    assert list_unsubscribe_header(None, None) == ([], False)


@pytest.mark.parametrize(
    ("rendered", "encoded"),
    [
        ("https://example.com/u?name=Zoë", "https://example.com/u?name=Zo%C3%AB"),
        ("https://example.com/u?n=Ann Lee&c=東京", "https://example.com/u?n=Ann%20Lee&c=%E6%9D%B1%E4%BA%AC"),
        ("https://example.com/u?e=a%40b.com&x=50%", "https://example.com/u?e=a%40b.com&x=50%25"),
        ('https://example.com/u?a=<b>&q="x"|{}', "https://example.com/u?a=%3Cb%3E&q=%22x%22%7C%7B%7D"),
        ("https://example.com/a/b;c?d=e,f+g#h!$'()*[]@~", "https://example.com/a/b;c?d=e,f+g#h!$'()*[]@~"),
    ],
)
def test_uris_are_percent_encoded_once(rendered: str, encoded: str) -> None:
    assert encode_uri(rendered) == encoded
    assert encode_uri(encoded) == encoded  # already valid: left as it is


def list_unsubscribe_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(b"List-Unsubscribe:"))
    end = start + 1
    while head[end].startswith(b" "):
        end += 1
    return head[start:end]


def test_a_non_ascii_unsubscribe_url_stays_a_usable_uri() -> None:
    uris, one_click = list_unsubscribe_header("https://example.com/u?name=Zoë", "u@example.com")
    data, parsed = build(list_unsubscribe=uris, one_click=one_click)
    header = b"\r\n".join(list_unsubscribe_lines(data))
    assert b"=?" not in header and b"Zo%C3%AB" in header
    assert parsed["List-Unsubscribe"] == (
        "<https://example.com/u?name=Zo%C3%AB>, <mailto:u@example.com?subject=unsubscribe>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_url_is_folded_only_between_uris() -> None:
    url = "https://example.com/u?token=" + "a1b2" * 200  # 828 characters
    data, parsed = build(list_unsubscribe=[url, "mailto:u@example.com?subject=unsubscribe"])
    lines = list_unsubscribe_lines(data)
    assert lines == [f"List-Unsubscribe: <{url}>,".encode(), b" <mailto:u@example.com?subject=unsubscribe>"]
    assert parsed["List-Unsubscribe"] == f"<{url}>, <mailto:u@example.com?subject=unsubscribe>"


def test_a_url_that_cannot_fit_a_header_line_is_refused_not_split() -> None:
    with pytest.raises(HeaderInjectionError, match="998") as caught:
        build(list_unsubscribe=["https://example.com/u?t=" + "x" * 980])
    assert caught.value.exit_code == ExitCode.DATA


def qp_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


def test_quoted_printable_lines_stay_within_76_even_after_escaping_line_starts() -> None:
    escaped = set()
    for width in range(60, 80):
        for tail in ("From here on " + "z" * 90, ".dotted " + "é" * 40, "From " + "=" * 40):
            text = f"{'x' * width} {tail}\n{'y' * width}{tail}\nend\n"
            data, parsed = build(text=text)
            lines = qp_lines(data)
            assert max(len(line) for line in lines) <= 76, text
            assert not any(line.startswith((b"From ", b".")) for line in lines)
            escaped |= {line[:3] for line in lines if line.startswith((b"=46", b"=2E"))}
            assert body(parsed) == text
    assert escaped == {b"=46", b"=2E"}  # the texts did reach the escapes


def test_text_attachments_say_their_charset_and_names_have_an_ascii_fallback() -> None:
    csv = "Topf,Preis\nTöpfe,12\n".encode()
    latin1 = "Töpfe\n".encode("latin-1")
    attachments = [
        Attachment("Töpfe.csv", "text/csv", csv),
        Attachment("plain.txt", "text/plain", b"ascii only\n"),
        Attachment("old.txt", "text/plain", latin1),
        Attachment("春天.pdf", "application/pdf", b"%PDF-1.4"),
    ]
    builder = MessageBuilder(sender="news@example.com", reply_to=[], headers={}, tags={}, attachments=attachments)
    data, parsed = build(builder)
    found = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert list(found) == ["Töpfe.csv", "plain.txt", "old.txt", "春天.pdf"]
    assert found["Töpfe.csv"].get_content() == "Topf,Preis\nTöpfe,12\n"
    assert found["Töpfe.csv"].get_content_charset() == "utf-8"
    assert found["plain.txt"].get_content_charset() == "utf-8"
    assert found["old.txt"].get_content_charset() is None  # not UTF-8: no claim that it is
    assert found["春天.pdf"].get_content() == b"%PDF-1.4"
    # a reader that knows only filename= (no RFC 2231) still gets a name
    assert b'filename="Topfe.csv"' in data and b'filename="__.pdf"' in data
    legacy = message_from_bytes(data)  # the compat32 parser reads filename=
    assert [part.get_filename() for part in legacy.walk() if part.get_filename()] == [
        "Topfe.csv", "plain.txt", "old.txt", "__.pdf",
    ]  # fmt: skip
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Zoë Müller", "Zoë Müller"),
        ("Ann O'Neil, Jr", "Ann O'Neil, Jr"),
        ('Say "hi"', 'Say "hi"'),
        ("  Ann  ", "Ann"),
        ("Bartholomew " * 12, ("Bartholomew " * 12).strip()),
    ],
)
def test_to_with_a_display_name_round_trips_in_short_ascii_lines(name: str, shown: str) -> None:
    data, parsed = build(to_name=name)
    [address] = parsed["To"].addresses
    assert (address.display_name, address.addr_spec) == (shown, "zoe@example.org")
    head = data.split(b"\r\n\r\n")[0]
    assert head.isascii()
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_a_long_display_name_that_is_not_ascii_is_folded_into_encoded_words() -> None:
    from email.header import decode_header, make_header

    name = "春天的精选 " * 20
    data, parsed = build(to_name=name)
    head = data.split(b"\r\n\r\n")[0].decode("ascii")
    to = re.search(r"\r\nTo:(.*?)\r\n(?! )", head, re.DOTALL)
    assert to is not None
    lines = to.group(1).split("\r\n")
    assert len(lines) > 3 and max(len(line) for line in lines) <= 78
    assert all(len(word) <= 75 for word in to.group(1).split())  # RFC 2047: an encoded word is at most 75
    # RFC 2047 6.2: the space between adjacent encoded words is not part of the name (the standard
    # library's address parser keeps it, so the name is decoded here as RFC 2047 says)
    phrase = to.group(1).rpartition("<")[0]
    assert str(make_header(decode_header(phrase.strip()))) == name.strip()
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.org"


def test_a_blank_display_name_leaves_the_bare_address() -> None:
    data, parsed = build(to_name=" ")
    assert parsed["To"] == "zoe@example.org" and b"\r\nTo: zoe@example.org\r\n" in data


def test_a_line_break_never_reaches_to_through_the_display_name() -> None:
    with pytest.raises(HeaderInjectionError):
        build(to_name="Eve\r\nBcc: victim@example.com")


def test_cc_is_a_header_and_there_is_never_a_bcc_header() -> None:
    data, parsed = build(cc=["boss@example.com", "team@example.org"])
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["boss@example.com", "team@example.org"]
    assert parsed["Bcc"] is None and b"bcc" not in data.lower()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("<news.example.com>", "<news.example.com>"),
        ("Acme weekly <weekly.acme.example.net>", "Acme weekly <weekly.acme.example.net>"),
        ("Acme, Inc <acme.example.net>", '"Acme, Inc" <acme.example.net>'),
        ("Café Noël <cafe.example.net>", "Café Noël <cafe.example.net>"),
    ],
)
def test_list_id_header(value: str, shown: str) -> None:
    builder = MessageBuilder(sender="news@example.com", reply_to=[], headers={}, tags={}, attachments=[], list_id=value)
    data, parsed = build(builder)
    assert parsed["List-Id"] == shown
    assert data.split(b"\r\n\r\n")[0].isascii()


def test_inline_images_make_multipart_related_around_the_alternative() -> None:
    from mailcast.message import encode_attachment, encode_inline_image

    png = bytes(range(256))
    image = encode_inline_image(Attachment("logo é.png", "image/png", png), "abc@example.com")
    extra = encode_attachment(Attachment("row.pdf", "application/pdf", b"%PDF row"))
    _, parsed = build(html='<img src="cid:abc@example.com">', text="x\n", inline=[image], attachments=[extra])
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/related", "multipart/alternative", "text/plain", "text/html", "image/png",
        "application/pdf",
    ]  # fmt: skip
    related = next(p for p in parsed.walk() if p.get_content_type() == "multipart/related")
    assert related.get_param("type") == "multipart/alternative"
    shown = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    assert shown["Content-ID"] == "<abc@example.com>" and shown.get_content() == png
    assert shown.get_content_disposition() == "inline" and shown.get_filename() == "logo é.png"
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["row.pdf"]


def test_dkim_signs_cc_and_list_id() -> None:
    import dkim
    from cryptography.hazmat.primitives import serialization

    pem = rsa_key_pem()
    key = serialization.load_pem_private_key(pem, password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner(domain="example.com", selector="s1", private_key=pem, key_file="dkim.key")
    builder = MessageBuilder(
        sender="news@example.com", reply_to=[], headers={}, tags={}, attachments=[], dkim=signer,
        list_id="Acme <news.example.com>",
    )  # fmt: skip
    data, parsed = build(builder, cc=["boss@example.com"], to_name="Zoë")
    signed = {h.strip().lower() for h in str(parsed["DKIM-Signature"]).split("h=")[1].split(";")[0].split(":")}
    assert {"list-id", "cc", "to"} <= signed
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record if name == b"s1._domainkey.example.com." else None)
