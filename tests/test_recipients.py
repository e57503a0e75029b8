"""The recipient CSV: every error kind located by file:line and row."""

from __future__ import annotations

from pathlib import Path

from mailcast.recipients import load_recipients


def load(tmp_path: Path, content: bytes | str, **kwargs: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "recipients.csv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return load_recipients(path, shown="recipients.csv", **kwargs)  # type: ignore[arg-type]


def where(result) -> list[tuple[int | None, int | None]]:  # type: ignore[no-untyped-def]
    return [(p.line, p.row) for p in result.errors]


def test_bom_and_any_line_ending(tmp_path: Path) -> None:
    for ending in ("\n", "\r\n", "\r"):
        result = load(
            tmp_path, "\ufeffemail,name" + ending + "a@example.com,Zoë" + ending + "b@example.org,Ana" + ending
        )
        assert result.errors == []
        assert result.columns == ["email", "name"]
        assert [(r.email, r.line, r.values["name"]) for r in result.rows] == [
            ("a@example.com", 2, "Zoë"),
            ("b@example.org", 3, "Ana"),
        ]


def test_bad_address_on_line_7(tmp_path: Path) -> None:
    rows = [f"p{i}@example.com,P" for i in range(5)]
    result = load(tmp_path, "email,name\n" + "\n".join(rows) + "\nbob@@example.com,Bob\nz@example.com,Z\n")
    assert where(result) == [(7, 6)]
    assert "bob@@example.com" in result.errors[0].message and "fix the address" in result.errors[0].message
    assert result.bad_rows == {6: "bob@@example.com"} and len(result.rows) == 6


def test_quoted_newline_keeps_later_line_numbers(tmp_path: Path) -> None:
    result = load(tmp_path, 'email,note\na@example.com,"two\nlines"\nnot-an-address,x\n')
    assert result.rows[0].values["note"] == "two\nlines"
    assert where(result) == [(4, 2)]


def test_ragged_row(tmp_path: Path) -> None:
    result = load(tmp_path, "email,name\na@example.com,A,extra\n")
    assert where(result) == [(2, 1)]
    assert "3 values" in result.errors[0].message and "header has 2" in result.errors[0].message


def test_header_problems(tmp_path: Path) -> None:
    duplicate = load(tmp_path, "email,name,name\na@example.com,A,B\n")
    assert "twice" in duplicate.errors[0].message and duplicate.errors[0].line == 1
    empty = load(tmp_path, "email,,name\na@example.com,A,B\n")
    assert "no name" in empty.errors[0].message
    missing = load(tmp_path, "mail,name\na@example.com,A\n")
    assert "no column named 'email'" in missing.errors[0].message and "mail, name" in missing.errors[0].message
    reserved = load(tmp_path, "email,unsubscribe_url\na@example.com,x\n")
    assert "unsubscribe_url" in reserved.errors[0].message


def test_empty_and_header_only(tmp_path: Path) -> None:
    assert "empty" in load(tmp_path, "").errors[0].message
    assert "no data rows" in load(tmp_path, "email,name\n").errors[0].message


def test_too_many_rows(tmp_path: Path) -> None:
    result = load(tmp_path, "email\n" + "".join(f"p{i}@example.com\n" for i in range(10_001)))
    assert len(result.errors) == 1
    assert "10,001" in result.errors[0].message and "10,000" in result.errors[0].message
    assert result.rows == []


def test_not_utf8(tmp_path: Path) -> None:
    result = load(tmp_path, b"email,name\na@example.com,A\nb@example.com,Jos\xe9\n")
    assert result.errors[0].line == 3 and "not UTF-8" in result.errors[0].message


def test_duplicates_are_sent_once(tmp_path: Path) -> None:
    result = load(tmp_path, "email\nAda@Example.com\nb@example.com\nada@example.COM\n")
    assert [r.email for r in result.rows] == ["Ada@example.com", "b@example.com"]  # domains are case-blind
    assert [(d.row, first) for d, first in result.duplicates] == [(3, 1)]
    assert result.errors == []


def test_other_email_column(tmp_path: Path) -> None:
    result = load(tmp_path, "name,address\nA,a@example.com\n", email_column="address")
    assert result.rows[0].email == "a@example.com" and result.rows[0].key == "a@example.com"


def test_international_addresses(tmp_path: Path) -> None:
    result = load(tmp_path, "email\nx@bücher.example\njosé@example.com\nX@xn--bcher-kva.example\n")
    assert [r.email for r in result.rows] == ["x@xn--bcher-kva.example"]  # the third is the first again
    assert len(result.duplicates) == 1
    assert [(p.line, "SMTPUTF8" in p.message) for p in result.errors] == [(3, True)]


def test_a_value_too_long_to_read_is_a_located_problem(tmp_path: Path) -> None:
    result = load(tmp_path, 'email,name\na@example.com,A\nb@example.com,"' + "x" * 200_000 + '"\n')
    assert [(p.line, "quote" in p.message) for p in result.errors] == [(3, True)]


def test_a_nul_character_is_a_located_problem(tmp_path: Path) -> None:
    result = load(tmp_path, "email,name\na@example.com,A\nb@example.com,B\x00\n")
    assert [(p.line, "NUL" in p.message) for p in result.errors] == [(3, True)] and result.rows == []
