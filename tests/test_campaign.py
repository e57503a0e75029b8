"""The campaign file: every key validated, every problem located, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import mailcast, rsa_key_pem
from mailcast.campaign import SmtpTransport
from mailcast.campaign_file import load_campaign
from mailcast.errors import ExitCode, ProblemsError

GOOD = """\
from: "Acme News <news@example.com>"
subject: "Hi {{ first_name }}"
template:
  html: body.html
recipients: recipients.csv
"""


def write(folder: Path, yaml_text: str) -> Path:
    (folder / "body.html").write_text("<p>Hi {{ first_name }}</p>", encoding="utf-8")
    (folder / "recipients.csv").write_text("email,first_name\na@example.com,A\n", encoding="utf-8")
    path = folder / "news.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        load_campaign(path)
    assert caught.value.exit_code == ExitCode.CONFIG
    return [f"{p.line}|{p.key}|{p.message}" for p in caught.value.problems]


def test_minimal_campaign_gets_safe_defaults(tmp_path: Path) -> None:
    campaign = load_campaign(write(tmp_path, GOOD))
    assert campaign.name == "news"  # the file's stem
    assert campaign.sender_domain == "example.com"
    assert campaign.validation == "strict"
    assert campaign.transport.type == "maildir"  # nothing leaves the machine by default
    assert campaign.limits.warmup == "standard"
    assert campaign.kind == "batch"


def test_every_key_of_the_spec_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "guide.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "dkim.key").write_bytes(rsa_key_pem())
    text = (
        GOOD
        + """\
name: spring-news
reply_to: [support@example.com, help@example.org]
email_column: email
validation: permissive
headers: {X-Campaign: spring}
tags: {campaign: spring-2026}
attachments: [files/guide.pdf]
unsubscribe:
  url: "https://example.com/u?e={{ email | urlencode }}"
  mailto: unsubscribe@example.com
  footer: zh-hant
ad_marker: before
schedule:
  start: "2026-12-01 09:00"
  cron: "0 9 * * MON"
  timezone: Europe/Berlin
dkim: {domain: example.com, selector: s2026, private_key_file: dkim.key}
limits: {daily: 2000, warmup: [500, 1000], rate: 20}
transport:
  type: smtp
  host: smtp.example.com
  port: 587
  security: starttls
  username: news@example.com
  password_env: MAILCAST_SMTP_PASSWORD
  connections: 4
"""
    )
    campaign = load_campaign(write(tmp_path, text))
    assert campaign.name == "spring-news"
    assert campaign.kind == "recurring"
    assert campaign.reply_to_list == ["support@example.com", "help@example.org"]
    assert isinstance(campaign.transport, SmtpTransport)
    assert campaign.transport.connections == 4
    assert campaign.limits.warmup == [500, 1000]


def test_unquoted_off_means_warmup_off(tmp_path: Path) -> None:
    campaign = load_campaign(write(tmp_path, GOOD + "limits: {warmup: off}\n"))
    assert campaign.limits.warmup == "off"


def test_all_problems_at_once_with_key_and_line(tmp_path: Path) -> None:
    text = GOOD + "colour: red\nlimits:\n  daily: 0\ntransport:\n  type: smtp\n  host: h\n  password: hunter2\n"
    found = problems(write(tmp_path, text))
    assert any(f.startswith("6|colour|unknown key colour") for f in found), found
    assert any(f.startswith("8|limits.daily|") for f in found), found
    assert any(f.startswith("12|transport.password|") and "password_env" in f for f in found), found
    assert all("hunter2" not in f for f in found)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(write(tmp_path, GOOD + "headers: {X-A: [unclosed\n"))
    assert found[0].startswith("6|") or found[0].startswith("7|"), found
    assert "YAML error" in found[0]


def test_wrong_types_and_values(tmp_path: Path) -> None:
    text = GOOD.replace('subject: "Hi {{ first_name }}"', "subject: 42") + (
        "ad_marker: sideways\nschedule: {every: 3w, timezone: Mars/Olympus}\ntags: {'bad tag': x}\n"
    )
    found = "\n".join(problems(write(tmp_path, text)))
    assert "subject" in found and "valid string" in found
    assert "ad_marker" in found
    assert "schedule.every" in found and "24h" in found
    assert "Mars/Olympus" in found
    assert "bad tag" in found


def test_missing_files_and_attachment_outside_folder(tmp_path: Path) -> None:
    inner = tmp_path / "campaign"
    inner.mkdir()
    (tmp_path / "secret.txt").write_text("x", encoding="utf-8")
    text = GOOD.replace("body.html", "missing.html") + "attachments: [../secret.txt]\n"
    found = "\n".join(problems(write(inner, text)))
    assert "template.html" in found and "missing.html" in found
    assert "outside the campaign's folder" in found


def test_a_folder_where_a_file_belongs_is_said_to_be_one(tmp_path: Path) -> None:
    inner = tmp_path / "campaign"
    (inner / "lists.csv").mkdir(parents=True)
    found = "\n".join(problems(write(inner, GOOD.replace("recipients.csv", "lists.csv"))))
    assert "recipients: lists.csv is a folder" in found and "not found" not in found


def test_login_without_tls_policy_keys_pair(tmp_path: Path) -> None:
    found = "\n".join(problems(write(tmp_path, GOOD + "transport: {type: smtp, host: h, username: u}\n")))
    assert "password_env" in found


def test_header_that_mailcast_sets_is_refused(tmp_path: Path) -> None:
    found = "\n".join(problems(write(tmp_path, GOOD + "headers: {Subject: x}\n")))
    assert "set by mailcast" in found


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    found = problems(tmp_path / "nope.yaml")
    assert "does not exist" in found[0]


def test_from_and_reply_to_are_one_mailbox_each(tmp_path: Path) -> None:
    text = GOOD.replace('"Acme News <news@example.com>"', '"Acme <news@example.com> extra junk"') + (
        "reply_to: [help@example.com, 'a@example.com, b@example.com']\n"
    )
    found = problems(write(tmp_path, text))
    assert [line.split("|")[:2] for line in found] == [["1", "from"], ["6", "reply_to"]], found
    assert all("not one mailbox" in line for line in found)
    long_name = GOOD.replace("Acme News", "A" * 300)
    assert "300 characters long" in problems(write(tmp_path, long_name))[0]


def test_international_domain_is_sent_in_ascii_and_local_part_needs_smtputf8(tmp_path: Path) -> None:
    ok = load_campaign(write(tmp_path, GOOD.replace("news@example.com", "news@bücher.example")))
    assert ok.sender_address == "news@xn--bcher-kva.example" and ok.sender.startswith("Acme News <")
    found = problems(write(tmp_path, GOOD.replace("news@example.com", "josé@example.com")))
    assert "SMTPUTF8" in found[0] and found[0].startswith("1|from|")


def test_schedules_that_never_come_and_overlong_fixed_subjects(tmp_path: Path) -> None:
    text = GOOD.replace('"Hi {{ first_name }}"', '"' + "x" * 120 + '"') + ('schedule: {cron: "0 9 30 2 *"}\n')
    found = "\n".join(problems(write(tmp_path, text)))
    assert "2|subject|" in found and "120 characters" in found
    assert "never fires" in found
    assert "at most 366d" in "\n".join(problems(write(tmp_path, GOOD + "schedule: {every: 9999999d}\n")))


def test_a_dkim_key_that_cannot_sign_is_found_by_check(tmp_path: Path) -> None:
    (tmp_path / "dkim.key").write_text("not a key", encoding="utf-8")
    found = problems(write(tmp_path, GOOD + "dkim: {domain: example.com, selector: s1, private_key_file: dkim.key}\n"))
    assert found[0].startswith("6|dkim.private_key_file|") and "cannot sign" in found[0]


def test_a_key_written_twice_is_located_at_the_repeat_at_any_depth(tmp_path: Path) -> None:
    text = GOOD + (
        'subject: "Hello again"\n'  # line 6, first on line 2
        "colour: red\n"
        "transport:\n"
        "  type: smtp\n"
        "  host: 127.0.0.1\n"
        "  port: 2525\n"  # line 11
        "  security: none\n"
        "  port: 2626\n"  # line 13
        "headers: {X-A: a, X-A: b}\n"  # line 14: a flow mapping, both on one line
    )
    found = problems(write(tmp_path, text))
    assert [f for f in found if "twice" in f] == [
        "6|subject|subject is written twice on line 2 and again on line 6; "
        "YAML would quietly keep only the last one, so delete the one you do not mean",
        "13|transport.port|transport.port is written twice on line 11 and again on line 13; "
        "YAML would quietly keep only the last one, so delete the one you do not mean",
        "14|headers.X-A|headers.X-A is written twice on line 14; "
        "YAML would quietly keep only the last one, so delete the one you do not mean",
    ]
    assert any(f.startswith("7|colour|unknown key") for f in found), found  # reported with the others


def test_keys_that_only_look_alike_are_not_repeats(tmp_path: Path) -> None:
    text = GOOD + "tags: {a: x}\nheaders: {X-A: a, x-a: b}\nlimits: {warmup: [1, 2, 1]}\n"
    load_campaign(write(tmp_path, text))  # case differs, and repeated list items are no keys


def test_a_repeated_key_stops_check_with_exit_78_naming_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "transport: {type: maildir, path: outbox, path: elsewhere}\n")
    result = mailcast("check", str(path), state=tmp_path / "state.db")
    assert result.code == 78, result
    assert "news.yaml:6: transport.path is written twice on line 6;" in result.out + result.err


def test_unsubscribe_mailto_must_be_an_address(tmp_path: Path) -> None:
    ok = load_campaign(write(tmp_path, GOOD + "unsubscribe: {mailto: Unsub@Bücher.example}\n"))
    assert ok.unsubscribe is not None and ok.unsubscribe.mailto == "Unsub@xn--bcher-kva.example"
    found = problems(write(tmp_path, GOOD + "unsubscribe:\n  mailto: not-an-address\n"))
    assert len(found) == 1 and found[0].startswith(
        '7|unsubscribe.mailto|unsubscribe.mailto: "not-an-address" is not a valid address'
    )
    assert "give the address that takes unsubscribe requests" in found[0]
    prefixed = problems(write(tmp_path, GOOD + "unsubscribe: {mailto: 'mailto:unsub@example.com'}\n"))
    assert prefixed == [
        '6|unsubscribe.mailto|unsubscribe.mailto: write just the address, without "mailto:" '
        "(mailcast writes the link itself): mailto: unsub@example.com"
    ]
