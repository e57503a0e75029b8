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
from mailcast.errors import ProblemsError, UsageError
from mailcast.recipients import Recipient

PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class PreviewMessage:
    row: int
    email: str
    data: bytes


def checked_composer(campaign: Campaign) -> tuple[CheckReport, Composer]:
    """Check the whole campaign (raising every problem at once) and prepare its composer."""
    report = check_campaign(campaign)
    if not report.ok or report.templates is None:
        raise ProblemsError(problems=report.errors, warnings=report.warnings)
    return report, Composer(campaign, report.templates)


def preview_message(
    campaign: Campaign, *, now: datetime, row: int | None = None, email: str | None = None
) -> PreviewMessage:
    """The message of one recipient: data row `row` (1-based), the one with `email`, or the first."""
    report, composer = checked_composer(campaign)
    recipient = pick_recipient(report, row=row, email=email)
    composed = composer.compose(
        values=recipient.values, email=recipient.email, run_token=PREVIEW_TOKEN, key=recipient.key, date=now
    )
    return PreviewMessage(recipient.row, recipient.email, composed.data)


def pick_recipient(report: CheckReport, *, row: int | None, email: str | None) -> Recipient:
    """Data row `row` (1-based), the recipient with `email`, or the first sendable one."""
    candidates = report.sendable
    if email is not None and row is not None:
        raise UsageError("give --row or --email, not both", hint="--row N picks by position, --email by address.")
    if email is not None:
        try:
            key = check_address(email.strip()).lower()  # the form the list holds, such as an IDNA domain
        except ValueError:
            key = email.strip().lower()
        chosen = [r for r in candidates if r.key == key]
        what = f"no sendable recipient has the address {email}"
    elif row is not None:
        chosen = [r for r in candidates if r.row == row]
        what = f"row {row} is not a sendable recipient (rows run from 1 to {report.rows_checked})"
    else:
        chosen = candidates[:1]
        what = "the recipient list has no sendable rows"
    if not chosen:
        raise UsageError(what, hint="mailcast check lists the rows and their problems.")
    return chosen[0]


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
        composed = composer.compose(
            values=recipient.values,
            email=recipient.email,
            run_token=PREVIEW_TOKEN,
            key=recipient.key,
            date=now,
            rendered=report.rendered.get(recipient.row),
        )
        safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", recipient.email)
        path = out / f"{recipient.row:05d}-{safe}.eml"
        path.write_bytes(composed.data)
        written.append(path)
    return written
