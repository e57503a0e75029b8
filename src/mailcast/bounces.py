"""`mailcast bounces import`: reports read back from a mailbox, matched to whom they are about.

Each message of the source is read by feedback.py (a delivery status notification, a
complaint, an unsubscribe mail, or nothing of ours). A report is matched to the run and
recipient it is about by the VERP tag of the address it was sent to, else by the original
Message-ID it quotes, else by the failed address among the recipients mailcast sent to. Its
effects and the report's own id are written in one transaction, so a mailbox imported twice,
or again after an import was killed midway, ends in the same state.

Effects: a hard bounce makes the recipient `bounced`, suppresses the address and counts as a
rejection on the day the message was sent (warm-up steps back as for a refusal at RCPT); a
complaint does the same with `complained`; a soft bounce is noted on the recipient, and three
of one address in 30 days suppress it for 30 days; an unsubscribe mail suppresses its sender.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from mailcast.addresses import check_address
from mailcast.feedback import Report, Verdict, read_report, verp_tag
from mailcast.mailbox_sources import MailSource
from mailcast.state import FeedbackChange, SentTo, StateStore
from mailcast.vocabulary import RecipientStatus
from mailcast.warmup import local_day

SOFT_WINDOW = timedelta(days=30)
SOFT_LIMIT = 3  # soft bounces of one address within SOFT_WINDOW that suppress it, for SOFT_WINDOW
KINDS = ("hard", "soft", "complaints", "unsubscribes", "unmatched", "already seen")


@dataclass
class ImportSummary:
    """What an import found and changed (or, with --dry-run, would change)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    changes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # entries of the source that are not messages
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": {k.replace(" ", "_"): v for k, v in self.counts.items()},
            "changes": self.changes,
            "skipped": self.skipped,
        }


def import_feedback(
    source: MailSource,
    store: StateStore,
    *,
    now: datetime,
    zone: tzinfo,
    dry_run: bool = False,
    progress: Callable[[], None] | None = None,
) -> ImportSummary:
    """Read every message of the source and apply what it reports; nothing is deleted from it."""
    bounce_addresses, unsubscribe_addresses = store.feedback_addresses()
    summary = ImportSummary(dry_run=dry_run)
    reader = _Reader(store, bounce_addresses, now, zone)
    for message in source.messages():
        report = read_report(message.data, unsubscribe_addresses=frozenset(unsubscribe_addresses))
        if store.seen_feedback(report.report_id):
            summary.counts["already seen"] += 1
        else:
            changes = reader.changes(report, summary)
            if not dry_run:
                store.apply_feedback(report.report_id, report.kind, changes, now=now)
        if not dry_run:
            source.done(message)
        if progress is not None:
            progress()
    summary.skipped = list(source.skipped)
    return summary


@dataclass
class _Reader:
    """Turns one report into the changes it makes, counting them in the summary."""

    store: StateStore
    bounce_addresses: Iterable[str]
    now: datetime
    zone: tzinfo

    def changes(self, report: Report, summary: ImportSummary) -> list[FeedbackChange]:
        changes = []
        for verdict in report.verdicts:
            change = self._change(report, verdict)
            if change is None:
                continue
            changes.append(change)
            kind = {"hard": "hard", "soft": "soft", "complaint": "complaints", "unsubscribe": "unsubscribes"}
            summary.counts[kind[verdict.kind]] += 1
            summary.changes.append(_describe(report, verdict, change))
        if not changes:
            summary.counts["unmatched"] += 1
        return changes

    def _change(self, report: Report, verdict: Verdict) -> FeedbackChange | None:
        if verdict.kind == "unsubscribe":
            return _unsubscribe(verdict)
        sent = self._match(report, verdict)
        if sent is None:
            return None  # about an address mailcast never sent to: unmatched
        if verdict.kind == "soft":
            return self._soft(sent, verdict)
        status: RecipientStatus = "bounced" if verdict.kind == "hard" else "complained"
        reason = f"bounced: {verdict.diagnostic}" if verdict.kind == "hard" else "complaint"
        first_time = sent.status in ("sent", "sending")
        return FeedbackChange(
            key=sent.key,
            email=sent.email,
            run_id=sent.run_id,
            status=status if first_time else None,
            reply=f"{status}: {_code(verdict)}{verdict.diagnostic}" if first_time else None,
            rejected_on=self._day_sent(sent) if first_time else None,
            suppress_reason=reason,
        )

    def _match(self, report: Report, verdict: Verdict) -> SentTo | None:
        """By VERP tag, else by the original Message-ID, else by the failed address."""
        for address in [*report.envelope_to, *report.original_return_paths]:
            for bounce_address in self.bounce_addresses:
                tag = verp_tag(address, bounce_address)
                found = self.store.find_sent("tag", tag) if tag else None
                # the tag is the whole message's: a bounce about its Cc or Bcc is not about its To
                if found is not None and (not verdict.address or verdict.address == found.key):
                    return found
        for message_id in report.original_message_ids:
            found = self.store.find_sent("message_id", message_id)
            if found is not None and (not verdict.address or verdict.address == found.key):
                return found
        return self.store.find_sent("key", verdict.address.lower()) if verdict.address else None

    def _soft(self, sent: SentTo, verdict: Verdict) -> FeedbackChange:
        earlier = self.store.soft_bounces_since(sent.key, self.now - SOFT_WINDOW, besides_run=sent.run_id)
        suppress = earlier + 1 >= SOFT_LIMIT
        return FeedbackChange(
            key=sent.key,
            email=sent.email,
            run_id=sent.run_id,
            reply=f"soft bounce: {_code(verdict)}{verdict.diagnostic}" if sent.status == "sent" else None,
            soft_status=verdict.status or "4.0.0",
            suppress_reason=f"{SOFT_LIMIT} soft bounces in {SOFT_WINDOW.days} days" if suppress else None,
            suppress_until=self.now + SOFT_WINDOW if suppress else None,
        )

    def _day_sent(self, sent: SentTo) -> tuple[str, Any] | None:
        if not sent.sent_at:
            return None
        return sent.sender_domain, local_day(datetime.fromisoformat(sent.sent_at), self.zone)


def _unsubscribe(verdict: Verdict) -> FeedbackChange | None:
    try:
        address = check_address(verdict.address)
    except ValueError:
        return None
    return FeedbackChange(key=address.lower(), email=address, suppress_reason="unsubscribed")


def _code(verdict: Verdict) -> str:
    return f"{verdict.status} " if verdict.status else ""


def _describe(report: Report, verdict: Verdict, change: FeedbackChange) -> dict[str, Any]:
    return {
        "report": report.report_id,
        "kind": verdict.kind,
        "email": change.email,
        "run": change.run_id,
        "status": verdict.status,
        "diagnostic": verdict.diagnostic,
        "new_status": change.status,
        "suppressed": change.suppress_reason is not None,
    }
