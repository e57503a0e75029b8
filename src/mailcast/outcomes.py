"""After a pass: the run's status and reason, the exit code the README's table gives, and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from mailcast.errors import ExitCode
from mailcast.settings import Settings
from mailcast.state import PAUSED_BY_HAND, Run, StateStore
from mailcast.vocabulary import IN_DOUBT, UNDELIVERED, RunStatus, StopReason
from mailcast.warmup import next_midnight

if TYPE_CHECKING:
    from mailcast.planning import SendPlan


def limit_reason(plan: SendPlan) -> str:
    return f"daily limit of {plan.allowance.limit} for {plan.campaign.sender_domain} reached"


@dataclass
class SendOutcome:
    campaign: str
    run: Run | None
    counts: dict[str, int]
    exit_code: ExitCode
    summary: str
    sent_now: int = 0
    failed_now: int = 0
    deferred_now: int = 0
    in_doubt: list[str] = field(default_factory=list)
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The shape of `send --json`."""
        return {
            "campaign": self.campaign,
            "run": self.run.id if self.run else None,
            "exit_code": int(self.exit_code),
            "summary": self.summary,
            "counts": self.counts,
            "sent_now": self.sent_now,
            "failed_now": self.failed_now,
            "deferred_now": self.deferred_now,
            "in_doubt": self.in_doubt,
            "notes": self.notes,
        }


def settle(
    plan: SendPlan,
    store: StateStore,
    run: Run,
    settings: Settings,
    stop: StopReason | None,
    tally: dict[str, int],
    *,
    detail: str | None = None,
    limit_at: datetime | None = None,
) -> SendOutcome:
    """Give the run its status after this pass, and the exit code the README's table asks for.
    `limit_at`: when a claim found the day's allowance used up (the run resumes the midnight after)."""
    now = settings.clock()
    counts = store.counts(run.id)
    verdict = _Verdict(plan, store, counts, stop, detail, now, settings.zone, limit_at)
    status, reason, resume_at, code = verdict.of(store.get_run(run.id))
    if not store.set_run_status(run.id, status, now=now, reason=reason, resume_at=resume_at, unless_stopped=True):
        # a cancel or a pause by hand came in meanwhile: it stands, and is what is reported
        status, reason, resume_at, code = verdict.of(store.get_run(run.id))
    run = store.get_run(run.id)
    undelivered = sum(counts[s] for s in UNDELIVERED)

    parts = [f"{tally.get('sent', 0)} sent"]
    if tally.get("failed"):
        parts.append(f"{tally['failed']} failed")
    if tally.get("deferred"):
        parts.append(f"{tally['deferred']} deferred")
    if tally.get("in_doubt"):
        parts.append(f"{tally['in_doubt']} in doubt (connection lost before the reply)")
    if tally.get("returned"):
        parts.append(f"{tally['returned']} rejected alike and put back")
    summary = f"Run {run.id} of {plan.campaign.name}: {', '.join(parts)} now; {counts['sent']} of {sum(counts.values())} sent in all."
    if status == "completed":
        summary += " Completed."
        if undelivered:
            summary += f" Not delivered: {counts['failed']} failed, {counts['skipped']} skipped, {counts['suppressed']} suppressed (mailcast report shows who and why)."
    else:
        left = counts["pending"] + counts["deferred"]
        summary += f" {status.capitalize()}: {reason}."
        if left and resume_at is not None:
            summary += f" {left} left; they go from {resume_at.astimezone(settings.zone):%Y-%m-%d %H:%M} on (send again or run-due)."
        elif left and status == "paused" and not run.paused_by_hand:
            summary += f" {left} left; send or run-due continues (mailcast pause holds the run)."
        if counts[IN_DOUBT] and "in doubt" not in summary:
            summary += f" {counts['sending']} in doubt wait for you (mailcast send --resend-in-doubt)."
    return SendOutcome(
        plan.campaign.name,
        run,
        counts,
        code,
        summary,
        sent_now=tally.get("sent", 0),
        failed_now=tally.get("failed", 0),
        deferred_now=tally.get("deferred", 0),
        in_doubt=[o.email for o in store.in_doubt(run.id)],
        notes=plan.notes,
    )


@dataclass
class _Verdict:
    """The run's status, reason, resume time and exit code after a pass."""

    plan: SendPlan
    store: StateStore
    counts: dict[str, int]
    stop: StopReason | None
    detail: str | None  # the server's reply when it rejected everyone alike; the row that could not be built
    now: datetime
    zone: tzinfo
    limit_at: datetime | None = None

    def of(self, current: Run) -> tuple[RunStatus, str | None, datetime | None, ExitCode]:
        counts, stop = self.counts, self.stop
        if current.status == "cancelled":
            return "cancelled", current.reason, None, ExitCode.UNDELIVERED
        if current.paused_by_hand:
            return "paused", PAUSED_BY_HAND, None, ExitCode.TEMPFAIL
        if stop == "limit":  # the midnight after the claim that found the limit, even if the pass ended past it
            resume = next_midnight(self.limit_at or self.now, self.zone)
            return "paused", limit_reason(self.plan), resume, ExitCode.TEMPFAIL
        if stop == "error":
            return "failed", "stopped by an error", None, ExitCode.TEMPFAIL
        if stop == "unbuildable":
            reason = f"{self.detail}, then send again (the row was put back)"
            return "paused", reason, None, ExitCode.DATA
        if stop == "rejections":
            reason = (
                f"the server rejected {self.plan.campaign.limits.max_rejections_in_a_row} recipients in a row "
                f"(last: {self.detail}); that is the server, not the addresses, so they were put back: not "
                "suppressed, not counted against warm-up. Fix the server or its settings (relaying, recipient "
                "table), then send again"
            )
            return "paused", reason, None, ExitCode.UNAVAILABLE
        if counts["pending"]:
            reason = "stopped after --limit" if stop == "limit-option" else "interrupted"
            return "paused", reason, None, ExitCode.TEMPFAIL
        if counts["deferred"]:
            reason = f"{counts['deferred']} deferred after temporary failures"
            return "paused", reason, self.store.next_retry(current.id), ExitCode.TEMPFAIL
        if counts[IN_DOUBT]:
            reason = f"{counts['sending']} in doubt: check whether they arrived, then send again with --resend-in-doubt"
            return "paused", reason, None, ExitCode.TEMPFAIL
        undelivered = sum(counts[s] for s in UNDELIVERED)
        return "completed", None, None, ExitCode.UNDELIVERED if undelivered else ExitCode.OK
