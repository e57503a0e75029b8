"""The recipient CSV: rows with their file lines, and every problem with `file:line`."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from mailcast.addresses import check_address, has_control_character
from mailcast.errors import Problem

MAX_ROWS = 10_000
RESERVED_COLUMNS = ("unsubscribe_url",)
# the delimiters a recipient list may use, by the name a user reads (Excel writes `;` where `,` is the decimal mark)
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
_PLURALS = {",": "commas", ";": "semicolons", "\t": "tabs"}

# Fed to the csv reader after the file's last line. A lone surrogate never comes out of UTF-8
# decoding, so no file holds it: a value ending with it is a quote still open at the end of the file.
_END = "\ud800"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LOOKS_LIKE_ADDRESS = re.compile(r"^[^@\s,;\"<>]+@[^@\s,;\"<>]+\.[^@\s,;\"<>]+$")
# One value as written, between delimiters: quoted (up to its closing quote, or to the end when it never
# closes, and any text after the closing quote, which a lenient reader keeps) or unquoted.
_RAW_VALUES = {d: re.compile(rf'"[^"]*(?:""[^"]*)*(?:"[^{d}\r\n]*)?|[^{d}\r\n]*') for d in DELIMITERS}


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
    delimiter: str = ","
    # how the delimiter was found when none was given: "its header line" or "its .tsv name"; None when given
    detected_by: str | None = None
    # empty columns at the end of the header (as Excel writes them), left out of `columns`: rows may leave them
    # out or leave them empty
    blank_trailing: int = 0
    _unnamed_reported: bool = field(default=False, repr=False, init=False)

    def problem(self, message: str, line: int | None = None, row: int | None = None) -> None:
        self.errors.append(Problem(message, file=self.file, line=line, row=row))


def load_recipients(
    path: Path,
    email_column: str = "email",
    *,
    shown: str | None = None,
    max_rows: int = MAX_ROWS,
    headerless: bool = False,
    delimiter: str | None = None,
) -> RecipientList:
    """Read the CSV; collect every problem instead of stopping at the first.

    `delimiter` is one of DELIMITERS; None finds it (a `.tsv` file is tab-separated, any other file
    is read with the delimiter of its header line). `headerless` reads a plain list (one address per
    line, no header) as one column `email_column`.
    """
    result = RecipientList(shown or str(path))
    text = _read_text(path, result)
    if text is None:
        return result
    if delimiter is None and not headerless:
        tsv = path.suffix.lower() == ".tsv"
        delimiter = "\t" if tsv else find_delimiter(text, email_column)
        result.detected_by = "its .tsv name" if tsv else "its header line"
    result.delimiter = delimiter or ","
    records = _Records(text, result.problem, result.delimiter)
    rows = iter(records)
    header = [email_column] if headerless else next(rows, (1, None))[1]
    if header is None:
        return result  # the header itself could not be read; the problem says why
    result.columns = columns = _named_columns(header, result)
    for message in _header_problems(columns, email_column):
        result.problem(message, line=1)
    if result.errors:
        return result
    email_index = columns.index(email_column)
    records.expect(len(columns), email_index, result.blank_trailing)
    by_key: dict[str, int] = {}
    row_number = 0
    for start, fields in rows:
        if fields is not None and (not fields or (len(fields) == 1 and not fields[0].strip())):
            continue  # a blank line
        row_number += 1
        if fields is not None and row_number <= max_rows:
            _add_row(result, email_index, row_number, start, fields, by_key)
    result.data_rows = row_number
    _check_row_count(result, row_number, max_rows, headerless)
    return result


def find_delimiter(text: str, email_column: str = "email") -> str:
    """The delimiter of the header line: the one that splits it into a column named like `email_column`
    (any case), else into the most columns; a tie goes to the comma. Quoted names are read as quoted,
    so a comma inside `"Name, first"` splits nothing."""
    first = _LINE_BREAK.split(text, maxsplit=1)[0]
    wanted = email_column.strip().casefold()
    best, best_score = ",", (False, 0)
    for delimiter in DELIMITERS:
        names = next(csv.reader([first], delimiter=delimiter, strict=False), [])
        score = (wanted in (n.strip().casefold() for n in names), len(names))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _named_columns(header: list[str], result: RecipientList) -> list[str]:
    """The header's column names; empty ones at its end (Excel's `email,first_name,`) are left out."""
    columns = [c.strip() for c in header]
    named = len(columns)
    while named > 1 and not columns[named - 1]:
        named -= 1
    result.blank_trailing = len(columns) - named
    return columns[:named]


def _check_row_count(result: RecipientList, row_count: int, max_rows: int, headerless: bool) -> None:
    if row_count == 0 and not headerless and not result.errors:
        result.problem("the file has a header but no data rows; add at least one recipient", line=1)
    elif row_count > max_rows:
        result.problem(
            f"the file has {row_count:,} data rows; a campaign takes at most {max_rows:,}: split the list",
            line=max_rows + 2,
        )
        result.rows = []


def _read_text(path: Path, result: RecipientList) -> str | None:
    """The file's text, or None when it cannot be read as text (the problem is in `result`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        result.problem(f"cannot read the recipient list: {exc.strerror}")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        result.problem(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}); save it as UTF-8", line=line
        )
        return None
    if not text.strip():
        result.problem(
            "the file is empty; it needs a header row (with an email column) and at least one data row", line=1
        )
        return None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        result.problem(
            f"line {line} contains a NUL character, which is not text; remove it (save the file as plain UTF-8)",
            line=line,
        )
        return None
    return text


def _header_problems(columns: list[str], email_column: str) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, name in enumerate(columns, start=1):
        if not name:
            problems.append(f"column {index} of the header has no name; name it or remove the column")
        elif name in seen:
            problems.append(f"the header names column {name!r} twice; rename one of them")
        seen.add(name)
        if name in RESERVED_COLUMNS:
            problems.append(f"column {name!r} would hide mailcast's own {name} variable; rename the column")
    if email_column not in columns:
        problems.append(_missing_email_column(columns, email_column))
    return problems


def _missing_email_column(columns: list[str], email_column: str) -> str:
    listed = ", ".join(columns)
    meant = _nearest(email_column, columns)
    if meant is None:
        return f"no column named {email_column!r} (columns: {listed}); add it or set email_column"
    return (
        f"no column named {email_column!r}; did you mean {meant!r}? Rename that column to {email_column}, "
        f"or set email_column: {meant} in the campaign file (columns: {listed})"
    )


def _nearest(name: str, names: list[str]) -> str | None:
    """The name in `names` that `name` most likely means: the same but for case and spaces, else a close spelling."""
    folded = {n.strip().casefold(): n for n in names if n.strip()}
    wanted = name.strip().casefold()
    if wanted in folded:
        return folded[wanted]
    close = difflib.get_close_matches(wanted, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def _add_row(
    result: RecipientList, email_index: int, row: int, start: int, fields: list[str], by_key: dict[str, int]
) -> None:
    """Check one data row; add it to the recipients, the duplicates or the problems."""
    width = len(result.columns)
    if len(fields) != width and not _fills_blank_columns(result, row, start, fields):
        result.problem(
            f"row {row} has {len(fields)} values but the header has {width}; "
            f"fix the row (quote values that contain {_PLURALS[result.delimiter]})",
            start,
            row,
        )
        result.bad_rows[row] = fields[email_index].strip() if email_index < len(fields) else ""
        return
    email = fields[email_index].strip()
    if has_control_character(email):
        result.problem(f"row {row}: the address contains a line break or control character; remove it", start, row)
        result.bad_rows[row] = email
        return
    try:
        email = check_address(email)
    except ValueError as exc:
        result.problem(f"row {row}: {exc}; fix the address or remove the row", start, row)
        result.bad_rows[row] = email
        return
    recipient = Recipient(row, start, email, email.lower(), dict(zip(result.columns, fields, strict=False)))
    first = by_key.get(recipient.key)
    if first is not None:
        result.duplicates.append((recipient, first))
        return
    by_key[recipient.key] = row
    result.rows.append(recipient)


def _fills_blank_columns(result: RecipientList, row: int, start: int, fields: list[str]) -> bool:
    """Whether a row longer than the named header only reaches into the header's empty trailing columns.

    A value there means the column is not empty after all: a problem of the file (its header), said once.
    """
    width = len(result.columns)
    if not width < len(fields) <= width + result.blank_trailing:
        return False
    filled = next((i for i in range(width, len(fields)) if fields[i].strip()), None)
    if filled is not None and not result._unnamed_reported:
        result._unnamed_reported = True
        result.problem(
            f"column {filled + 1} of the header has no name, but row {row} (line {start}) has a value in it "
            f"({fields[filled].strip()[:40]!r}); name the column in the header or remove its values",
            line=1,
        )
    return True


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class _Records:
    """The CSV's records, each with the line it starts on.

    A value may span lines only as a quoted value that closes and does not hold lines that look
    like rows of their own; otherwise the record is a problem located at the line where its quote
    opened, and it is yielded with fields None. A value over the csv module's size limit stops the
    reading with a problem at the line where that value starts.
    """

    def __init__(self, text: str, problem: Callable[[str, int], None], delimiter: str = ",") -> None:
        self._text = text
        self._problem = problem
        self._delimiter = delimiter
        self._width = 0  # 0 until the header is known: then lines inside values are compared with rows
        self._spare = 0  # the header's empty trailing columns, which a row may or may not fill
        self._email_index = 0

    def expect(self, width: int, email_index: int, spare: int = 0) -> None:
        """From now on, a line inside a quoted value that looks like such a row is a problem."""
        self._width = width
        self._email_index = email_index
        self._spare = spare

    def __iter__(self) -> Iterator[tuple[int, list[str] | None]]:
        reader = csv.reader(
            chain(io.StringIO(self._text, newline=""), (_END,)), delimiter=self._delimiter, strict=False
        )
        start = 1
        try:
            for fields in reader:
                if reader.line_num == start:  # one line: the quick way every ordinary row takes
                    if len(fields) == 1 and fields[0] == _END:
                        return
                    yield start, fields
                else:
                    yield start, self._spanning(start, fields)
                start = reader.line_num + 1
        except csv.Error as exc:
            self._unreadable(start, reader.line_num, exc)

    def _spanning(self, start: int, fields: list[str]) -> list[str] | None:
        """A record over several lines: its fields, or None when its quote was opened by mistake."""
        line = start
        for value in fields:
            if value.endswith(_END):
                body = value[: -len(_END)]
                last = line + _line_breaks(body) - (1 if body.endswith(("\n", "\r")) else 0)
                self._problem(
                    f"a quote opens a value on this line and is never closed, so everything from here to the "
                    f"end of the file (line {last}) would be that one value; close the quote, or remove it "
                    '(a quote inside a quoted value is written twice: "")',
                    line,
                )
                return None
            if self._width and self._swallowed_row(line, value):
                return None
            line += _line_breaks(value)
        return fields

    def _swallowed_row(self, line: int, value: str) -> bool:
        """Whether a value over several lines holds a line that looks like a row (the problem if so)."""
        for offset, text in enumerate(_LINE_BREAK.split(value)[1:], start=1):
            parts = next(csv.reader([text], delimiter=self._delimiter, strict=False), [])
            if self._width <= len(parts) <= self._width + self._spare and _LOOKS_LIKE_ADDRESS.match(
                parts[self._email_index].strip()
            ):
                self._problem(
                    f"the quoted value that starts on this line runs on to line {line + offset} "
                    f"({text.strip()[:60]}), which looks like a row of its own: a quote opened by mistake "
                    f"swallows the rows after it; close the quote on line {line}, or remove it",
                    line,
                )
                return True
        return False

    def _unreadable(self, start: int, stopped: int, exc: csv.Error) -> None:
        lines = io.StringIO(self._text, newline="").readlines()
        stopped = min(stopped, len(lines))  # not the line after the last, which the reader may have reached
        line = start + _value_start("".join(lines[start - 1 : stopped]), self._delimiter)
        limit = csv.field_size_limit()
        if "field larger than field limit" in str(exc):
            reach = f", still going on line {stopped}," if stopped > line else ""
            why = (
                f"the value that starts on line {line}{reach} is longer than {limit:,} characters "
                f"({limit // 1024} KiB), the most one value may hold; a value this long usually means a quote "
                f"on line {line} that is never closed: close it, or shorten the value"
            )
        else:
            why = f"cannot read on from line {line}: {exc}; check the quotes on this line and above"
        self._problem(why, line)


def _value_start(record: str, delimiter: str = ",") -> int:
    """Line breaks before the longest value in a record's text as written: the value the reader
    gave up on, for being too long, starts on that line of the record."""
    longest = (0, 0)  # (length, -offset): the first of the longest
    position = 0
    raw_value = _RAW_VALUES[delimiter]
    while position < len(record):
        value = raw_value.match(record, position)
        end = value.end() if value else len(record)
        longest = max(longest, (end - position, -position))
        if end >= len(record) or record[end] != delimiter:
            break  # the end of the record
        position = end + 1
    return _line_breaks(record[: -longest[1]])
