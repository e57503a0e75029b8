"""The recipient CSV: rows with their file lines, and every problem with `file:line`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailcast.campaign import check_address
from mailcast.errors import Problem
from mailcast.message import has_control_character

MAX_ROWS = 10_000
RESERVED_COLUMNS = ("unsubscribe_url",)


@dataclass(frozen=True)
class Recipient:
    row: int  # 1-based data row number (the first row after the header is 1)
    line: int  # the file line the row starts on (the header is line 1)
    email: str
    key: str  # the address lower-cased: for duplicates and the suppression list
    values: dict[str, str]


@dataclass
class RecipientList:
    file: str
    columns: list[str] = field(default_factory=list)
    rows: list[Recipient] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    bad_rows: dict[int, str] = field(default_factory=dict)  # row -> its address as written, for the report
    duplicates: list[tuple[Recipient, int]] = field(default_factory=list)
    data_rows: int = 0  # every data row read, good or bad


def load_recipients(
    path: Path,
    email_column: str = "email",
    *,
    shown: str | None = None,
    max_rows: int = MAX_ROWS,
    headerless: bool = False,
) -> RecipientList:
    """Read the CSV; collect every problem instead of stopping at the first.

    `headerless` reads a plain list (one address per line, no header) as one column `email_column`.
    """
    shown = shown or str(path)
    result = RecipientList(shown)

    def problem(message: str, line: int | None = None, row: int | None = None) -> None:
        result.errors.append(Problem(message, file=shown, line=line, row=row))

    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem(f"cannot read the recipient list: {exc.strerror}")
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem(f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}); save it as UTF-8", line=line)
        return result
    if not text.strip():
        problem("the file is empty; it needs a header row (with an email column) and at least one data row", line=1)
        return result
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        problem(
            f"line {line} contains a NUL character, which is not text; remove it (save the file as plain UTF-8)",
            line=line,
        )
        return result

    reader = csv.reader(io.StringIO(text, newline=""), strict=False)

    def records() -> Iterator[list[str]]:
        try:
            yield from reader
        except csv.Error as exc:
            problem(
                f"cannot read on from line {reader.line_num}: {exc}; a value this long usually means a quote "
                "that is never closed, so check the quotes on this line and above",
                line=reader.line_num,
            )

    rows = records()
    header = [email_column] if headerless else next(rows)
    columns = [c.strip() for c in header]
    result.columns = columns
    seen: set[str] = set()
    for index, name in enumerate(columns, start=1):
        if not name:
            problem(f"column {index} of the header has no name; name it or remove the column", line=1)
        elif name in seen:
            problem(f"the header names column {name!r} twice; rename one of them", line=1)
        seen.add(name)
        if name in RESERVED_COLUMNS:
            problem(f"column {name!r} would hide mailcast's own {name} variable; rename the column", line=1)
    if email_column not in columns:
        problem(
            f"no column named {email_column!r} (columns: {', '.join(columns)}); add it or set email_column",
            line=1,
        )
        return result
    if result.errors:
        return result
    email_index = columns.index(email_column)
    width = len(columns)
    by_key: dict[str, int] = {}
    row_number = 0
    line = 1 if headerless else reader.line_num + 1
    for fields in rows:
        start = line
        line = reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        row_number += 1
        if row_number > max_rows:
            continue
        if len(fields) != width:
            problem(
                f"row {row_number} has {len(fields)} values but the header has {width}; "
                "fix the row (quote values that contain commas)",
                start,
                row_number,
            )
            result.bad_rows[row_number] = fields[email_index].strip() if email_index < len(fields) else ""
            continue
        email = fields[email_index].strip()
        if has_control_character(email):
            problem(
                f"row {row_number}: the address contains a line break or control character; remove it",
                start,
                row_number,
            )
            result.bad_rows[row_number] = email
            continue
        try:
            email = check_address(email)
        except ValueError as exc:
            problem(f"row {row_number}: {exc}; fix the address or remove the row", start, row_number)
            result.bad_rows[row_number] = email
            continue
        recipient = Recipient(row_number, start, email, email.lower(), dict(zip(columns, fields, strict=False)))
        first = by_key.get(recipient.key)
        if first is not None:
            result.duplicates.append((recipient, first))
            continue
        by_key[recipient.key] = row_number
        result.rows.append(recipient)
    result.data_rows = row_number
    if row_number == 0 and not headerless:
        problem("the file has a header but no data rows; add at least one recipient", line=1)
    elif row_number > max_rows:
        problem(
            f"the file has {row_number:,} data rows; a campaign takes at most {max_rows:,}: split the list",
            line=max_rows + 2,
        )
        result.rows = []
    return result
