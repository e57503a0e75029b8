"""Recipient lists as spreadsheets write them: semicolons (Excel in much of Europe), tabs, a
header spelt `Email`, Excel's empty trailing column; every problem still located by file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import mailcast, maildir_recipients, smtp, write_campaign
from mailcast.recipients import RecipientList, load_recipients
from smtp_server import TestServer

SEMICOLONS = 'email;first_name;city\na@example.com;Zoë;"Köln; Altstadt"\nb@example.com;Ana;"Lyon, 2e"\n'
TABS = "email\tfirst_name\tcity\na@example.com\tZoë\tKöln; Altstadt\nb@example.com\tAna\tLyon, 2e\n"


def campaign_with(
    folder: Path,
    csv: str,
    *,
    name: str = "recipients.csv",
    extra: dict[str, Any] | None = None,
    transport: dict[str, Any] | None = None,
) -> Path:
    """The helpers' campaign, its recipient list replaced by `csv` (in a file called `name`)."""
    campaign = write_campaign(folder, 1, extra={"recipients": name, **(extra or {})}, transport=transport)
    (folder / "body.txt").write_text("Hello {{ first_name }} from {{ city }}\n", encoding="utf-8")
    (folder / name).write_text(csv, encoding="utf-8")
    return campaign


def load(tmp_path: Path, content: str, name: str = "recipients.csv", **kwargs: object) -> RecipientList:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return load_recipients(path, shown=name, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("csv", "name", "note"),
    [
        (SEMICOLONS, "recipients.csv", "recipients.csv:1: read as semicolon-separated (found from its header line)"),
        (TABS, "recipients.csv", "recipients.csv:1: read as tab-separated (found from its header line)"),
        (TABS, "recipients.tsv", "recipients.tsv:1: read as tab-separated (found from its .tsv name)"),
    ],
    ids=["semicolons", "tabs", "tsv"],
)
def test_each_row_gets_its_own_values_whatever_the_delimiter(
    tmp_path: Path, smtp_server: Callable[..., TestServer], csv: str, name: str, note: str
) -> None:
    server = smtp_server()
    campaign = campaign_with(tmp_path / "c", csv, name=name, transport=smtp(server.port))
    state = tmp_path / "s.db"
    checked = mailcast("check", str(campaign), state=state)
    assert checked.code == 0, checked.out
    assert f"warning: {note}" in checked.out
    assert "2 of 2 recipients ready to send" in checked.out
    sent = mailcast("send", str(campaign), "--yes", state=state)
    assert sent.code == 0, sent.out + sent.err
    got = {m.to: m.parsed() for m in server.messages}
    assert sorted(got) == ["a@example.com", "b@example.com"]
    assert got["a@example.com"]["Subject"] == "Hi Zoë"
    assert got["a@example.com"].get_content().strip() == "Hello Zoë from Köln; Altstadt"
    assert got["b@example.com"]["Subject"] == "Hi Ana"
    assert got["b@example.com"].get_content().strip() == "Hello Ana from Lyon, 2e"


def test_a_comma_file_gets_no_note(tmp_path: Path) -> None:
    campaign = campaign_with(tmp_path / "c", 'email,first_name,city\na@example.com,Zoë,"Köln; Altstadt"\n')
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 0, checked.out
    assert "warning" not in checked.out


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('email;"Name, first";city', ";"),  # a comma inside a quoted name splits nothing
        ('"Name, first";email;city', ";"),
        ('email,"Name; first",city', ","),
        ('"Name; first",email,city', ","),
        ('email\t"Name, first; last"\tcity', "\t"),
        ("Email;first_name", ";"),  # a near miss of the email column still shows the delimiter
        ("mail;first_name;city", ";"),  # no email column at all: the delimiter that makes the most columns
        ("email", ","),  # one column: nothing to tell, the comma
    ],
)
def test_the_delimiter_is_found_from_the_header_line(tmp_path: Path, header: str, expected: str) -> None:
    result = load(tmp_path, header + "\n")
    assert result.delimiter == expected


def test_lines_and_rows_stay_located_in_a_semicolon_file(tmp_path: Path) -> None:
    result = load(tmp_path, 'email;note\na@example.com;"two\nlines"\nbob@@example.com;x\nc@example.com;x;y\n')
    assert [(p.location, p.row) for p in result.errors] == [("recipients.csv:4", 2), ("recipients.csv:5", 3)]
    assert "bob@@example.com" in result.errors[0].message
    assert "quote values that contain semicolons" in result.errors[1].message
    assert result.rows[0].values == {"email": "a@example.com", "note": "two\nlines"}


def test_a_quote_opened_by_mistake_is_found_in_a_tab_file(tmp_path: Path) -> None:
    result = load(tmp_path, 'email\tname\na@example.com\t"Ann\nb@example.com\tBo"\nc@example.com\tCy\n')
    assert [(p.location, p.row) for p in result.errors] == [("recipients.csv:2", None)]
    assert "looks like a row of its own" in result.errors[0].message


@pytest.mark.parametrize("written", ['";"', "tab", "'\\t'", '"\\t"'])
def test_the_campaign_can_name_the_delimiter(tmp_path: Path, written: str) -> None:
    csv = SEMICOLONS if ";" in written else TABS
    folder = tmp_path / "c"
    campaign = campaign_with(folder, csv)
    text = campaign.read_text(encoding="utf-8") + f"csv:\n  delimiter: {written}\n"
    campaign.write_text(text, encoding="utf-8")
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 0, checked.out
    assert "separated" not in checked.out  # the campaign says so: nothing to note
    assert mailcast("send", str(campaign), "--yes", state=tmp_path / "s.db").code == 0
    assert maildir_recipients(folder / "outbox") == ["a@example.com", "b@example.com"]


def test_a_named_delimiter_wins_over_the_header(tmp_path: Path) -> None:
    campaign = campaign_with(tmp_path / "c", SEMICOLONS, extra={"csv": {"delimiter": ","}})
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 65
    assert "recipients.csv:1: no column named 'email'" in checked.out


def test_a_delimiter_mailcast_does_not_read_is_a_located_campaign_problem(tmp_path: Path) -> None:
    campaign = campaign_with(tmp_path / "c", SEMICOLONS, extra={"csv": {"delimiter": "|"}})
    line = campaign.read_text(encoding="utf-8").splitlines().index("  delimiter: '|'") + 1
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 78
    assert f'news.yaml:{line}: csv.delimiter: write the delimiter as ",", ";" or tab (got \'|\')' in checked.out


@pytest.mark.parametrize("header", ["Email;first_name;city", " EMAIL ;first_name;city", "E-mail;first_name;city"])
def test_a_near_miss_of_the_email_column_names_it(tmp_path: Path, header: str) -> None:
    campaign = campaign_with(tmp_path / "c", header + "\na@example.com;Ann;Köln\n")
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 65
    column = header.split(";")[0].strip()
    assert (
        f"recipients.csv:1: no column named 'email'; did you mean '{column}'? Rename that column to email, "
        f"or set email_column: {column} in the campaign file"
    ) in checked.out
    assert "read as semicolon-separated" in checked.out  # and the delimiter it was read with


def test_no_hint_when_nothing_is_near(tmp_path: Path) -> None:
    result = load(tmp_path, "address,name\na@example.com,A\n")
    assert result.errors[0].message == "no column named 'email' (columns: address, name); add it or set email_column"


@pytest.mark.parametrize(
    "csv",
    [
        "email,first_name,city,\na@example.com,Zoë,Köln,\nb@example.com,Ana,Lyon,\n",
        "email;first_name;city;;\na@example.com;Zoë;Köln;;\nb@example.com;Ana;Lyon; ;\n",
        "email,first_name,city,\na@example.com,Zoë,Köln\nb@example.com,Ana,Lyon,\n",  # one row without it
    ],
    ids=["excel", "two-columns-semicolons", "mixed"],
)
def test_an_empty_trailing_column_is_ignored(tmp_path: Path, csv: str) -> None:
    folder = tmp_path / "c"
    campaign = campaign_with(folder, csv)
    checked = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert checked.code == 0, checked.out
    assert "no name" not in checked.out and "not used" not in checked.out
    result = load(tmp_path, csv)
    assert result.columns == ["email", "first_name", "city"]
    assert result.rows[0].values == {"email": "a@example.com", "first_name": "Zoë", "city": "Köln"}
    assert mailcast("send", str(campaign), "--yes", state=tmp_path / "s.db").code == 0
    assert maildir_recipients(folder / "outbox") == ["a@example.com", "b@example.com"]


def test_a_trailing_column_with_a_value_needs_a_name(tmp_path: Path) -> None:
    csv = "email,first_name,\na@example.com,Zoë,\nb@example.com,Ana,VIP\nc@example.com,Cy,gold\n"
    result = load(tmp_path, csv)
    assert [(p.location, p.row) for p in result.errors] == [("recipients.csv:1", None)]  # the header's, said once
    assert result.errors[0].message == (
        "column 3 of the header has no name, but row 2 (line 3) has a value in it ('VIP'); "
        "name the column in the header or remove its values"
    )
    checked = mailcast("check", str(campaign_with(tmp_path / "c", csv)), state=tmp_path / "s.db")
    assert checked.code == 65  # a problem of the file: whatever `validation` says, nothing is sent
    assert "recipients.csv:1: column 3 of the header has no name" in checked.out


def test_an_empty_column_inside_the_header_is_still_a_problem(tmp_path: Path) -> None:
    result = load(tmp_path, "email,,name\na@example.com,,A\n")
    assert [(p.location, p.message) for p in result.errors] == [
        ("recipients.csv:1", "column 2 of the header has no name; name it or remove the column")
    ]


def test_suppress_import_reads_a_semicolon_file(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    unsubscribed = tmp_path / "unsub.csv"
    unsubscribed.write_text("email;date\nc@example.com;2026-01-02\nD@example.com;2026-01-03\n", encoding="utf-8")
    assert mailcast("suppress", "import", str(unsubscribed), state=state).code == 0
    listed = mailcast("suppress", "list", "--json", state=state).json()
    assert sorted(e["email"] for e in listed) == ["D@example.com", "c@example.com"]
