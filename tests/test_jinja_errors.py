"""Every kind of Jinja error, through every command: a located problem (exit 65), never a traceback.

Errors Jinja finds before rendering (syntax, unknown filters and tests, compile-time assertions)
are the template's problem at its line; errors while rendering a row are that row's problem,
naming the template's line. `run-due` reports a broken campaign and still sends the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Result, mailcast, maildir_recipients, write_campaign

NOW = "2026-12-01T10:00:00+00:00"
SCHEDULE = {"schedule": {"start": "2026-12-01 09:00"}}

# kind -> (body.txt, what the user reads: location and message)
BODY_ERRORS = {
    "unknown filter": (
        "Hello\n{{ first_name | capitalise }}\n",
        "body.txt:2: no Jinja filter is named 'capitalise' (did you mean 'capitalize'?)",
    ),
    "unknown filter in a branch no row takes": (
        "Hello\n{% if false %}\n\n{{ first_name | shout }}\n{% endif %}\n",
        "body.txt:4: no Jinja filter is named 'shout'",
    ),
    "unknown test": (
        "Hello\n\n{% if first_name is frobnicated %}x{% endif %}\n",
        "body.txt:3: no Jinja test is named 'frobnicated'",
    ),
    "syntax error": ("Hello {{ first_name }\n", "body.txt:1: Jinja syntax error: unexpected '}'"),
    "unknown tag": ("Hi\n{% raise 'no' %}\n", "body.txt:2: Jinja syntax error: Encountered unknown tag 'raise'"),
    "compile-time assertion": (
        "Hi {{ first_name }}\n{% for loop in [1] %}{% endfor %}\n",
        "body.txt:2: Jinja syntax error: Can't assign to special loop variable",
    ),
    "error raised while rendering": (
        "Hi\n{{ '%d' | format(first_name) }}\n",
        "recipients.csv:2: row 1: body.txt:2: TypeError: %d format: a real number is required, not str",
    ),
    "jinja runtime error": (
        "Hi\n\n{{ [first_name] | map('frobf') | list }}\n",
        "recipients.csv:2: row 1: body.txt:3: No filter named 'frobf'",
    ),
    "undefined attribute": (
        "Hi\n\n\n{{ first_name.nickname }}\n",
        "recipients.csv:2: row 1: body.txt:4: 'str object' has no attribute 'nickname'",
    ),
    "variable with no column": (
        "Hi {{ first_name }}\n\n{{ coupon }}\n",
        "body.txt:3: body.txt uses the variable 'coupon', but recipients.csv has no such column",
    ),
    "unsubscribe_url without an unsubscribe section": (
        "Hi {{ first_name }}\nBye: {{ unsubscribe_url }}\n",
        "body.txt:2: body.txt uses the variable 'unsubscribe_url', but the campaign file has no unsubscribe section",
    ),
}

# kind -> (subject, what the user reads; {where} is the campaign file and the subject key's line)
SUBJECT_ERRORS = {
    "unknown filter": ("Hi {{ first_name | capitalise }}", "{where}: subject: no Jinja filter is named 'capitalise'"),
    "syntax error": ("Hi {{ first_name", "{where}: subject: Jinja syntax error"),
    "error raised while rendering": (
        "Hi {{ first_name.nickname }}",
        "recipients.csv:2: row 1: subject ({where}): 'str object' has no attribute 'nickname'",
    ),
}

COMMANDS = {
    "check": ("check",),
    "preview": ("preview",),
    "send": ("send", "--yes"),
    "test": ("test", "--to", "t@example.com"),
}


def subject_line(campaign: Path) -> int:
    lines = campaign.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.startswith("subject:"))


def broken_campaign(folder: Path, *, body: str | None = None, subject: str | None = None) -> tuple[Path, str]:
    """A scheduled campaign with one Jinja error, and `file:line` of its subject key."""
    extra: dict[str, object] = dict(SCHEDULE)
    if subject is not None:
        extra["subject"] = subject
    campaign = write_campaign(folder, 2, name="broken", extra=extra)
    if body is not None:
        (folder / "body.txt").write_text(body, encoding="utf-8")
    return campaign, f"broken.yaml:{subject_line(campaign)}"


def assert_located(result: Result, expected: str) -> None:
    assert result.code == 65, (result.out, result.err)
    assert expected in result.out + result.err, (result.out, result.err)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", BODY_ERRORS)
def test_a_body_error_is_a_located_problem_in_every_command(tmp_path: Path, kind: str, command: str) -> None:
    body, expected = BODY_ERRORS[kind]
    campaign, _ = broken_campaign(tmp_path / "c", body=body)
    result = mailcast(COMMANDS[command][0], str(campaign), *COMMANDS[command][1:], state=tmp_path / "s.db", now=NOW)
    assert_located(result, expected)
    assert not (tmp_path / "c" / "outbox").exists()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", SUBJECT_ERRORS)
def test_a_subject_error_names_the_subject_key_in_every_command(tmp_path: Path, kind: str, command: str) -> None:
    subject, expected = SUBJECT_ERRORS[kind]
    campaign, where = broken_campaign(tmp_path / "c", subject=subject)
    result = mailcast(COMMANDS[command][0], str(campaign), *COMMANDS[command][1:], state=tmp_path / "s.db", now=NOW)
    assert_located(result, expected.replace("{where}", where))
    assert not (tmp_path / "c" / "outbox").exists()


@pytest.mark.parametrize(
    ("body", "subject", "expected"),
    [(body, None, expected) for body, expected in BODY_ERRORS.values()]
    + [(None, subject, expected) for subject, expected in SUBJECT_ERRORS.values()],
    ids=[f"body: {kind}" for kind in BODY_ERRORS] + [f"subject: {kind}" for kind in SUBJECT_ERRORS],
)
def test_run_due_reports_the_broken_campaign_and_sends_the_healthy_one(
    tmp_path: Path, body: str | None, subject: str | None, expected: str
) -> None:
    folder = tmp_path / "campaigns"
    _, where = broken_campaign(folder / "a-broken", body=body, subject=subject)  # first in the folder's order
    write_campaign(folder / "b-good", 2, name="good", extra=SCHEDULE)
    result = mailcast("run-due", str(folder), state=tmp_path / "s.db", now=NOW)
    assert result.code == 65, (result.out, result.err)  # the worst of 65 and 0
    assert str(folder / "a-broken" / "broken.yaml") in result.err
    assert expected.replace("{where}", where) in result.err
    assert maildir_recipients(folder / "b-good" / "outbox") == ["r1@example.com", "r2@example.com"]
    assert not (folder / "a-broken" / "outbox").exists()
    assert "of good: 2 sent" in result.out  # the healthy campaign's summary
