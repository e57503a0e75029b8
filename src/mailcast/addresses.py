"""Addresses and mailboxes: what may stand in From, Reply-To, To and the other header values.

Used by the campaign model (From, Reply-To, the unsubscribe mailto), the recipient list (each
row's address) and message building. Every check raises ValueError saying why, so each caller
words and locates the problem its own way.
"""

from __future__ import annotations

import re

MAX_DISPLAY_NAME = 200  # keeps a From line well inside RFC 5322's 998 characters

# CR, LF and every other line break Unicode knows, NUL and the other control characters (tab is allowed)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def has_control_character(value: str) -> bool:
    """True when the value holds a line break or another control character, none of which may reach a header."""
    return _CONTROL.search(value) is not None


# An ASCII local part as email-validator takes it without quotes (RFC 5322 dot-atom), at most 64 characters
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
MAX_LOCAL_PART, MAX_ADDRESS = 64, 254
_checked_domains: dict[str, str] = {}  # a domain email-validator took -> its ASCII form


def check_address(address: str) -> str:
    """Validate an address's syntax (no DNS); return it normalised, with an international domain
    in its ASCII (IDNA) form; raise ValueError with why.

    email-validator checks every address whose domain it has not yet taken; a list's thousands of
    addresses share a few domains, so the others only have their local part checked, by the rule
    email-validator applies to an ASCII local part."""
    local, _, domain = address.rpartition("@")
    known = _checked_domains.get(domain)
    if known is not None and len(local) <= MAX_LOCAL_PART and _DOT_ATOM.fullmatch(local):
        normalized = f"{local}@{known}"
        if len(normalized) <= MAX_ADDRESS:
            return normalized
    return _validated(address)


def _validated(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        why = str(exc).rstrip(".")
        if not address.rpartition("@")[0].isascii():
            why += " (an address with such characters before the @ needs SMTPUTF8, which mailcast does not send)"
        raise ValueError(f'"{address}" is not a valid address: {why}') from None
    _checked_domains[address.rpartition("@")[2]] = str(checked.ascii_domain)
    return str(checked.ascii_email or checked.normalized)


def check_mailbox(value: str) -> str:
    """One mailbox, `Name <address>` or a bare address, with the address checked; returned with
    the address in its ASCII form."""
    from email.utils import formataddr, getaddresses

    if has_control_character(value):
        raise ValueError("must not contain a line break or control character")
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        raise ValueError(
            f'"{value}" is not one mailbox; write it as "Name <address@example.com>" or just the address '
            '(a name with a comma goes in double quotes: "\\"Acme, Inc\\" <news@example.com>")'
        )
    display, address = found[0]
    if len(display) > MAX_DISPLAY_NAME:
        raise ValueError(f"the name in {value[:40]!r}… is {len(display)} characters long (at most {MAX_DISPLAY_NAME})")
    return formataddr((display, check_address(address)))


def address_of(mailbox: str) -> str:
    """The address of a mailbox such as `Name <address>` (a bare address is its own)."""
    from email.utils import parseaddr

    return parseaddr(mailbox)[1] or mailbox
