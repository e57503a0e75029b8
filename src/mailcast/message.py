"""The bytes of one message, built directly as RFC 5322 / MIME with CRLF line endings.

Building an `email.message.EmailMessage` costs more per message than validating and
rendering together, so the parts that are the same for every message of a run (From,
Reply-To, custom headers, tags, List-Id, attachments, the template's own inline images) are
encoded once, and each message only encodes its own To, Cc, Subject, Date, Message-ID,
List-Unsubscribe and bodies (and the files a row chooses for itself). The bodies come as
rendered: a text part always, an HTML part when the campaign has one. Tests parse the output
with the standard library's `email` package to prove it round-trips.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr, getaddresses

from mailcast.errors import ConfigError, ExitCode, MailcastError

CRLF = "\r\n"
# CR, LF and every other line break Unicode knows, NUL and the other control characters (tab is allowed)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def has_control_character(value: str) -> bool:
    """True when the value holds a line break or another control character, none of which may reach a header."""
    return _CONTROL.search(value) is not None


MAX_LINE = 78
MAX_HEADER_LINE = 998  # a line may not pass 998 characters (RFC 5322)
LONGEST_WORD = 900  # a longer word is sent as encoded words, which fold


class HeaderInjectionError(MailcastError):
    """A value meant for a header holds a line break."""

    exit_code = ExitCode.DATA


class HeaderTooLongError(HeaderInjectionError):
    """A value that may not be folded (a URI) does not fit in one header line."""


# RFC 3986: unreserved and reserved characters stay, and so does a "%" that starts an escape;
# everything else (spaces, non-ASCII, <>"{}|\^` and controls) becomes %XX of its UTF-8 bytes.
_NOT_IN_URI = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _percent_escapes(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def encode_uri(uri: str) -> str:
    """The URI with what may not stand in one percent-encoded (idempotent: valid escapes are kept)."""
    if _NOT_IN_URI.search(uri) is None:
        return uri
    return _NOT_IN_URI.sub(_percent_escapes, uri)


def encode_uri_list(name: str, uris: list[str]) -> str:
    """`Name: <a>, <b>` (RFC 2369): each URI percent-encoded and whole; a line folds only between URIs."""
    items = [f"<{encode_uri(uri)}>" for uri in uris]
    one_line = f"{name}: {', '.join(items)}"
    if len(one_line) <= MAX_LINE:
        return one_line + CRLF
    lines, current = [], f"{name}:"
    for index, item in enumerate(items):
        item += "," if index < len(items) - 1 else ""
        if len(current) + 1 + len(item) > MAX_LINE and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + item
        if len(current) > MAX_HEADER_LINE:
            raise HeaderTooLongError(
                f"the {name} header cannot hold a URI of {len(item.rstrip(',')) - 2} characters in one line "
                f"(a header line is at most {MAX_HEADER_LINE})",
                hint="Shorten the URL or the values it uses.",
            )
    lines.append(current)
    return CRLF.join(lines) + CRLF


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def ad_subject(subject: str, marker: str) -> str:
    if marker == "before":
        return f"[AD] {subject}"
    if marker == "after":
        return f"{subject} [AD]"
    return subject


def _check(name: str, value: str) -> str:
    if has_control_character(value):
        raise HeaderInjectionError(
            f"the {name} header would contain a line break or control character", hint="Remove it from the value."
        )
    return value


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words of UTF-8, each at most 75 characters, split on whole characters."""
    data = text.encode("utf-8")
    limit = 42  # 42 bytes of UTF-8 -> 56 base64 characters + 12 of framing = 68
    words: list[bytes] = []
    start = 0
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:  # not inside a character: back to its first byte
            cut -= 1
        words.append(data[start:cut])
        start = cut
    words.append(data[start:])
    return ["=?utf-8?b?" + base64.b64encode(w).decode("ascii") + "?=" for w in words if w]


def encode_header(name: str, value: str) -> str:
    """`Name: value` folded to lines of at most 78 characters, RFC 2047 encoded when not ASCII."""
    _check(name, value)
    words = value.split(" ")
    if not value.isascii() or max(map(len, words)) > LONGEST_WORD:  # encoded words fold where spaces cannot
        words = _encoded_words(value)
    lines, current = [], f"{name}:"
    for word in words:
        if len(current) + 1 + len(word) > MAX_LINE and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return CRLF.join(lines) + CRLF


def _address_header(name: str, value: str) -> str:
    _check(name, value)
    parts = [formataddr((display, address), charset="utf-8") for display, address in getaddresses([value])]
    return f"{name}: " + ("," + CRLF + " ").join(parts) + CRLF


_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")  # a phrase of atoms and spaces needs no quotes


def _phrase_words(phrase: str) -> list[str]:
    """A display name as the words of an RFC 5322 phrase: atoms as they are, a name with specials (such as
    a comma) as one quoted string, a name that is not ASCII as RFC 2047 encoded words."""
    if not phrase.isascii():
        return _encoded_words(phrase)
    if _ATOMS.match(phrase):
        return phrase.split()
    quoted = '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [quoted] if len(quoted) <= LONGEST_WORD else _encoded_words(phrase)


def _folded(name: str, words: list[str]) -> str:
    """`Name: word word …` folded between words to lines of at most 78 characters where a word allows."""
    lines, current = [], f"{name}:"
    for word in words:
        if len(current) + 1 + len(word) > MAX_LINE and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return CRLF.join(lines) + CRLF


def mailbox_header(name: str, display: str, address: str) -> str:
    """`Name: Display Name <address>`: the name quoted or RFC 2047 encoded as it needs; a bare address
    when the name is blank. Raises HeaderInjectionError for a line break in either."""
    _check(name, display)
    _check(name, address)
    display = display.strip()
    if not display:
        return f"{name}: {address}{CRLF}" if address.isascii() else _address_header(name, address)
    if not address.isascii():  # an international domain, as a test address may have: the standard library's form
        return _address_header(name, formataddr((display, address)))
    return _folded(name, [*_phrase_words(display), f"<{address}>"])


def list_id_header(value: str) -> str:
    """`List-Id: phrase <label.namespace>` (RFC 2919) from a checked value: the phrase (optional) quoted or
    encoded as it needs, the list-id itself whole."""
    _check("List-Id", value)
    phrase, _, list_id = value.rpartition("<")
    return _folded("List-Id", [*_phrase_words(phrase.strip()), f"<{list_id.strip()}"])


QP_LINE = 76  # an encoded line, soft break included (RFC 2045 6.7)
_LINE_STARTS = ("\n.", "\nFrom ")


def _escape_line_start(line: str) -> str:
    """A line may not start with "From " (mbox readers add ">") nor "." (some SMTP paths eat it)."""
    if line.startswith("From "):
        return "=46" + line[1:]
    if line.startswith("."):
        return "=2E" + line[1:]
    return line


def _safe_lines(line: str) -> list[str]:
    """One encoded line with its start escaped, cut again (soft breaks) while escaping made it too long."""
    out = []
    line = _escape_line_start(line)
    while len(line) > QP_LINE:
        cut = QP_LINE - 1  # room for the soft break "="
        if line[cut - 1] == "=":  # never split an =XX escape
            cut -= 1
        elif line[cut - 2] == "=":
            cut -= 2
        out.append(line[:cut] + "=")
        line = _escape_line_start(line[cut:])
    out.append(line)
    return out


def _quoted_printable(text: str) -> str:
    """UTF-8 quoted-printable with CRLF line ends; every line at most 76 characters."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii")
    if not encoded.startswith((".", "From ")) and not any(start in encoded for start in _LINE_STARTS):
        return encoded.replace("\n", CRLF)
    return CRLF.join(part for line in encoded.split("\n") for part in _safe_lines(line))


def _text_part(subtype: str, body: str) -> str:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        f"{_quoted_printable(body)}"
    )


def _ascii_filename(name: str) -> str:
    """The name in ASCII for `filename=`: accents dropped ("Töpfe" -> "Topfe"), other characters as "_"."""
    out = []
    for char in name:
        folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        out.append(folded if folded and folded.isprintable() and folded not in ('"', "\\") else "_")
    return "".join(out)


def _disposition(name: str, disposition: str = "attachment") -> str:
    """Content-Disposition of an attachment; a name that is not plain ASCII gets filename* (RFC 2231) first,
    which RFC 2231 readers (and parsers that take the first of two values) use, then an ASCII `filename=`
    fallback for the readers that know only that."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'Content-Disposition: {disposition}; filename="{name}"{CRLF}'
    from urllib.parse import quote

    return (
        f"Content-Disposition: {disposition};{CRLF}"
        f" filename*=utf-8''{quote(name, safe='')};{CRLF}"
        f' filename="{_ascii_filename(name)}"{CRLF}'
    )


def _attachment_content_type(attachment: Attachment) -> str:
    """A text/* type says its charset when its bytes are UTF-8 (pure ASCII included)."""
    kind = attachment.content_type
    if not kind.startswith("text/") or ";" in kind:
        return kind
    try:
        attachment.data.decode("utf-8")
    except UnicodeDecodeError:
        return kind
    return f"{kind}; charset=utf-8"


def encode_attachment(attachment: Attachment) -> str:
    """An attachment as a MIME part (base64), ready to go into any message of the run."""
    encoded = base64.encodebytes(attachment.data).decode("ascii").replace("\n", CRLF)
    return (
        f"Content-Type: {_attachment_content_type(attachment)}{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}"
        f"{_disposition(attachment.filename)}{CRLF}{encoded}"
    )


def encode_inline_image(image: Attachment, content_id: str) -> str:
    """An image shown inside the HTML part (`<img src="cid:…">`) as a MIME part with its Content-ID (RFC 2392)."""
    encoded = base64.encodebytes(image.data).decode("ascii").replace("\n", CRLF)
    return (
        f"Content-Type: {image.content_type}{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}"
        f"Content-ID: <{_check('Content-ID', content_id)}>{CRLF}"
        f"{_disposition(image.filename, 'inline')}{CRLF}{encoded}"
    )


def _multipart(subtype: str, parts: list[str], parameters: str = "") -> str:
    boundary = "=_mailcast_" + secrets.token_hex(12)
    # The CRLF before each delimiter belongs to the delimiter, not to the part (RFC 2046).
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts)
    return (
        f'Content-Type: multipart/{subtype};{parameters}{CRLF} boundary="{boundary}"{CRLF}{CRLF}'
        f"{body}--{boundary}--{CRLF}"
    )


class DkimSigner:
    """Signs built messages with the campaign's DKIM key (dkimpy)."""

    HEADERS = (
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"reply-to",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"list-id",
        b"mime-version",
        b"content-type",
    )

    def __init__(self, *, domain: str, selector: str, private_key: bytes, key_file: str) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.key = private_key
        try:
            self.sign(b"From: a@example.com\r\nSubject: t\r\n\r\nt\r\n")
        except Exception as exc:  # dkimpy raises several kinds for a bad key
            raise ConfigError(
                f"dkim.private_key_file {key_file} cannot sign: {exc}",
                hint="Give a PEM RSA or Ed25519 private key (for example from opendkim-genkey).",
            ) from None

    def sign(self, message: bytes) -> bytes:
        import dkim

        present = [h for h in self.HEADERS if h + b":" in message.lower()]
        signature: bytes = dkim.sign(message, self.selector, self.domain, self.key, include_headers=present)
        return signature + message


def _date_header(date: datetime) -> str:
    """The Date header's value (whole seconds), worked out once for the messages of the same second."""
    return _formatted_date(date.replace(microsecond=0))


@functools.lru_cache(maxsize=4)
def _formatted_date(date: datetime) -> str:
    return format_datetime(date)


class MessageBuilder:
    """Builds each recipient's message; what is the same for the whole run is encoded once."""

    def __init__(
        self,
        *,
        sender: str,
        reply_to: list[str],
        headers: dict[str, str],
        tags: dict[str, str],
        attachments: list[Attachment],
        dkim: DkimSigner | None = None,
        list_id: str | None = None,
    ) -> None:
        fixed = [_address_header("From", sender)]
        if reply_to:
            fixed.append(_address_header("Reply-To", ", ".join(reply_to)))
        for name, value in headers.items():
            fixed.append(encode_header(name, value))
        if tags:
            fixed.append(encode_header("X-Mailcast-Tags", ", ".join(f"{k}={v}" for k, v in tags.items())))
        if list_id:
            fixed.append(list_id_header(list_id))
        fixed.append(f"MIME-Version: 1.0{CRLF}")
        self.fixed = "".join(fixed)
        self.attachments = [encode_attachment(a) for a in attachments]
        self.dkim = dkim

    def build(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str | None,
        message_id: str,
        date: datetime,
        list_unsubscribe: list[str] | None = None,
        one_click: bool = False,
        to_name: str = "",
        cc: Sequence[str] = (),
        attachments: list[str] | None = None,
        inline: Sequence[str] = (),
    ) -> bytes:
        """The message's bytes. `attachments` (encoded parts, see `encode_attachment`) replaces the run's own
        for this message; `inline` are encoded images (`encode_inline_image`) the HTML shows by Content-ID.
        Bcc is never a header: those recipients are only in the envelope."""
        if to_name:
            to_line = mailbox_header("To", to_name, to)
        else:
            to_line = f"To: {_check('To', to)}{CRLF}" if to.isascii() else _address_header("To", to)
        head = [self.fixed, to_line]
        if cc:
            head.append(_address_header("Cc", ", ".join(cc)))
        head += [
            encode_header("Subject", subject),
            f"Date: {_date_header(date)}{CRLF}",
            f"Message-ID: {_check('Message-ID', message_id)}{CRLF}",
        ]
        if list_unsubscribe:
            head.append(encode_uri_list("List-Unsubscribe", list_unsubscribe))
            if one_click:
                head.append(f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}")
        if html is not None:
            body = _multipart("alternative", [_text_part("plain", text), _text_part("html", html)])
            if inline:
                body = _multipart("related", [body, *inline], ' type="multipart/alternative";')
        else:
            body = _text_part("plain", text)
        attachments = self.attachments if attachments is None else attachments
        if attachments:
            body = _multipart("mixed", [body, *attachments])
        if not body.endswith(CRLF):
            body += CRLF
        data = ("".join(head) + body).encode("ascii")
        return self.dkim.sign(data) if self.dkim else data
