"""Planning a send: what a send would do now (continue or start a run, how many, why not), without
changing anything; and what a dry run reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from mailcast.campaign import Campaign, SmtpTransport
from mailcast.checks import CheckReport, check_campaign
from mailcast.errors import ConfigError, ExitCode, ProblemsError, UsageError
from mailcast.integrity import content_change
from mailcast.outcomes import SendOutcome
from mailcast.settings import Settings
from mailcast.state import NewRecipient, Run, StateStore
from mailcast.templates import TemplateSet, check_variables, load_templates
from mailcast.vocabulary import IN_DOUBT
from mailcast.warmup import Allowance, daily_allowance, local_day, next_midnight


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    limit: int | None = None
    resend_in_doubt: bool = False
    again: bool = False
    # run-due: the occurrence to start (scheduled/recurring), and whether deferred rows wait for their retry time
    occurrence: datetime | None = None
    only_due_retries: bool = False
    new_state: bool = False  # start over in this state file although the campaign's marker names another


@dataclass
class SendPlan:
    campaign: Campaign
    run: Run | None  # the unfinished run to continue; None when a new one starts
    to_send: int
    in_doubt: int
    allowance: Allowance  # today's, with how much of it is used
    destination: str
    check: CheckReport | None = None
    templates: TemplateSet | None = None
    new_recipients: list[NewRecipient] = field(default_factory=list)
    blocked: str | None = None  # why nothing will be sent now
    blocked_code: ExitCode = ExitCode.OK
    resume_at: datetime | None = None
    content_change: str | None = None  # said before continuing a run whose content changed
    notes: list[str] = field(default_factory=list)  # said alongside the outcome


def destination_of(campaign: Campaign) -> str:
    transport = campaign.transport
    if isinstance(transport, SmtpTransport):
        return f"{transport.host}:{transport.effective_port} ({transport.security})"
    return f"Maildir {campaign.resolve(transport.path)}"


def password_for(campaign: Campaign, env: Mapping[str, str]) -> str | None:
    """The SMTP password from the variable `transport.password_env` names (never from YAML)."""
    transport = campaign.transport
    if not isinstance(transport, SmtpTransport) or not transport.password_env:
        return None
    name = transport.password_env
    password = env.get(name)
    if not password:
        raise ConfigError(
            f"transport.password_env names {name}, but that environment variable is not set",
            hint=f"Set it before sending, for example: export {name}='…' (in the crontab for run-due); at a "
            "terminal, send and test ask for the password instead. mailcast never reads passwords from YAML.",
        )
    return password


def allowance_today(store: StateStore | None, campaign: Campaign, now: datetime, zone: tzinfo) -> Allowance:
    """Today's allowance for the campaign's sender domain, with how much of it is used."""
    days = store.domain_days(campaign.sender_domain) if store else []
    return daily_allowance(campaign.limits, days, local_day(now, zone))


def plan_send(campaign: Campaign, store: StateStore | None, settings: Settings, options: SendOptions) -> SendPlan:
    """Decide what a send would do now, without changing anything."""
    now = settings.clock()
    allowance = allowance_today(store, campaign, now, settings.zone)
    latest = store.latest_run(campaign.name) if store else None
    plan = SendPlan(campaign, None, 0, 0, allowance, destination_of(campaign))

    if latest is not None and not latest.finished and options.again:
        raise UsageError(
            f"run {latest.id} of {campaign.name} is not finished ({latest.status}); --again starts a new run only "
            "after the last one finished",
            hint=f"Continue it with mailcast send, or end it with mailcast cancel {campaign.path} first.",
        )
    if latest is not None and not latest.finished:
        plan.run = latest
        if latest.paused_by_hand:
            plan.blocked = f"Run {latest.id} of {campaign.name} is paused by hand; nothing sent."
            plan.blocked_code = ExitCode.TEMPFAIL
            plan.blocked += f" Resume it with: mailcast resume {campaign.path}"
            return plan
        assert store is not None
        templates, problems = load_templates(campaign)
        errors, _ = check_variables(
            templates, store.columns(latest.id), csv_file=campaign.recipients, email_column=campaign.email_column
        )
        problems.extend(errors)
        if problems:
            raise ProblemsError(problems=problems)
        plan.templates = templates
        counts = store.counts(latest.id)
        plan.content_change = content_change(latest, campaign, counts)
        plan.in_doubt = counts[IN_DOUBT]
        plan.to_send = counts["pending"] + counts["deferred"] + (counts[IN_DOUBT] if options.resend_in_doubt else 0)
    else:
        if latest is not None and latest.finished and not options.again:
            plan.run = latest
            plan.blocked = (
                f"Run {latest.id} of {campaign.name} is already {latest.status}; nothing sent. "
                "To send the campaign again to everyone, use --again."
            )
            return plan
        report = check_campaign(campaign)
        if not report.ok:
            raise ProblemsError(problems=report.errors, warnings=report.warnings)
        plan.check = report
        plan.templates = report.templates
        suppressed = store.suppressed_keys(now=now) if store else {}
        new = plan.new_recipients
        for recipient in report.sendable:
            reason = suppressed.get(recipient.key)
            values = recipient.row, recipient.email, recipient.key, recipient.values
            new.append(
                NewRecipient(*values, "suppressed", f"suppressed: {reason}") if reason else NewRecipient(*values)
            )
        for row, email, why in report.skipped:
            new.append(NewRecipient(row, email, f"skipped:{row}", {}, "skipped", why))
        plan.to_send = sum(1 for r in new if r.status == "pending")

    remaining = allowance.remaining
    if remaining == 0 and plan.to_send:
        resume = next_midnight(now, settings.zone)
        plan.resume_at = resume
        plan.blocked = (
            f"The daily limit of {allowance.limit} for {campaign.sender_domain} is used up; "
            f"{plan.to_send} recipients wait until {resume.astimezone(settings.zone):%Y-%m-%d %H:%M}."
        )
        plan.blocked_code = ExitCode.TEMPFAIL
    return plan


def dry_run_outcome(plan: SendPlan, options: SendOptions) -> SendOutcome:
    if plan.blocked and plan.resume_at is None:
        return SendOutcome(plan.campaign.name, plan.run, {}, ExitCode.OK, f"Dry run: {plan.blocked}", dry_run=True)
    remaining = plan.allowance.remaining
    today = plan.to_send if remaining is None else min(plan.to_send, remaining)
    would = today if options.limit is None else min(today, options.limit)
    parts = [f"Dry run: would send {would} message(s) to {plan.destination}"]
    if would < today:
        parts.append(f"{today - would} wait for the next send (--limit {options.limit})")
    if today < plan.to_send:
        parts.append(f"{plan.to_send - today} wait for the next day's allowance")
    if plan.check is not None:
        skipped = len(plan.check.skipped)
        suppressed = sum(1 for r in plan.new_recipients if r.status == "suppressed")
        if skipped:
            parts.append(f"{skipped} skipped")
        if suppressed:
            parts.append(f"{suppressed} suppressed")
    if plan.in_doubt:
        parts.append(f"{plan.in_doubt} in doubt")
    summary = "; ".join(parts) + "."
    if plan.blocked:
        summary += " " + plan.blocked
    notes = [plan.content_change] if plan.content_change else []
    return SendOutcome(plan.campaign.name, plan.run, {}, ExitCode.OK, summary, dry_run=True, notes=notes)
