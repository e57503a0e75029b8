"""Quotes in the recipient CSV: a value may span lines only as a quoted value that closes.

A quote opened by mistake would otherwise swallow the rows after it into one value: those
recipients would vanish and their rows would show up inside another recipient's message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import mailcast, write_campaign
from mailcast.recipients import RecipientList, load_recipients

UNCLOSED_ON_LINE_3 = 'email,first_name\na@example.com,Ann\nb@example.com,"world\nc@example.com,Cy\n'


def load(tmp_path: Path, content: str, **kwargs: object) -> RecipientList:
    path = tmp_path / "recipients.csv"
    path.write_bytes(content.encode("utf-8"))
    return load_recipients(path, shown="recipients.csv", **kwargs)  # type: ignore[arg-type]


def located(result: RecipientList) -> list[tuple[str | None, int | None, int | None]]:
    return [(p.location, p.line, p.row) for p in result.errors]


@pytest.mark.parametrize(
    "content",
    [
        UNCLOSED_ON_LINE_3,
        UNCLOSED_ON_LINE_3.replace("\n", "\r\n"),
        UNCLOSED_ON_LINE_3.rstrip("\n"),  # no line break at the end of the file
        'email,first_name\na@example.com,Ann\nb@example.com,"world\n',  # the quote opens on the last line
    ],
)
def test_a_quote_never_closed_is_a_problem_at_the_line_it_opens(tmp_path: Path, content: str) -> None:
    result = load(tmp_path, content)
    assert located(result) == [("recipients.csv:3", 3, None)]  # a problem of the file: never just a skipped row
    assert "never closed" in result.errors[0].message and "close the quote" in result.errors[0].message
    assert [r.email for r in result.rows] == ["a@example.com"]  # b's row does not carry c's along


def test_a_quote_that_closes_rows_later_is_found_by_the_rows_it_swallowed(tmp_path: Path) -> None:
    content = (
        "email,first_name\n"
        "a@example.com,Ann\n"
        'b@example.com,"world\n'  # opened by mistake; the next quote, on line 5, closes it
        "c@example.com,Cy\n"
        'd@example.com,"Dee"\n'
        "e@example.com,Eve\n"
    )
    result = load(tmp_path, content)
    assert located(result) == [("recipients.csv:3", 3, None)]
    message = result.errors[0].message
    assert "line 4 (c@example.com,Cy)" in message and "looks like a row" in message
    assert "close the quote on line 3" in message


def test_a_quote_opened_before_the_address_is_found_too(tmp_path: Path) -> None:
    result = load(tmp_path, 'email,first_name\n"b@example.com,Bo\nc@example.com,Cy\nd@example.com,Di"\n')
    assert located(result) == [("recipients.csv:2", 2, None)]


def test_a_quote_opened_in_a_later_value_of_a_row_is_located_at_its_own_line(tmp_path: Path) -> None:
    content = 'email,a,b\nx@example.com,"one\ntwo","three\nfour\ny@example.com,Y,Z\n'
    result = load(tmp_path, content)
    assert located(result) == [("recipients.csv:3", 3, None)]  # the row starts on 2, the open quote is on 3


def test_a_quote_never_closed_in_the_header(tmp_path: Path) -> None:
    result = load(tmp_path, 'email,"first_name\na@example.com,Ann\n')
    assert located(result) == [("recipients.csv:1", 1, None)] and "never closed" in result.errors[0].message


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_genuine_values_over_several_lines_keep_working(tmp_path: Path, ending: str) -> None:
    content = ending.join(
        [
            "email,first_name,notes",
            'a@example.com,Ann,"Acme Inc.',
            "12 Road, Berlin",
            'Germany"',
            'b@example.com,Bo,"He said ""hi""',
            'contact: b@example.com"',
            "c@example.com,Cy,",
            "",
        ]
    )
    result = load(tmp_path, content)
    assert result.errors == []
    assert [(r.email, r.line) for r in result.rows] == [
        ("a@example.com", 2),
        ("b@example.com", 5),
        ("c@example.com", 7),
    ]
    assert result.rows[0].values["notes"] == f"Acme Inc.{ending}12 Road, Berlin{ending}Germany"
    assert result.rows[1].values["notes"] == f'He said "hi"{ending}contact: b@example.com'


def test_an_unclosed_quote_before_128_kib_of_rows_names_the_line_it_opens(tmp_path: Path) -> None:
    rows = "".join(f"r{i}@example.com,Name{i}\n" for i in range(10_000))  # about 240,000 characters
    result = load(tmp_path, UNCLOSED_ON_LINE_3 + rows)
    assert located(result) == [("recipients.csv:3", 3, None)]  # not the line near 5,000 where reading stopped
    message = result.errors[0].message
    assert "starts on line 3" in message and "131,072 characters (128 KiB)" in message
    assert "quote on line 3 that is never closed" in message


def test_an_overlong_value_is_located_where_it_starts_not_where_its_row_does(tmp_path: Path) -> None:
    content = 'email,a,b\nx@example.com,"one\ntwo","' + "y" * 140_000 + '"\nz@example.com,1,2\n'
    result = load(tmp_path, content)
    assert located(result) == [("recipients.csv:3", 3, None)]
    assert "longer than 131,072 characters" in result.errors[0].message


def test_a_quote_never_closed_stops_a_permissive_campaign_too(tmp_path: Path) -> None:
    path = write_campaign(tmp_path / "c", extra={"validation": "permissive"})
    (tmp_path / "c" / "recipients.csv").write_text(UNCLOSED_ON_LINE_3, encoding="utf-8")
    result = mailcast("check", str(path), state=tmp_path / "state.db")
    assert result.code == 65, result
    assert "recipients.csv:3: a quote opens a value on this line and is never closed" in result.out + result.err


def test_check_and_send_refuse_a_csv_whose_quote_swallows_the_next_row(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    path = write_campaign(folder)
    (folder / "recipients.csv").write_text(UNCLOSED_ON_LINE_3, encoding="utf-8")
    state = tmp_path / "state.db"

    check = mailcast("check", str(path), state=state)
    assert check.code == 65, check
    assert "recipients.csv:3: a quote opens a value on this line and is never closed" in check.out + check.err

    send = mailcast("send", str(path), "--yes", state=state)
    assert send.code == 65, send
    assert "recipients.csv:3" in send.out + send.err
    outbox = folder / "outbox"
    assert not outbox.exists() or not any(p for sub in ("new", "cur", "tmp") for p in (outbox / sub).glob("*"))
