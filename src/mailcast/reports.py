"""What the state file says, shaped for people and scripts: the task list, warm-up, outcomes."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailcast.errors import UsageError
from mailcast.lock import CampaignLock
from mailcast.state import StateStore
from mailcast.vocabulary import IN_DOUBT, RECIPIENT_STATUSES
from mailcast.warmup import RememberedLimits, daily_allowance, local_day, next_midnight

if TYPE_CHECKING:
    from mailcast.campaign import Campaign


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
    bounced: int = 0  # of those sent: learnt later from a mailbox (bounces import)
    complained: int = 0

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
        in_doubt = 0 if sending_now else counts[IN_DOUBT]
        pending = counts["pending"] + (counts[IN_DOUBT] if sending_now else 0)
        rows.append(
            RunStatus(
                campaign=run.campaign,
                run=run.id,
                type=run.type,
                status=status,
                reason=reason,
                total=sum(counts.values()),
                sent=counts["sent"] + counts["bounced"] + counts["complained"],
                failed=counts["failed"],
                deferred=counts["deferred"],
                skipped=counts["skipped"],
                suppressed=counts["suppressed"],
                in_doubt=in_doubt,
                pending=pending,
                resume_at=run.resume_at.astimezone(zone).isoformat() if run.resume_at else None,
                occurrence=run.occurrence.astimezone(zone).isoformat() if run.occurrence else None,
                bounced=counts["bounced"],
                complained=counts["complained"],
            )
        )
    return rows + _upcoming(store, campaigns, only=only, now=now, zone=zone)


def _upcoming(
    store: StateStore | None, campaigns: list[Campaign], *, only: str | None, now: datetime, zone: tzinfo
) -> list[RunStatus]:
    """A `scheduled` row for each scheduled or recurring campaign's next occurrence."""
    scheduled = [c for c in campaigns if c.schedule is not None and (not only or c.name == only)]
    if not scheduled:
        return []
    from mailcast.schedule import next_occurrence, schedule_zone  # croniter: only when there is a schedule

    rows = []
    for campaign in scheduled:
        assert campaign.schedule is not None
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
        remembered = RememberedLimits(limits.get("daily"), limits.get("warmup", "standard"))
        allowance = daily_allowance(remembered, store.domain_days(domain), today)
        rows.append(WarmupStatus(domain, allowance.level, allowance.limit, allowance.used, allowance.remaining, resets))
    return rows


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    run: int | None
    totals: dict[str, int]
    by_domain: dict[str, dict[str, int]]
    recipients: list[dict[str, Any]]
    notes: list[dict[str, str]]  # what happened to the run as a whole, such as a change of content

    @property
    def rates(self) -> dict[str, float]:
        """Bounces and complaints as a share of the messages the servers took."""
        taken = self.totals["sent"] + self.totals["bounced"] + self.totals["complained"]
        return {k: round(self.totals[k] / taken, 4) if taken else 0.0 for k in ("bounced", "complained")}

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "run": self.run,
            "totals": self.totals,
            "rates": self.rates,
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
    totals: dict[str, int] = dict.fromkeys(RECIPIENT_STATUSES, 0)
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
            "in_doubt": o.status == IN_DOUBT,
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
