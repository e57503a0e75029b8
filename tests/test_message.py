"""Messages built as bytes, proved by parsing them back with the standard library."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from helpers import rsa_key_pem
from mailcast.errors import ConfigError, ExitCode
from mailcast.message import Attachment, DkimSigner, HeaderInjectionError, MessageBuilder, ad_subject, make_message_id
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
    _, parsed = build(builder, list_unsubscribe="<https://example.com/u>, <mailto:u@example.com>", one_click=True)
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


def test_html_only_gets_a_generated_text_part() -> None:
    _, parsed = build(text=None, html="<h1>Hi Zoë</h1><p>See <a href='https://example.com/x'>the picks</a></p>")
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = [p for p in parsed.walk() if not p.is_multipart()]
    assert plain.get_content_type() == "text/plain" and "the picks (https://example.com/x)" in body(plain)
    assert html.get_content_type() == "text/html" and "Hi Zoë" in body(html)


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
        build(**{field: "x@example.com\r\nBcc: victim@example.com"})
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


def test_list_unsubscribe_one_click_needs_a_url() -> None:
    assert list_unsubscribe_header("https://example.com/u", "u@example.com") == (
        "<https://example.com/u>, <mailto:u@example.com?subject=unsubscribe>", True,
    )  # fmt: skip
    assert list_unsubscribe_header(None, "u@example.com") == ("<mailto:u@example.com?subject=unsubscribe>", False)
    assert list_unsubscribe_header(None, None) == (None, False)
