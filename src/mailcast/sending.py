"""The send loop: claim a recipient, compose, hand over, record; pause at the day's limit.

`send_campaign` is what `mailcast send` and `mailcast run-due` call. The state store decides
who is next (one durable transaction per claim, checked against the sender domain's
allowance). For `connections: N`, N worker threads each own one persistent connection and run
a message's whole cycle themselves, taking turns at the state file.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol

from mailcast.campaign import Campaign, SmtpTransport
from mailcast.checks import CheckReport, check_campaign
from mailcast.compose import Composer
from mailcast.errors import ConfigError, ExitCode, MailcastError, ProblemsError, UsageError
from mailcast.integrity import check_name, check_state_file, content_change, fingerprint, read_marker, write_marker
from mailcast.lock import CampaignLock
from mailcast.message import HeaderInjectionError
from mailcast.state import PAUSED_BY_HAND, Claimed, NewRecipient, Run, StateStore
from mailcast.templates import Rendered, TemplateRenderError, TemplateSet, check_variables, load_templates
from mailcast.transports import Connection, Delivery, open_connection
from mailcast.warmup import Allowance, DayRecord, daily_allowance, local_day, next_midnight

RETRY_DEFERRED_AFTER = timedelta(minutes=10)
UNDELIVERED = ("failed", "skipped", "suppressed")


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


class StopRequest:
    """A flag a signal handler sets and the workers read. Unlike threading.Event it takes no lock,
    so a second signal arriving while the first handler runs cannot deadlock it."""

    def __init__(self) -> None:
        self._requested = False

    def set(self) -> None:
        self._requested = True

    def is_set(self) -> bool:
        return self._requested


@dataclass
class Settings:
    """What the CLI reads from the environment once and hands to the core."""

    clock: Callable[[], datetime]
    zone: tzinfo
    env: Mapping[str, str] = field(default_factory=dict)  # where transport.password_env is looked up
    ssl_context: ssl.SSLContext | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    # Set on Ctrl-C, SIGTERM or SIGHUP: messages in flight are finished and recorded, nothing new starts
    stop: StopRequest = field(default_factory=lambda: StopRequest())


class SendProgress(Protocol):
    def started(self, campaign: str, run: Run, total: int, done: int, to_send: int) -> None: ...
    def delivered(self, email: str, delivery: Delivery) -> None: ...


@dataclass
class SendPlan:
    campaign: Campaign
    run: Run | None  # the unfinished run to continue; None when a new one starts
    to_send: int
    in_doubt: int
    allowance: Allowance
    used_today: int
    destination: str
    check: CheckReport | None = None
    templates: TemplateSet | None = None
    new_recipients: list[NewRecipient] = field(default_factory=list)
    blocked: str | None = None  # why nothing will be sent now
    blocked_code: ExitCode = ExitCode.OK
    resume_at: datetime | None = None
    content_change: str | None = None  # said before continuing a run whose content changed
    notes: list[str] = field(default_factory=list)  # said alongside the outcome

    @property
    def remaining_today(self) -> int | None:
        limit = self.allowance.limit
        return None if limit is None else max(limit - self.used_today, 0)


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
            hint=f"Set it before sending, for example: export {name}='…' (mailcast never reads passwords from YAML).",
        )
    return password


def allowance_today(store: StateStore | None, campaign: Campaign, now: datetime, zone: tzinfo) -> tuple[Allowance, int]:
    """Today's allowance for the campaign's sender domain and how much of it is used."""
    today = local_day(now, zone)
    days = store.domain_days(campaign.sender_domain) if store else []
    history = [DayRecord(d.day, d.sent, d.rejected) for d in days]
    used = next((d.claimed for d in days if d.day == today), 0)
    return daily_allowance(campaign.limits, history, today), used


def send_campaign(
    campaign: Campaign,
    store: StateStore | None,
    settings: Settings,
    options: SendOptions,
    *,
    progress: SendProgress | None = None,
    confirm: Callable[[SendPlan], bool] = lambda plan: True,
) -> SendOutcome:
    """Start or continue the campaign's run. `store` is None only for a dry run with no state file yet."""
    if options.dry_run:
        check_state_file(campaign, store, new_state=options.new_state)
        if store is not None:
            check_name(campaign, store, move=False)
        plan = plan_send(campaign, store, settings, options)
        return _dry_run_outcome(plan, options)
    assert store is not None
    password = password_for(campaign, settings.env)  # a missing variable stops us before anything changes
    with CampaignLock(store.locks_folder, campaign.name):
        check_state_file(campaign, store, new_state=options.new_state)
        check_name(campaign, store)
        plan = plan_send(campaign, store, settings, options)
        if plan.blocked is not None and plan.resume_at is None:
            return SendOutcome(
                campaign.name,
                plan.run,
                store.counts(plan.run.id) if plan.run else {},
                plan.blocked_code,
                plan.blocked,
            )
        if plan.run is not None and plan.to_send == 0:  # only rows in doubt are left: no need to connect
            return _settle(plan, store, plan.run, settings, None, {})
        # Asked before a new run is recorded or mail goes; not when a run only goes on waiting.
        if (plan.run is None or plan.resume_at is None) and not confirm(plan):
            return SendOutcome(campaign.name, plan.run, {}, ExitCode.OK, "Nothing sent: not confirmed.")
        if settings.stop.is_set():
            return SendOutcome(campaign.name, plan.run, {}, ExitCode.TEMPFAIL, "Stopped before anything was sent.")
        if plan.resume_at is not None:  # the day's allowance is used up: the run waits for midnight, recorded
            run = plan.run or _start_run(store, plan, options, settings.clock())
            store.set_run_status(
                run.id,
                "paused",
                now=settings.clock(),
                reason=_limit_reason(plan),
                resume_at=plan.resume_at,
                unless_stopped=True,
            )
            return SendOutcome(
                campaign.name,
                store.get_run(run.id),
                store.counts(run.id),
                plan.blocked_code,
                f"{plan.blocked} Run {run.id} waits; send or run-due continues it then.",
                notes=plan.notes,
            )
        return _execute(plan, store, settings, options, progress, password)


def plan_send(campaign: Campaign, store: StateStore | None, settings: Settings, options: SendOptions) -> SendPlan:
    """Decide what a send would do now, without changing anything."""
    now = settings.clock()
    allowance, used = allowance_today(store, campaign, now, settings.zone)
    latest = store.latest_run(campaign.name) if store else None
    plan = SendPlan(campaign, None, 0, 0, allowance, used, destination_of(campaign))

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
        plan.in_doubt = counts["sending"]
        plan.to_send = counts["pending"] + counts["deferred"] + (counts["sending"] if options.resend_in_doubt else 0)
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
            status, reply = ("suppressed", f"suppressed: {reason}") if reason else ("pending", None)
            new.append(NewRecipient(recipient.row, recipient.email, recipient.key, recipient.values, status, reply))
        for row, email, why in report.skipped:
            new.append(NewRecipient(row, email, f"skipped:{row}", {}, "skipped", why))
        plan.to_send = sum(1 for r in new if r.status == "pending")

    remaining = plan.remaining_today
    if remaining == 0 and plan.to_send:
        resume = next_midnight(now, settings.zone)
        plan.resume_at = resume
        plan.blocked = (
            f"The daily limit of {allowance.limit} for {campaign.sender_domain} is used up; "
            f"{plan.to_send} recipients wait until {resume.astimezone(settings.zone):%Y-%m-%d %H:%M}."
        )
        plan.blocked_code = ExitCode.TEMPFAIL
    return plan


def _start_run(store: StateStore, plan: SendPlan, options: SendOptions, now: datetime) -> Run:
    """Record a new run with its snapshot of recipients, and beside the campaign which state file holds it."""
    campaign = plan.campaign
    run = store.create_run(
        campaign=campaign.name,
        campaign_file=str(campaign.path),
        type=campaign.kind if options.occurrence is not None else "batch",
        occurrence=options.occurrence,
        sender_domain=campaign.sender_domain,
        now=now,
        recipients=plan.new_recipients,
        fingerprint=fingerprint(campaign),
    )
    _keep_marker(store, plan)
    return run


def _keep_marker(store: StateStore, plan: SendPlan) -> None:
    marker = read_marker(plan.campaign)
    if marker is None or marker.state_id != store.state_id:
        note = write_marker(plan.campaign, store)
        if note:
            plan.notes.append(note)


def _continue_run(store: StateStore, plan: SendPlan, run: Run, now: datetime) -> None:
    """A continued run: note a change of content (report shows it), and keep the marker."""
    if plan.content_change is not None:
        store.note(run.id, plan.content_change, now=now, fingerprint=fingerprint(plan.campaign))
        plan.notes.append(plan.content_change)
    elif run.fingerprint is None:  # a run from before fingerprints: from now on, changes are told
        store.set_fingerprint(run.id, fingerprint(plan.campaign))
    _keep_marker(store, plan)


def _limit_reason(plan: SendPlan) -> str:
    return f"daily limit of {plan.allowance.limit} for {plan.campaign.sender_domain} reached"


def _dry_run_outcome(plan: SendPlan, options: SendOptions) -> SendOutcome:
    if plan.blocked and plan.resume_at is None:
        return SendOutcome(plan.campaign.name, plan.run, {}, ExitCode.OK, f"Dry run: {plan.blocked}", dry_run=True)
    remaining = plan.remaining_today
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


@dataclass
class _Job:
    claimed: Claimed
    message_id: str
    data: bytes
    day: date  # the day the claim was counted on; its outcome is counted on the same day


def _execute(
    plan: SendPlan,
    store: StateStore,
    settings: Settings,
    options: SendOptions,
    progress: SendProgress | None,
    password: str | None,
) -> SendOutcome:
    campaign = plan.campaign
    assert plan.templates is not None
    composer = Composer(campaign, plan.templates)
    transport = campaign.transport
    workers = transport.connections if isinstance(transport, SmtpTransport) else 1
    connections: list[Connection] = []
    try:
        for _ in range(workers):
            if settings.stop.is_set():
                break
            connections.append(
                open_connection(
                    transport,
                    folder=campaign.folder,
                    password=password,
                    ssl_context=settings.ssl_context,
                    sleep=settings.sleep,
                    should_stop=settings.stop.is_set,
                )
            )
    except BaseException:  # nothing was sent: the run, if any, stays as it was
        _close_all(connections)
        raise
    # Nothing is recorded or changed when a stop came while connecting, or a pause or cancel meanwhile.
    if settings.stop.is_set():
        _close_all(connections)
        return SendOutcome(campaign.name, plan.run, {}, ExitCode.TEMPFAIL, "Stopped before anything was sent.")
    now = settings.clock()
    store.remember_limits(campaign.sender_domain, campaign.limits.model_dump(), now=now)
    run = plan.run
    if run is None:
        run = _start_run(store, plan, options, now)
    elif store.set_run_status(run.id, "sending", now=now, unless_stopped=True):
        run = store.get_run(run.id)
        _continue_run(store, plan, run, now)
        store.requeue(run.id, statuses=("deferred",), due_by=now if options.only_due_retries else None)
        if options.resend_in_doubt:
            store.requeue(run.id, statuses=("sending",))
    else:
        _close_all(connections)
        return _settle(plan, store, run, settings, None, {})

    counts = store.counts(run.id)
    if progress is not None:
        done = counts["sent"] + counts["failed"] + counts["skipped"] + counts["suppressed"]
        this_time = [counts["pending"], plan.remaining_today, options.limit]
        with contextlib.suppress(OSError):  # output may have nowhere to go; sending goes on
            progress.started(campaign.name, run, sum(counts.values()), done, min(n for n in this_time if n is not None))

    # A new run was rendered row by row when it was checked a moment ago: use that rendering.
    checked = plan.check.rendered if plan.check is not None else {}
    one_pass = _Pass(store, run, composer, checked, settings, options, plan, progress, workers=len(connections))
    threads = [threading.Thread(target=one_pass.work, args=(c,), daemon=True) for c in connections]
    for thread in threads:
        thread.start()
    # Wait on an event, not in Thread.join: a signal interrupting join can make Python (before
    # 3.13) take a running thread for finished. Ctrl-C and SIGTERM only set settings.stop.
    one_pass.finished.wait()
    for thread in threads:
        thread.join()

    plan.allowance = one_pass.allowance  # the day's, if the pass went past midnight
    outcome = _settle(plan, store, run, settings, one_pass.stop, one_pass.tally, detail=one_pass.rejected_alike)
    error = one_pass.error
    if isinstance(error, MailcastError):
        store.set_run_status(run.id, "failed", now=settings.clock(), reason=error.message, unless_stopped=True)
    if error is not None:
        raise error
    return outcome


def _close_all(connections: list[Connection]) -> None:
    for connection in connections:
        with contextlib.suppress(Exception):  # closing a connection that sent nothing loses nothing
            connection.close()


class _Pass:
    """One pass over a run. Each worker thread owns one connection and runs the whole cycle for a
    message (claim, compose, hand over, record), taking turns at the state file under one lock,
    so no message changes threads on its way; the main thread only waits (and takes Ctrl-C)."""

    def __init__(
        self,
        store: StateStore,
        run: Run,
        composer: Composer,
        checked: dict[int, Rendered],
        settings: Settings,
        options: SendOptions,
        plan: SendPlan,
        progress: SendProgress | None,
        *,
        workers: int,
    ) -> None:
        self.store, self.run, self.composer, self.checked = store, run, composer, checked
        self.settings, self.options, self.progress = settings, options, progress
        self.campaign = plan.campaign
        self.sender = plan.campaign.sender_address
        self.rate = plan.campaign.limits.rate
        self.day: date | None = None  # the day whose allowance applies; set at the first claim
        self.allowance = plan.allowance
        self.lock = threading.Lock()
        self.working = workers
        self.finished = threading.Event()  # set when the last worker is done
        self.tally = {"sent": 0, "failed": 0, "deferred": 0, "unknown": 0, "returned": 0}
        self.stop: str | None = None
        self.error: BaseException | None = None
        self.started = 0  # messages claimed in this pass
        self.next_turn = settings.monotonic()  # the rate cap's next free moment
        self.max_streak = plan.campaign.limits.max_rejections_in_a_row
        self.streak: list[tuple[str, date, bool]] = []  # permanent rejections in a row: (key, day, suppressed)
        self.rejected_alike: str | None = None  # the reply, once a streak stopped the run

    def _watch_rejections(self, job: _Job, delivery: Delivery) -> None:
        """A server that rejects everyone alike is not that many bad addresses. After a streak of
        permanent rejections, the run stops and the streak's rows go back to pending, off the
        suppression list and out of warm-up's counts; so does any rejection still in flight."""
        if delivery.status == "sent":
            self.streak.clear()
        if delivery.status != "failed":
            return
        self.streak.append((job.claimed.key, job.day, delivery.suppress))
        if self.rejected_alike is None and len(self.streak) < self.max_streak:
            return
        self.store.take_back_rejections(self.run, self.streak)
        self.tally["failed"] -= len(self.streak)
        self.tally["returned"] += len(self.streak)
        self.streak.clear()
        if self.rejected_alike is None:
            self.rejected_alike = delivery.reply
            if self.stop != "error":
                self.stop = "rejections"

    def work(self, connection: Connection) -> None:
        try:
            while (job := self._next()) is not None:
                try:
                    delivery = connection.send(self.sender, job.claimed.email, job.data)
                except BaseException:  # nothing was accepted: the recipient goes back to pending
                    with self.lock:
                        self.store.release_claim(self.run, job.claimed.key, day=job.day)
                    raise
                with self.lock:
                    _record(self.store, self.run, job, delivery, self.settings.clock())
                    self.tally[delivery.status] += 1
                    self._watch_rejections(job, delivery)
                    self._show(job.claimed.email, delivery)
        except BaseException as exc:  # the run stops; the main thread raises the first error
            with self.lock:
                self.error = self.error or exc
                self.stop = self.stop or "error"
        finally:
            with contextlib.suppress(Exception):  # nothing is left to lose: every message is recorded
                connection.close()
            with self.lock:
                self.working -= 1
                if self.working == 0:
                    self.finished.set()

    def _show(self, email: str, delivery: Delivery) -> None:
        """Progress output; if its terminal or pipe has gone away, sending goes on without it."""
        if self.progress is None:
            return
        try:
            self.progress.delivered(email, delivery)
        except OSError:
            self.progress = None

    def _wait_for_turn(self) -> None:
        """With `limits.rate`, turns are 1/rate seconds apart, and time lost in a stall is not made
        up afterwards: no burst above the rate ever follows a slow server."""
        if not self.rate:
            return
        with self.lock:
            turn = max(self.next_turn, self.settings.monotonic())
            self.next_turn = turn + 1 / self.rate
        wait = turn - self.settings.monotonic()
        if wait > 0:
            self.settings.sleep(wait)

    def _next(self) -> _Job | None:
        """Claim and compose the next message, or None when this pass is over."""
        self._wait_for_turn()
        store, run, options = self.store, self.run, self.options
        with self.lock:
            while self.stop is None:
                if self.settings.stop.is_set():
                    self.stop = "interrupted"
                    break
                if options.limit is not None and self.started >= options.limit:
                    self.stop = "limit-option"
                    break
                moment = self.settings.clock()
                today = local_day(moment, self.settings.zone)
                if today != self.day:  # the first claim, or past midnight: this day's allowance applies
                    self.day = today
                    self.allowance = allowance_today(store, self.campaign, moment, self.settings.zone)[0]
                claimed = store.claim(run, day=today, limit=self.allowance.limit, now=moment)
                if isinstance(claimed, str):
                    self.stop = claimed
                    break
                self.started += 1
                try:
                    composed = self.composer.compose(
                        values=claimed.values,
                        email=claimed.email,
                        run_token=run.token,
                        key=claimed.key,
                        date=moment,
                        rendered=self.checked.get(claimed.row),
                    )
                except (TemplateRenderError, HeaderInjectionError) as exc:
                    store.record(
                        run,
                        claimed.key,
                        status="failed",
                        reply=f"not sent: {exc.message}",
                        message_id="",
                        day=today,
                        now=moment,
                        counted=False,
                    )
                    self.tally["failed"] += 1
                    continue
                except BaseException:  # not built, so not sent
                    store.release_claim(run, claimed.key, day=today)
                    raise
                return _Job(claimed, composed.message_id, composed.data, today)
        return None


def _record(store: StateStore, run: Run, job: _Job, delivery: Delivery, moment: datetime) -> None:
    retry_at = moment + RETRY_DEFERRED_AFTER if delivery.status == "deferred" else None
    store.record(
        run,
        job.claimed.key,
        status="sending" if delivery.status == "unknown" else delivery.status,  # unknown: stays in doubt
        reply=delivery.reply,
        message_id=job.message_id,
        day=job.day,
        now=moment,
        retry_at=retry_at,
        suppress_reason=f"bounced: {delivery.reply}" if delivery.suppress else None,
        email=job.claimed.email,
    )


def _settle(
    plan: SendPlan,
    store: StateStore,
    run: Run,
    settings: Settings,
    stop: str | None,
    tally: dict[str, int],
    *,
    detail: str | None = None,
) -> SendOutcome:
    """Give the run its status after this pass, and the exit code the README's table asks for."""
    now = settings.clock()
    counts = store.counts(run.id)
    verdict = _Verdict(plan, store, counts, stop, detail, now, settings.zone)
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
    if tally.get("unknown"):
        parts.append(f"{tally['unknown']} in doubt (connection lost before the reply)")
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
        if counts["sending"] and "in doubt" not in summary:
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
    stop: str | None
    detail: str | None  # the server's reply when it rejected everyone alike
    now: datetime
    zone: tzinfo

    def of(self, current: Run) -> tuple[str, str | None, datetime | None, ExitCode]:
        counts, stop = self.counts, self.stop
        if current.status == "cancelled":
            return "cancelled", current.reason, None, ExitCode.UNDELIVERED
        if current.paused_by_hand:
            return "paused", PAUSED_BY_HAND, None, ExitCode.TEMPFAIL
        if stop == "limit":
            return "paused", _limit_reason(self.plan), next_midnight(self.now, self.zone), ExitCode.TEMPFAIL
        if stop == "error":
            return "failed", "stopped by an error", None, ExitCode.TEMPFAIL
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
        if counts["sending"]:
            reason = f"{counts['sending']} in doubt: check whether they arrived, then send again with --resend-in-doubt"
            return "paused", reason, None, ExitCode.TEMPFAIL
        undelivered = sum(counts[s] for s in UNDELIVERED)
        return "completed", None, None, ExitCode.UNDELIVERED if undelivered else ExitCode.OK


MAX_TEST_ADDRESSES = 20


def send_test(
    campaign: Campaign, settings: Settings, *, to: list[str], row: int | None = None
) -> list[tuple[str, Delivery]]:
    """Send one row's message to a few test addresses; nothing is recorded as campaign progress."""
    from mailcast.campaign import check_address
    from mailcast.preview import PREVIEW_TOKEN, checked_composer, pick_recipient

    if not 1 <= len(to) <= MAX_TEST_ADDRESSES:
        raise UsageError(
            f"give between 1 and {MAX_TEST_ADDRESSES} test addresses (got {len(to)})",
            hint="Use --to once per address.",
        )
    problems = []
    for address in to:
        try:
            check_address(address)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems), hint="Fix the --to addresses.")
    now = settings.clock()
    report, composer = checked_composer(campaign)
    recipient = pick_recipient(report, row=row, email=None)
    connection = open_connection(
        campaign.transport,
        folder=campaign.folder,
        password=password_for(campaign, settings.env),
        ssl_context=settings.ssl_context,
        sleep=settings.sleep,
    )
    results = []
    try:
        for address in to:
            composed = composer.compose(
                values=recipient.values,
                email=recipient.email,
                run_token=f"{PREVIEW_TOKEN}:{address}",
                key=recipient.key,
                date=now,
                to=address,
                test=True,  # a Message-ID of its own, unsubscribe links that go nowhere
            )
            results.append((address, connection.send(campaign.sender_address, address, composed.data)))
    finally:
        connection.close()
    return results
