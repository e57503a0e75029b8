"""Mistakes people make in a campaign file, answered with what they meant, at the key's line:
a misspelt key at any depth, a value where a section belongs, a DKIM domain that does not align."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Result, mailcast, rsa_key_pem, write_campaign

GOOD = """\
from: "Acme News <news@mail.example.com>"
subject: "Hi {{ first_name }}"
template:
  text: body.txt
recipients: recipients.csv
"""


def check(tmp_path: Path, yaml_text: str) -> Result:
    folder = tmp_path / "c"
    folder.mkdir(exist_ok=True)
    (folder / "body.txt").write_text("Hello {{ first_name }}\n", encoding="utf-8")
    (folder / "recipients.csv").write_text("email,first_name\na@example.com,Ann\n", encoding="utf-8")
    (folder / "dkim.key").write_bytes(rsa_key_pem())
    path = folder / "news.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    return mailcast("check", str(path), state=tmp_path / "s.db")


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        (GOOD.replace("subject:", "subjet:"), "2: unknown key subjet: did you mean subject?"),
        (GOOD.replace("subject:", "Subject:"), "2: unknown key Subject: did you mean subject?"),
        (GOOD.replace("  text:", "  txt:"), "4: unknown key template.txt: did you mean template.text?"),
        (GOOD + "reply-to: help@example.com\n", "6: unknown key reply-to: did you mean reply_to?"),
        (GOOD + "sender: help@example.com\n", "6: unknown key sender: did you mean from?"),
        (GOOD + "limits:\n  daly: 200\n", "7: unknown key limits.daly: did you mean limits.daily?"),
        (
            GOOD + "transport:\n  type: smtp\n  hots: smtp.example.com\n  host: smtp.example.com\n",
            "8: unknown key transport.hots: did you mean transport.host?",
        ),
        (
            GOOD + "schedule:\n  start: 2026-12-01 09:00\n  timezon: Europe/Berlin\n",
            "8: unknown key schedule.timezon: did you mean schedule.timezone?",
        ),
        (GOOD + 'csv:\n  delimeter: ";"\n', "7: unknown key csv.delimeter: did you mean csv.delimiter?"),
    ],
)
def test_a_misspelt_key_names_the_key_meant_on_its_line(tmp_path: Path, yaml_text: str, line: str) -> None:
    result = check(tmp_path, yaml_text)
    assert result.code == 78
    assert f"/news.yaml:{line}\n" in result.out + result.err  # one line: where, what is wrong, what to write


def test_an_unknown_key_far_from_any_known_one_gets_no_guess(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD + "colour: blue\n")
    assert result.code == 78
    assert (
        "/news.yaml:6: unknown key colour: remove it or check its spelling (see the README's campaign file reference)"
    ) in result.out
    assert "did you mean" not in result.out


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        (
            GOOD + "schedule: tomorrow\n",
            "6: schedule must be a section of keys, such as schedule: {start: \"2026-12-01 09:00\"} (got 'tomorrow')",
        ),
        (
            GOOD + "tags: [a, b]\n",
            "6: tags must be a mapping of names to values, such as tags: {campaign: spring} (got ['a', 'b'])",
        ),
        (
            GOOD + "headers: X-Campaign\n",
            "6: headers must be a mapping of names to values, such as headers: {X-Campaign: spring} (got 'X-Campaign')",
        ),
        (
            GOOD.replace("template:\n  text: body.txt", "template: body.txt"),
            "3: template must be a section of keys, such as template: {html: body.html} (got 'body.txt')",
        ),
        (
            GOOD + "transport: smtp\n",
            "6: transport must be a section of keys, such as transport: {type: smtp, host: smtp.example.com} "
            "(got 'smtp')",
        ),
        (
            GOOD + "csv: ;\n",
            "6: csv must be a section of keys, such as csv: {delimiter: \";\"} (got ';')",
        ),
    ],
)
def test_a_value_where_a_section_belongs_gets_an_example_for_its_key(tmp_path: Path, yaml_text: str, line: str) -> None:
    result = check(tmp_path, yaml_text)
    assert result.code == 78
    assert f"/news.yaml:{line}\n" in result.out + result.err  # one line: where, what is wrong, what to write


DKIM = "dkim:\n  domain: {domain}\n  selector: s2026\n  private_key_file: dkim.key\n"


@pytest.mark.parametrize("domain", ["mail.example.com", "example.com", "MAIL.example.com.", "eu.mail.example.com"])
def test_an_aligned_dkim_domain_gets_no_warning(tmp_path: Path, domain: str) -> None:
    result = check(tmp_path, GOOD + DKIM.format(domain=domain))
    assert result.code == 0, result.out
    assert "warning" not in result.out and "dkim" not in result.out
    assert "OK: news: 1 of 1 recipients ready to send." in result.out


def test_a_dkim_domain_of_another_organization_is_a_warning_on_its_line(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD + DKIM.format(domain="esp-mailer.net"))
    assert result.code == 0  # a warning: the mail can still be sent
    assert (
        "warning: news.yaml:7: dkim.domain: esp-mailer.net is neither the From domain (mail.example.com) nor a parent "
        "domain of it: the DKIM signature will not align for DMARC, so receivers that check DMARC treat the mail as "
        "not signed by its sender; sign with a key of mail.example.com or a parent domain of it"
    ) in result.out
    data = mailcast("check", str(tmp_path / "c" / "news.yaml"), "--json", state=tmp_path / "s.db").json()
    assert [(w["key"], w["line"]) for w in data["warnings"]] == [("dkim.domain", 7)]


def test_a_dkim_domain_beside_the_from_domain_aligns_only_under_relaxed_alignment(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD + DKIM.format(domain="bounce.example.com"))
    assert result.code == 0
    assert (
        "warning: news.yaml:7: dkim.domain: bounce.example.com is neither the From domain (mail.example.com) nor a "
        "parent domain of it: the DKIM signature will not align for DMARC unless example.com is the organizational "
        "domain of both"
    ) in result.out


def test_messages_for_what_users_mistype(tmp_path: Path) -> None:
    cases = {
        "transport": (
            {"tpye": "maildir"},
            "transport.type is required: smtp or maildir; did you mean type instead of tpye?",
        ),
        "unsubscribe": ({"ulr": "https://example.com/u"}, "unknown key unsubscribe.ulr: did you mean unsubscribe.url?"),
        "password": ("hunter2", "a password must never be written in the campaign file"),
        "limits": ({"warmup": "fast"}, "limits.warmup: write standard, off, or a plan of daily limits"),
        "ad_marker": (True, "YAML reads yes, no, on and off as true and false: write one of the values it takes"),
    }
    for number, (key, (value, said)) in enumerate(cases.items()):
        campaign = write_campaign(tmp_path / f"c{number}", 1, extra={key: value})
        result = mailcast("check", str(campaign), state=tmp_path / "state.db")
        assert result.code == 78 and said in result.out + result.err, (key, result.err)
    smpt = write_campaign(tmp_path / "smpt", 1, transport={"type": "smpt", "host": "mail.example.com"})
    assert (
        "'smpt' is neither smtp nor maildir; did you mean smtp?"
        in mailcast("check", str(smpt), state=tmp_path / "s").out
    )
    folder = mailcast("check", str(tmp_path / "c0"), state=tmp_path / "state.db")
    assert folder.code == 78 and "is a folder: give the campaign file inside it" in folder.err
