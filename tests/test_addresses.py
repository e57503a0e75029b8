"""Addresses and mailboxes, checked with plain values: what may reach From, Reply-To and To."""

from __future__ import annotations

import re

import pytest

from mailcast.addresses import MAX_DISPLAY_NAME, address_of, check_address, check_mailbox, has_control_character


def test_a_valid_address_is_returned_with_its_domain_lower_cased() -> None:
    assert check_address("zoe@example.org") == "zoe@example.org"
    assert check_address("Zoe@Example.ORG") == "Zoe@example.org"  # the local part is the server's business


def test_an_international_domain_is_returned_in_ascii() -> None:
    assert check_address("zoe@bücher.example") == "zoe@xn--bcher-kva.example"
    assert check_address("zoe@xn--bcher-kva.example") == "zoe@xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_refused_with_the_smtputf8_hint() -> None:
    with pytest.raises(ValueError, match="SMTPUTF8") as caught:
        check_address("josé@example.com")
    assert str(caught.value).startswith('"josé@example.com" is not a valid address: ')


@pytest.mark.parametrize("address", ["a@example.test", "a@host.invalid", "a@printer.local"])
def test_a_special_use_domain_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="special-use or reserved name") as caught:
        check_address(address)
    assert "SMTPUTF8" not in str(caught.value)


@pytest.mark.parametrize("address", ["", "no-at-sign", "a@@example.com", "a..b@example.com"])
def test_a_malformed_address_says_which_and_why(address: str) -> None:
    written = f'"{address}" is not a valid address: '
    with pytest.raises(ValueError, match=f"^{re.escape(written)}."):
        check_address(address)


@pytest.mark.parametrize(
    ("mailbox", "checked"),
    [
        ("Acme News <news@example.com>", "Acme News <news@example.com>"),
        ("news@example.com", "news@example.com"),
        ('"Acme, Inc" <news@bücher.example>', '"Acme, Inc" <news@xn--bcher-kva.example>'),
    ],
)
def test_one_mailbox_with_or_without_a_name(mailbox: str, checked: str) -> None:
    assert check_mailbox(mailbox) == checked


@pytest.mark.parametrize(
    "mailbox", ["a@example.com, b@example.com", "Acme <news@example.com> extra junk", "", "Acme <>"]
)
def test_anything_but_one_mailbox_is_refused(mailbox: str) -> None:
    written = f'"{mailbox}" is not one mailbox; write it as "Name <address@example.com>"'
    with pytest.raises(ValueError, match=f"^{re.escape(written)}"):
        check_mailbox(mailbox)


def test_the_address_of_a_mailbox_is_checked_too() -> None:
    with pytest.raises(ValueError, match="SMTPUTF8"):
        check_mailbox("José <josé@example.com>")


def test_a_display_name_longer_than_the_most_is_refused() -> None:
    longest = "A" * MAX_DISPLAY_NAME
    assert check_mailbox(f"{longest} <a@example.com>") == f"{longest} <a@example.com>"
    with pytest.raises(
        ValueError, match=re.escape(f"is {MAX_DISPLAY_NAME + 1} characters long (at most {MAX_DISPLAY_NAME})")
    ):
        check_mailbox(f"{longest}A <a@example.com>")


@pytest.mark.parametrize("mailbox", ["Acme\n <a@example.com>", "Acme <a@example.com>\r\nBcc: b@example.com"])
def test_a_mailbox_with_a_line_break_is_refused(mailbox: str) -> None:
    with pytest.raises(ValueError, match=r"^must not contain a line break or control character$"):
        check_mailbox(mailbox)


def test_the_address_of_a_mailbox() -> None:
    assert address_of("Acme News <news@example.com>") == "news@example.com"
    assert address_of("news@example.com") == "news@example.com"


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\u2029b"])
def test_line_breaks_and_control_characters_are_found(value: str) -> None:
    assert has_control_character(value)


@pytest.mark.parametrize("value", ["", "plain text", "a\tb", "Zoë 日本", "a\u00a0b"])
def test_text_tabs_and_non_ascii_letters_are_not_control_characters(value: str) -> None:
    assert not has_control_character(value)


def test_a_plain_ascii_mistake_gets_no_smtputf8_hint() -> None:
    with pytest.raises(ValueError, match="not a valid address") as caught:
        check_address("a b@example.com")
    assert "SMTPUTF8" not in str(caught.value)


def test_the_fast_path_for_a_known_domain_agrees_with_email_validator() -> None:
    """Once a domain was taken, its other addresses have only their local part checked: the same
    verdict and the same normalised address as email-validator gives, on thousands of local parts."""
    import random
    import string

    from email_validator import EmailNotValidError, validate_email

    def full(address: str) -> str | None:
        try:
            checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError:
            return None
        return str(checked.ascii_email or checked.normalized)

    def ours(address: str) -> str | None:
        try:
            return check_address(address)
        except ValueError:
            return None

    domains = ["example.com", "Example.COM", "bücher.example", "x" * 63 + ".example.org"]
    for domain in domains:
        assert ours(f"seed@{domain}") is not None  # now known
    rng = random.Random(7)
    atext = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
    odd = atext + '."(),:;<>@[\\] é'
    locals_ = [".".join("".join(rng.choice(atext) for _ in range(rng.randint(0, 9))) for _ in range(rng.randint(1, 5)))
               for _ in range(1500)]  # fmt: skip
    locals_ += ["".join(rng.choice(odd) for _ in range(rng.randint(0, 70))) for _ in range(1500)]
    locals_ += ["a..b", ".a", "a.", "x" * 64, "x" * 65, ""]
    checked = [f"{local}@{rng.choice(domains)}" for local in locals_]
    assert [ours(a) for a in checked] == [full(a) for a in checked]
    assert sum(full(a) is not None for a in checked) > 1000  # the corpus holds good addresses as well as bad
