"""What the state file says, shaped for people and scripts: the task list, warm-up, outcomes."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from mailcast.campaign import Campaign, Limits
from mailcast.errors import UsageError
from mailcast.lock import CampaignLock
from mailcast.schedule import next_occurrence, schedule_zone
from mailcast.state import RECIPIENT_STATUSES, StateStore
from mailcast.warmup import DayRecord, daily_allowance, local_day, next_midnight


@dataclass(frozen=True)
class RunStatus:
    campaign: str
    run: int | None
    type: str
    status: str
    reason: str | None
    total: int
    sent: int
    failed: int
    deferred: int
    skipped: int
    suppressed: int
    in_doubt: int
    pending: int
    resume_at: str | None
    occurrence: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_status(
    store: StateStore | None, campaigns: list[Campaign], *, only: str | None, now: datetime, zone: tzinfo
) -> list[RunStatus]:
    """One row per run, plus a `scheduled` row for each scheduled or recurring campaign's next occurrence."""
    rows: list[RunStatus] = []
    runs = store.runs(only) if store else []
    busy: dict[str, bool] = {}
    for run in runs:
        counts = store.counts(run.id) if store else dict.fromkeys(RECIPIENT_STATUSES, 0)
        if run.campaign not in busy:
            busy[run.campaign] = store is not None and CampaignLock(store.locks_folder, run.campaign).held_elsewhere()
        status, reason = run.status, run.reason
        sending_now = status == "sending" and busy[run.campaign]
        if status == "sending" and not sending_now:
            status, reason = "paused", "interrupted: send again to continue"
        in_doubt = 0 if sending_now else counts["sending"]
        pending = counts["pending"] + (counts["sending"] if sending_now else 0)
        rows.append(
            RunStatus(
                campaign=run.campaign,
                run=run.id,
                type=run.type,
                status=status,
                reason=reason,
                total=sum(counts.values()),
                sent=counts["sent"],
                failed=counts["failed"],
                deferred=counts["deferred"],
                skipped=counts["skipped"],
                suppressed=counts["suppressed"],
                in_doubt=in_doubt,
                pending=pending,
                resume_at=run.resume_at.astimezone(zone).isoformat() if run.resume_at else None,
                occurrence=run.occurrence.astimezone(zone).isoformat() if run.occurrence else None,
            )
        )
    for campaign in campaigns:
        if campaign.schedule is None or (only and campaign.name != only):
            continue
        last = store.latest_occurrence(campaign.name) if store else None
        upcoming = next_occurrence(campaign.schedule, zone=schedule_zone(campaign.schedule, zone), last=last, now=now)
        if upcoming is None:
            continue
        rows.append(
            RunStatus(
                campaign=campaign.name,
                run=None,
                type=campaign.kind,
                status="scheduled",
                reason="next occurrence",
                total=0,
                sent=0,
                failed=0,
                deferred=0,
                skipped=0,
                suppressed=0,
                in_doubt=0,
                pending=0,
                resume_at=upcoming.astimezone(zone).isoformat(),
            )
        )
    return rows


@dataclass(frozen=True)
class WarmupStatus:
    domain: str
    level: int | None
    limit: int | None
    sent_today: int
    remaining: int | None
    resets_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_warmup(store: StateStore | None, *, now: datetime, zone: tzinfo) -> list[WarmupStatus]:
    if store is None:
        return []
    today = local_day(now, zone)
    resets = next_midnight(now, zone).isoformat()
    rows = []
    for domain, limits in store.sender_domains().items():
        days = store.domain_days(domain)
        history = [DayRecord(d.day, d.sent, d.rejected) for d in days]
        allowance = daily_allowance(Limits.model_validate(limits, strict=False), history, today)
        used = next((d.claimed for d in days if d.day == today), 0)
        remaining = None if allowance.limit is None else max(allowance.limit - used, 0)
        rows.append(WarmupStatus(domain, allowance.level, allowance.limit, used, remaining, resets))
    return rows


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    run: int | None
    totals: dict[str, int]
    by_domain: dict[str, dict[str, int]]
    recipients: list[dict[str, Any]]
    notes: list[dict[str, str]]  # what happened to the run as a whole, such as a change of content

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "run": self.run,
            "totals": self.totals,
            "by_domain": self.by_domain,
            "recipients": self.recipients,
            "notes": self.notes,
        }


REPORT_COLUMNS = ("email", "status", "attempts", "last_reply", "sent_at", "message_id")


def build_report(store: StateStore | None, campaign: str, *, run_id: int | None = None) -> CampaignReport:
    """Outcome per recipient of the campaign's latest run (or the run given), with totals."""
    runs = store.runs(campaign) if store else []
    if run_id is not None:
        runs = [r for r in runs if r.id == run_id]
    if not runs:
        raise UsageError(
            f"no run of campaign {campaign!r} in the state file" + (f" with id {run_id}" if run_id else ""),
            hint="mailcast status lists the runs; a campaign has runs once it has been sent.",
        )
    run = runs[-1]
    outcomes = store.outcomes(run.id) if store else []
    totals = dict.fromkeys(RECIPIENT_STATUSES, 0)
    by_domain: dict[str, dict[str, int]] = {}
    for o in outcomes:
        totals[o.status] += 1
        domain = o.email.rpartition("@")[2].lower() or "(no address)"
        by_domain.setdefault(domain, dict.fromkeys(RECIPIENT_STATUSES, 0))[o.status] += 1
    recipients = [
        {
            "row": o.row,
            "email": o.email,
            "status": o.status,
            "in_doubt": o.status == "sending",
            "attempts": o.attempts,
            "last_reply": o.last_reply,
            "sent_at": o.sent_at,
            "message_id": o.message_id,
        }
        for o in outcomes
    ]
    notes = [{"at": at, "note": text} for at, text in store.notes(run.id)] if store else []
    return CampaignReport(campaign, run.id, totals, dict(sorted(by_domain.items())), recipients, notes)


def _spreadsheet_safe(value: Any) -> Any:
    """Keep a spreadsheet from reading a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def write_report_csv(report: CampaignReport, path: Path) -> None:
    try:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            for recipient in report.recipients:
                writer.writerow([_spreadsheet_safe(recipient[c]) for c in REPORT_COLUMNS])
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", hint="Choose a writable path for --csv.") from None
