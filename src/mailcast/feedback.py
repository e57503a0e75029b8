"""Feedback mail read back from a mailbox: bounces, complaints and unsubscribe requests (issue #12).

Relays answer 250 at once; the verdict on a recipient comes back later, by mail. `read_report`
reads one raw message as it lies in the mailbox and says what it is and whose fate it tells:

- a DSN (RFC 3464, `multipart/report; report-type=delivery-status`): one verdict per recipient
  block, hard for `failed` with a 5.x.x status, soft for 4.x.x or `delayed`;
- an ARF report (RFC 5965, `report-type=feedback-report`): a complaint by the recipient it names;
- a bounce in an MTA's own words (Exim, qmail and other formats without a delivery-status part):
  recognised by flufl.bounce, with the status and the reply taken from the text around the address;
- a mail to the campaign's unsubscribe address: a request by its From address;
- anything else, auto-replies and out-of-office notes included: unmatched.

Pure: no state, no I/O, no printing. It never raises on bad input: malformed MIME, bad encodings
and truncated bytes give kind "malformed" or the best reading there is. The email package and
flufl.bounce raise many kinds of exception on broken input, so each call into them is guarded
here, at this module's edge; a failed call reads as "nothing there".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses
from typing import Literal

from flufl.bounce import all_failures

VerdictKind = Literal["hard", "soft", "complaint", "unsubscribe"]
ReportKind = Literal["dsn", "arf", "unsubscribe", "unmatched", "malformed"]

MAX_DIAGNOSTIC = 300  # characters of a diagnostic kept: enough for any SMTP reply worth reading
MAX_DEPTH = 20  # MIME nesting followed; real reports nest three or four deep

# RFC 3464 actions that tell of a delivery, not a failure
_DELIVERED = frozenset({"delivered", "relayed", "expanded"})
# RFC 6430 `not-spam` takes a complaint back; RFC 6591 `auth-failure` reports a DKIM/SPF failure, not a recipient
_NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})
_MAIL_SYSTEMS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
_ENVELOPE_HEADERS = ("to", "delivered-to", "x-original-to", "envelope-to", "return-path")
_UNSUBSCRIBE_HEADERS = ("to", "cc", "delivered-to", "x-original-to")

_ENHANCED_STATUS = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])")
# an SMTP reply such as `550 5.1.1 <zoe@example.org>: ...` or `452-4.2.2 ...`, not part of an IP or a date
_SMTP_REPLY = re.compile(r"(?<![\w.\[:/-])[45]\d\d[ -]")
_REPLY_CODE = re.compile(r"^\d{3}[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?")
_ANGLE_ID = re.compile(r"<[^<>\s]+>")
# the original's headers as a plain-text bounce quotes them (Exim, qmail, Sendmail)
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_QUOTED_RETURN_PATH = re.compile(r"^[ \t>]*Return-Path:\s*<([^<>\s]+@[^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# lower-case field name -> its values, in order, unfolded
_Fields = dict[str, list[str]]


@dataclass(frozen=True)
class Verdict:
    """One recipient's fate, as one report tells it."""

    address: str  # the final recipient, lower-cased, without "rfc822;"; "" when unknown
    kind: VerdictKind
    status: str | None  # enhanced status code such as "5.1.1" or "4.2.2", when known
    diagnostic: str  # Diagnostic-Code, or the bounce's own words, or "complaint (abuse)"


@dataclass(frozen=True)
class Report:
    """What one message read back from the mailbox is, and whose fate it tells."""

    report_id: str  # the report's own Message-ID, or "sha256:" + hash of its bytes when it has none
    kind: ReportKind
    verdicts: list[Verdict]  # empty for unmatched and malformed
    # Message-IDs (with <>) of the original it quotes: text/rfc822-headers, message/rfc822, or inline
    original_message_ids: list[str]
    # where the report itself was sent (To, Delivered-To, X-Original-To, Envelope-To, Return-Path):
    # where a VERP tag would be; spelt as written, since a VERP tag is compared exactly
    envelope_to: list[str]
    sender: str  # the From address of the report, lower-cased (for an unsubscribe mail: who asks)
    subject: str
    # the envelope sender of the original it quotes (an ARF report's Original-Mail-From, the quoted
    # Return-Path): where the original's VERP tag is when the report went elsewhere, as ARF reports do
    original_return_paths: list[str] = field(default_factory=list)


def read_report(raw: bytes, *, unsubscribe_addresses: frozenset[str] = frozenset()) -> Report:
    """Read one raw message from the mailbox and say what it is; never raises on bad input.

    `unsubscribe_addresses` are the campaigns' `unsubscribe.mailto` addresses: a mail to one of
    them (To, Cc, Delivered-To, X-Original-To; any case) that is no bounce or complaint is a
    request to unsubscribe its From address.
    """
    fallback_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    message = _parse(raw)
    if message is None:
        return Report(fallback_id, "malformed", [], [], [], "", "", [])
    fields = _fields_of(message)
    parts = list(_parts(message))
    ids = _message_ids(fields.get("message-id", []))
    sender = _first_address(fields.get("from", [])).lower()
    subject = _subject(message, fields)
    unsubscribe = frozenset(address.strip().lower() for address in unsubscribe_addresses)
    kind, verdicts = _classify(raw, message, fields, parts, sender, subject, unsubscribe)
    return Report(
        report_id=ids[0] if ids else fallback_id,
        kind=kind,
        verdicts=verdicts,
        original_message_ids=_original_message_ids(parts),
        envelope_to=_unique(_addresses(fields, _ENVELOPE_HEADERS)),
        sender=sender,
        subject=subject,
        original_return_paths=_original_return_paths(parts),
    )


def verp_tag(address: str, bounce_address: str) -> str | None:
    """The TAG of `bounces+TAG@mail.example.com` when `address` is `bounce_address` (`bounces@mail.example.com`) with a +TAG; else None (case-insensitive domain, local part compared exactly)."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    bounce_local, bounce_at, bounce_domain = bounce_address.strip().strip("<>").rpartition("@")
    if not (at and bounce_at and bounce_local) or domain.lower() != bounce_domain.lower():
        return None
    prefix = bounce_local + "+"
    if not local.startswith(prefix) or len(local) == len(prefix):
        return None
    return local[len(prefix) :]


# --- what the message is ------------------------------------------------------------------------


def _classify(
    raw: bytes,
    message: Message,
    fields: _Fields,
    parts: list[Message],
    sender: str,
    subject: str,
    unsubscribe: frozenset[str],
) -> tuple[ReportKind, list[Verdict]]:
    report_type = _param(message, "report-type").lower()
    by_type: dict[str, list[Message]] = {}
    for part in parts:
        by_type.setdefault(_content_type(part), []).append(part)
    if report_type == "feedback-report" or "message/feedback-report" in by_type:
        complaints = _complaints(by_type.get("message/feedback-report", []), parts)
        return ("arf", complaints) if complaints is not None else ("malformed", [])
    text = _notification_text(by_type.get("text/plain", []))
    status_blocks = [block for part in by_type.get("message/delivery-status", []) for block in _status_blocks(part)]
    if status_blocks:
        return "dsn", _dsn_verdicts(status_blocks, text)
    from_mail_system = _from_mail_system(fields, sender, report_type)
    if _is_auto_reply(fields) and not from_mail_system:
        return "unmatched", []
    if not from_mail_system and unsubscribe.intersection(_addresses(fields, _UNSUBSCRIBE_HEADERS, lower=True)):
        diagnostic = f"unsubscribe request: {subject}" if subject else "unsubscribe request"
        return "unsubscribe", [Verdict(sender, "unsubscribe", None, diagnostic[:MAX_DIAGNOSTIC])]
    detected = _detected_verdicts(raw, text) if sender else []
    if detected:
        return "dsn", detected
    if report_type == "delivery-status" or not fields or any(part.defects for part in parts):
        return "malformed", []
    return "unmatched", []


def _is_auto_reply(fields: _Fields) -> bool:
    """An auto-reply or out-of-office note (RFC 3834 and the headers vacation programs add)."""
    auto_submitted = " ".join(fields.get("auto-submitted", [])).lower()
    precedence = " ".join(fields.get("precedence", [])).lower()
    return (
        auto_submitted.startswith("auto-replied")
        or "x-autoreply" in fields
        or "x-autorespond" in fields
        or precedence.startswith("auto_reply")
    )


def _from_mail_system(fields: _Fields, sender: str, report_type: str) -> bool:
    """Signed by a mail system rather than a person: MTAs mark their bounces auto-replied too."""
    local = sender.rpartition("@")[0]
    return local in _MAIL_SYSTEMS or "x-failed-recipients" in fields or report_type == "delivery-status"


# --- DSN (RFC 3464) -----------------------------------------------------------------------------


def _status_blocks(part: Message) -> list[_Fields]:
    """The recipient blocks of a message/delivery-status part (the per-message block left out)."""
    subparts = _subparts(part)
    blocks = [_fields_of(block) for block in subparts] if subparts else _header_blocks(_decoded_text(part))
    return [block for block in blocks if {"final-recipient", "original-recipient", "action"} & block.keys()]


def _dsn_verdicts(blocks: list[_Fields], text: str) -> list[Verdict]:
    verdicts = []
    for block in blocks:
        address = _recipient(_first(block, "final-recipient")) or _recipient(_first(block, "original-recipient"))
        action_words = re.findall(r"[a-z]+", _first(block, "action").lower())
        action = action_words[0] if action_words else ""
        status = _status_code(_first(block, "status"))
        kind = _dsn_kind(action, status)
        if kind is None:
            continue
        found_status, words = _words_about(text, address)
        diagnostic = _diagnostic_code(_first(block, "diagnostic-code")) or words
        status = status or found_status
        verdicts.append(Verdict(address, kind, status, diagnostic or f"{action or 'failed'} {status or ''}".strip()))
    return verdicts


def _dsn_kind(action: str, status: str | None) -> VerdictKind | None:
    """`failed` with 5.x.x is hard; 4.x.x or `delayed` is soft; a delivery is no verdict."""
    if action in _DELIVERED:
        return None
    if action == "delayed":
        return "soft"
    if action.startswith(("fail", "error")):  # OpenSMTPD writes `Action: error`
        return "soft" if status is not None and status.startswith("4") else "hard"
    if status is not None and status[0] in "45":  # no action, or one RFC 3464 does not know
        return "hard" if status.startswith("5") else "soft"
    return None


def _recipient(value: str) -> str:
    """`rfc822; Zoe@Example.org` -> `zoe@example.org`."""
    address = value.partition(";")[2] if ";" in value else value
    words = address.strip().strip("<>").split()
    return words[0].strip("<>").lower() if words else ""


def _status_code(value: str) -> str | None:
    found = _ENHANCED_STATUS.search(value)
    return found.group() if found else None


def _diagnostic_code(value: str) -> str:
    """`smtp; 550 5.1.1 <zoe@example.org>: ...` -> `550 5.1.1 <zoe@example.org>: ...`."""
    return re.sub(r"^[\w-]+\s*;\s*", "", value)[:MAX_DIAGNOSTIC]


# --- bounces in an MTA's own words --------------------------------------------------------------


def _detected_verdicts(raw: bytes, text: str) -> list[Verdict]:
    """flufl.bounce's detectors (Exim, qmail, Postfix text, Exchange, ...): permanent is hard,
    temporary soft. They are written for compat32 messages whose headers are plain strings, so they
    read their own parse (`_PlainHeaders`), and are only asked about a message with a From address
    (one of them fails without). A detector that raises ends the scan, and flufl.bounce logs it."""
    try:
        temporary, permanent = all_failures(BytesParser(policy=_PLAIN_HEADERS).parsebytes(raw))
    except Exception:  # a detector that trips over a broken message has found nothing
        return []
    verdicts: list[Verdict] = []
    seen: set[str] = set()
    by_kind: tuple[tuple[VerdictKind, frozenset[bytes]], ...] = (("hard", permanent), ("soft", temporary))
    for kind, found in by_kind:
        for raw_address in sorted(found):
            address = raw_address.decode("ascii", "replace").strip().strip("<>").lower()
            if not address or address in seen:
                continue
            seen.add(address)
            status, words = _words_about(text, address)
            default = "undeliverable" if kind == "hard" else "delayed"
            verdicts.append(Verdict(address, kind, status, words or default))
    return verdicts


def _words_about(text: str, address: str) -> tuple[str | None, str]:
    """The enhanced status code and the bounce's own words about `address`: the SMTP reply in a
    paragraph that names it (`550 5.1.1 <max@example.net>: User unknown`), else the first such
    paragraph."""
    lines = text.splitlines()
    paragraphs = [_paragraph(lines, start) for start, line in enumerate(lines) if address and address in line.lower()]
    for paragraph in paragraphs:
        for at, line in enumerate(paragraph):
            reply = _SMTP_REPLY.search(line)
            if reply:
                words = _reply(line[reply.start() :], paragraph[at + 1 :], _indent(line))
                return _status_code(words), words
    if paragraphs:
        words = _clean(" ".join(paragraphs[0]))[:MAX_DIAGNOSTIC]
        return _status_code(words), words
    return None, ""


def _paragraph(lines: list[str], start: int) -> list[str]:
    """The lines from `start` to the next blank line (at most 12)."""
    paragraph = []
    for line in lines[start : start + 12]:
        if not line.strip():
            break
        paragraph.append(line)
    return paragraph


def _reply(first: str, following: list[str], indent: int) -> str:
    """An SMTP reply with its continuation: the lines indented under it, or the lines of a
    multi-line reply (`550-5.1.1 ...`, whose repeated code is left out)."""
    words = [first]
    code = first[:3]
    for line in following:
        stripped = line.strip()
        if stripped[:3] == code and stripped[3:4] in ("-", " "):
            words.append(_REPLY_CODE.sub("", stripped))
        elif _indent(line) > indent:
            words.append(stripped)
        else:
            break
    return _clean(" ".join(words)).strip(" '\"")[:MAX_DIAGNOSTIC]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# --- ARF (RFC 5965) -----------------------------------------------------------------------------


def _complaints(feedback_parts: list[Message], parts: list[Message]) -> list[Verdict] | None:
    """One complaint per Original-Rcpt-To, else per To of the enclosed original; None when the
    report has no feedback part to read."""
    if not feedback_parts:
        return None
    feedback = _feedback_fields(feedback_parts[0])
    feedback_type = _first(feedback, "feedback-type").lower()
    if feedback_type in _NOT_COMPLAINTS:
        return []
    diagnostic = f"complaint ({feedback_type})" if feedback_type else "complaint"
    addresses = [_recipient(value) for value in feedback.get("original-rcpt-to", []) if _recipient(value)]
    if not addresses:
        addresses = [address.lower() for original in _originals(parts) for address in _addresses(original, ("to",))]
    return [Verdict(address, "complaint", None, diagnostic) for address in _unique(addresses) or [""]]


def _feedback_fields(part: Message) -> _Fields:
    subparts = _subparts(part)
    if subparts:
        return _fields_of(subparts[0])
    blocks = _header_blocks(_decoded_text(part))
    return blocks[0] if blocks else {}


# --- the original it quotes ---------------------------------------------------------------------


def _originals(parts: list[Message]) -> list[_Fields]:
    """The headers of each original the report encloses (message/rfc822 or text/rfc822-headers)."""
    originals = []
    for part in parts:
        content_type = _content_type(part)
        if content_type == "message/rfc822":
            originals += [_fields_of(enclosed) for enclosed in _subparts(part)[:1]]
        elif content_type == "text/rfc822-headers":
            originals += _header_blocks(_decoded_text(part))[:1]
    return originals


def _original_message_ids(parts: list[Message]) -> list[str]:
    ids = [found for original in _originals(parts) for found in _message_ids(original.get("message-id", []))]
    for part in parts:
        if _content_type(part) == "text/plain":
            ids += _QUOTED_MESSAGE_ID.findall(_decoded_text(part))
    return _unique(ids)


def _original_return_paths(parts: list[Message]) -> list[str]:
    addresses = []
    for part in parts:
        if _content_type(part) == "message/feedback-report":
            addresses += _addresses(_feedback_fields(part), ("original-mail-from",))
    for original in _originals(parts):
        addresses += _addresses(original, ("return-path",))
    for part in parts:
        if _content_type(part) == "text/plain":
            addresses += _QUOTED_RETURN_PATH.findall(_decoded_text(part))
    return _unique(addresses)


class _PlainHeaders(policy.Compat32):
    """compat32 with every header value a str (compat32 gives an `email.header.Header` for bytes
    that are not ASCII, on which flufl.bounce's detectors fail): such bytes become U+FFFD."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")


_PLAIN_HEADERS = _PlainHeaders()


# --- reading MIME without raising ---------------------------------------------------------------


def _parse(raw: bytes) -> Message | None:
    try:
        return BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:  # the parser records defects rather than raising, but a bug there is no verdict
        return None


def _parts(message: Message, depth: int = 0) -> Iterator[Message]:
    """The message and its MIME parts, not descending into enclosed messages (an original's own
    parts are not the report's)."""
    yield message
    if depth < MAX_DEPTH and _content_type(message).startswith("multipart/"):
        for part in _subparts(message):
            yield from _parts(part, depth + 1)


def _subparts(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    return [item for item in payload if isinstance(item, Message)] if isinstance(payload, list) else []


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return _clean(collapse_rfc2231_value(value)) if value else ""


def _decoded_text(part: Message) -> str:
    """A leaf part's text, decoded from its transfer encoding and charset (bad bytes replaced)."""
    try:
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(charset, "replace")
    except (LookupError, ValueError):  # a charset Python does not know, or a name it cannot take
        return payload.decode("utf-8", "replace")


def _notification_text(text_parts: list[Message]) -> str:
    return "\n\n".join(_decoded_text(part) for part in text_parts)


def _fields_of(message: Message) -> _Fields:
    """The message's header fields as written (unfolded; bytes that are not UTF-8 replaced)."""
    fields: _Fields = {}
    try:
        items = list(message.raw_items())
    except Exception:
        return fields
    for name, value in items:
        fields.setdefault(str(name).strip().lower(), []).append(_clean(str(value)))
    return fields


def _header_blocks(text: str) -> list[_Fields]:
    """Blocks of `Name: value` lines separated by blank lines (a delivery-status or rfc822-headers
    part that the parser left as text)."""
    blocks: list[_Fields] = []
    block: _Fields = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
            block, name = {}, ""
        elif line[0] in " \t" and name:
            block[name][-1] = _clean(block[name][-1] + " " + line)
        else:
            label, colon, value = line.partition(":")
            name = label.strip().lower() if colon and _FIELD_NAME.fullmatch(label.strip()) else ""
            if name:
                block.setdefault(name, []).append(_clean(value))
    if block:
        blocks.append(block)
    return blocks


def _subject(message: Message, fields: _Fields) -> str:
    """The Subject with its encoded words decoded; as written when they cannot be."""
    try:
        value = message.get("subject")
        return _clean(str(value)) if value is not None else ""
    except Exception:
        return _first(fields, "subject")


def _clean(text: str) -> str:
    """One line of text that any output takes: bytes the parser kept as surrogates become U+FFFD,
    runs of white space one space, control characters nothing."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return _CONTROL.sub("", " ".join(data.decode("utf-8", "replace").split()))


def _first(fields: _Fields, name: str) -> str:
    values = fields.get(name)
    return values[0] if values else ""


def _addresses(fields: _Fields, names: Iterable[str], *, lower: bool = False) -> list[str]:
    values = [value for name in names for value in fields.get(name, [])]
    try:
        found = [address.strip() for _, address in getaddresses(values)]
    except Exception:
        return []
    return [address.lower() if lower else address for address in found if "@" in address]


def _first_address(values: list[str]) -> str:
    found = _addresses({"from": values}, ("from",))
    return found[0] if found else ""


def _message_ids(values: list[str]) -> list[str]:
    """Message-IDs with their <>; a bare one given its brackets."""
    ids: list[str] = []
    for value in values:
        found = _ANGLE_ID.findall(value)
        if not found and value and " " not in value:
            found = [f"<{value}>"]
        ids += found
    return ids


def _unique(values: Iterable[str]) -> list[str]:
    """Each value once (compared case-insensitively), in the order first seen."""
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            kept.append(value)
    return kept
