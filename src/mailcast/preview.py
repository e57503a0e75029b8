"""Render messages without sending: one to look at, or one .eml file per recipient."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailcast.addresses import check_address
from mailcast.campaign import Campaign
from mailcast.checks import CheckReport, check_campaign
from mailcast.compose import Composer
from mailcast.errors import Problem, ProblemsError, UsageError
from mailcast.recipients import Recipient

PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class PreviewMessage:
    row: int
    email: str
    data: bytes
    # the other rows' problems (strict validation): this row can be looked at while they are fixed,
    # but the campaign cannot be sent until they are
    warnings: tuple[Problem, ...] = ()


def checked_composer(campaign: Campaign, *, one_row: bool = False) -> tuple[CheckReport, Composer]:
    """Check the whole campaign and prepare its composer; raise every problem at once.

    With `one_row` (a message of one row is wanted), problems of single rows do not stop it:
    `pick_recipient` refuses a bad row with its problem and `row_warnings` lists the others'.
    Problems of the files themselves (YAML, templates, the CSV's header or quotes) always do.
    """
    report = check_campaign(campaign)
    stopping = [p for p in report.errors if p.row is None] if one_row else report.errors
    if stopping or report.templates is None:
        raise ProblemsError(problems=report.errors, warnings=report.warnings)
    return report, Composer(campaign, report.templates)


def row_warnings(report: CheckReport) -> tuple[Problem, ...]:
    """The rows' problems that stop the campaign (strict validation), shown beside one good row's message."""
    return tuple(p for p in report.errors if p.row is not None)


def preview_message(
    campaign: Campaign, *, now: datetime, row: int | None = None, email: str | None = None
) -> PreviewMessage:
    """The message of one recipient: data row `row` (1-based), the one with `email`, or the first."""
    report, composer = checked_composer(campaign, one_row=True)
    recipient = pick_recipient(report, row=row, email=email)
    data = _preview_bytes(composer, report, recipient, now)
    return PreviewMessage(recipient.row, recipient.email, data, row_warnings(report))


def pick_recipient(report: CheckReport, *, row: int | None, email: str | None) -> Recipient:
    """Data row `row` (1-based), the recipient with `email`, or the first sendable one.

    A row that cannot be sent is refused with its problem (exit 65), a repeated address with the
    row it repeats.
    """
    if email is not None and row is not None:
        raise UsageError("give --row or --email, not both", hint="--row N picks by position, --email by address.")
    if email is not None:
        rows: set[int] | None = _rows_with_address(report, email)
        what = f"no sendable recipient has the address {email}"
    elif row is not None:
        rows = {row}
        what = f"row {row} is not a sendable recipient (rows run from 1 to {report.rows_checked})"
    else:
        rows = None  # the first sendable row
        what = "the recipient list has no sendable rows"
    chosen = [r for r in report.sendable if rows is None or r.row in rows]
    if chosen:
        return chosen[0]
    duplicates = report.recipients.duplicates if report.recipients else []
    problems = [p for p in (*report.errors, *report.warnings) if _stops(p, rows, duplicates)]
    if problems:
        raise ProblemsError(problems=problems)
    for duplicate, first in duplicates:
        if rows is not None and duplicate.row in rows:
            what = (
                f"row {duplicate.row} repeats row {first} ({duplicate.email}), which is sent once: ask for row {first}"
            )
    raise UsageError(what, hint="mailcast check lists the rows and their problems.")


def _rows_with_address(report: CheckReport, email: str) -> set[int]:
    """The data rows with this address, good or bad (a bad one as written)."""
    try:
        key = check_address(email.strip()).lower()  # the form the list holds, such as an IDNA domain
    except ValueError:
        key = email.strip().lower()
    if report.recipients is None:
        return set()
    written = {row for row, address in report.recipients.bad_rows.items() if address.strip().lower() == key}
    return written | {r.row for r in report.recipients.rows if r.key == key}


def _stops(problem: Problem, rows: set[int] | None, duplicates: list[tuple[Recipient, int]]) -> bool:
    """Whether a problem is why one of `rows` (any row, for None) is not sent: an error, or a skipped row's
    warning under permissive validation; not a repeated address (that row's first time is sent)."""
    if problem.row is None or (rows is not None and problem.row not in rows):
        return False
    return all(problem.row != duplicate.row for duplicate, _ in duplicates)


def write_previews(campaign: Campaign, out: Path, *, now: datetime, limit: int | None = None) -> list[Path]:
    """Write one .eml file per sendable recipient (at most `limit`) into `out`; return the paths."""
    report, composer = checked_composer(campaign)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create {out}: {exc.strerror}", hint="Choose a folder you can write to for --out."
        ) from None
    written = []
    for recipient in report.sendable[:limit] if limit is not None else report.sendable:
        safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", recipient.email)
        path = out / f"{recipient.row:05d}-{safe}.eml"
        path.write_bytes(_preview_bytes(composer, report, recipient, now))
        written.append(path)
    return written


def _preview_bytes(composer: Composer, report: CheckReport, recipient: Recipient, now: datetime) -> bytes:
    """The recipient's message as a send would build it (with the check's rendering), under the preview token."""
    return composer.compose(
        values=recipient.values,
        email=recipient.email,
        run_token=PREVIEW_TOKEN,
        key=recipient.key,
        date=now,
        rendered=report.rendered.get(recipient.row),
    ).data
