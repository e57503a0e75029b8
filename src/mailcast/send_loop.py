"""The send loop: each worker thread owns one connection and runs a message's whole cycle.

Claim the next recipient (one durable transaction, checked against the sender domain's
allowance), compose its message, hand it to the server, record the reply. Workers take turns
at the state file under one lock, so no message changes threads on its way; the main thread
only waits (and takes Ctrl-C).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from mailcast.compose import Composer
from mailcast.message import HeaderInjectionError
from mailcast.planning import SendOptions, SendPlan, allowance_today
from mailcast.settings import Settings
from mailcast.state import Claimed, Outcome, Run, StateStore
from mailcast.state_file import StateFileGoneError
from mailcast.templates import Rendered, TemplateRenderError
from mailcast.transports import Connection, Delivery
from mailcast.vocabulary import IN_DOUBT, StopReason
from mailcast.warmup import local_day

RETRY_DEFERRED_AFTER = timedelta(minutes=10)
# no message more once one of these came
HALTING: tuple[StopReason, ...] = ("interrupted", "error", "rejections", "unbuildable")


class SendProgress(Protocol):
    def started(self, campaign: str, run: Run, total: int, done: int, to_send: int, *, in_doubt: int) -> None: ...
    def delivered(self, email: str, delivery: Delivery) -> None: ...


@dataclass(slots=True)
class Job:
    claimed: Claimed
    data: bytes
    day: date  # the day the claim was counted on; its outcome is counted on the same day
    cc: tuple[str, ...] = ()  # the message's other envelope recipients
    bcc: tuple[str, ...] = ()

    def noted(self, delivery: Delivery) -> Delivery:
        """The delivery with each Cc or Bcc the server refused noted in its reply; the status stays the
        main recipient's."""
        if not delivery.refused or delivery.status != "sent":
            return delivery
        notes = [
            f"{'cc' if address in self.cc else 'bcc'} {address} refused: {reply}" for address, reply in delivery.refused
        ]
        return dataclasses.replace(delivery, reply="; ".join([delivery.reply, *notes]))


class Pass:
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
        on_claimed: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.store, self.run, self.composer, self.checked = store, run, composer, checked
        self.settings, self.options, self.progress = settings, options, progress
        self.campaign = plan.campaign
        self.sender = plan.campaign.sender_address
        self.bounce_address = run.bounce_address  # the run keeps the one it started with
        self.rate = plan.campaign.limits.rate
        self.day: date | None = None  # the day whose allowance applies; set at the first claim
        self.allowance = plan.allowance
        self.lock = threading.Lock()
        self.working = workers
        self.finished = threading.Event()  # set when the last worker is done
        self.tally = {"sent": 0, "failed": 0, "deferred": 0, "in_doubt": 0, "returned": 0}
        self.stop: StopReason | None = None
        self.error: BaseException | None = None
        self.started = 0  # messages claimed in this pass
        self.next_turn = settings.monotonic()  # the rate cap's next free moment
        self.max_streak = plan.campaign.limits.max_rejections_in_a_row
        self.streak: list[tuple[str, date, bool]] = []  # permanent rejections in a row: (key, day, suppressed)
        self.rejected_alike: str | None = None  # the reply, once a streak stopped the run
        self.unbuilt: str | None = None  # which row could not be built, and why (strict validation)
        # claims already asked for still go after --limit or the day's limit; not after these
        self.claims = GroupClaims(
            store, run, stopped=lambda: self.stop in HALTING or settings.stop.is_set(), on_claimed=on_claimed
        )
        self.limit_at: datetime | None = None  # when a claim found the day's allowance used up

    def _watch_rejections(self, job: Job, delivery: Delivery) -> None:
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
        if self.rejected_alike is None:  # stopped first, so no claim of this pass takes a row put back
            self.rejected_alike = delivery.reply
            if self.stop != "error":
                self.stop = "rejections"
        self.store.take_back_rejections(self.run, self.streak)
        self.tally["failed"] -= len(self.streak)
        self.tally["returned"] += len(self.streak)
        self.streak.clear()

    def run_workers(self, connections: list[Connection]) -> None:
        """One worker thread per connection; returns when the last one is done."""
        threads = [threading.Thread(target=self.work, args=(c,), daemon=True) for c in connections]
        for thread in threads:
            thread.start()
        # Wait on an event, not in Thread.join: a signal interrupting join can make Python (before
        # 3.13) take a running thread for finished. Ctrl-C and SIGTERM only set settings.stop.
        self.finished.wait()
        for thread in threads:
            thread.join()

    def work(self, connection: Connection) -> None:
        sent: Outcome | None = None  # the last message's 250, recorded with the next claim (one sync for both)
        try:
            while (job := self._next(sent)) is not None:
                sent = None
                if not self._wait_for_turn():  # the rate cap spaces the messages themselves, after their claims
                    self.store.release_claim(self.run, job.claimed.key, day=job.day)
                    break
                try:
                    delivery = job.noted(
                        connection.send(
                            self._envelope_sender(job), job.claimed.email, job.data, also=[*job.cc, *job.bcc]
                        )
                    )
                except BaseException:  # nothing was accepted: the recipient goes back to pending
                    with self.lock:
                        self.store.release_claim(self.run, job.claimed.key, day=job.day)
                    raise
                outcome = _outcome(job, delivery, self.settings.clock())
                if delivery.status == "sent" and not self.rate:
                    sent = outcome
                else:  # failures at once (the rejection streak reads them), and with a rate cap nothing waits
                    self.store.record(self.run, outcome)
                with self.lock:
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

    def _envelope_sender(self, job: Job) -> str:
        """MAIL FROM: the From address, or with `bounce_address` its VERP form, bounces+TAG@domain,
        whose tag tells `bounces import` which run and recipient a bounce is about."""
        if self.bounce_address is None or job.claimed.tag is None:
            return self.sender
        local, _, domain = self.bounce_address.rpartition("@")
        return f"{local}+{job.claimed.tag}@{domain}"

    def _show(self, email: str, delivery: Delivery) -> None:
        """Progress output; if its terminal or pipe has gone away, sending goes on without it."""
        if self.progress is None:
            return
        try:
            self.progress.delivered(email, delivery)
        except OSError:
            self.progress = None

    def _wait_for_turn(self) -> bool:
        """With `limits.rate`, messages leave 1/rate seconds apart, and time lost in a stall is not
        made up afterwards: no burst above the rate ever follows a slow server or disk. False when
        the run stopped meanwhile: the message is not to go."""
        if not self.rate:
            return True
        with self.lock:
            turn = max(self.next_turn, self.settings.monotonic())
            self.next_turn = turn + 1 / self.rate
        while (wait := turn - self.settings.monotonic()) > 0 and not self.settings.stop.is_set():
            self.settings.sleep(min(wait, 0.2))  # a stop meanwhile ends the wait soon, and the claim goes back
        with self.lock:
            if self.settings.stop.is_set():
                self.stop = self.stop or "interrupted"
            return self.stop not in HALTING

    def _next(self, sent: Outcome | None) -> Job | None:
        """Claim and compose the next message, or None when this pass is over. `sent`, the outcome
        of the worker's last message, is recorded with the claim, or on its own when none comes."""
        while (ticket := self._ticket()) is not None:
            today, limit, moment = ticket
            # outside the pass lock: group commit
            claimed = self.claims.take(day=today, limit=limit, now=moment, outcome=sent)
            sent = None
            if isinstance(claimed, str):
                with self.lock:
                    self.started -= 1
                    if claimed == "limit" and self.stop in (None, "limit-option"):  # the day's limit says more
                        self.stop, self.limit_at = "limit", moment
                    self.stop = self.stop or claimed
                return None
            job = self._compose(claimed, today, moment)
            if job is not None:
                return job
        if sent is not None:
            self.store.record(self.run, sent)
        return None

    def _ticket(self) -> tuple[date, int | None, datetime] | None:
        """Whether another claim may be made now, and for which day and allowance; counts it."""
        with self.lock:
            if self.stop is not None:
                return None
            if self.settings.stop.is_set():
                self.stop = "interrupted"
                return None
            if self.options.limit is not None and self.started >= self.options.limit:
                self.stop = "limit-option"
                return None
            moment = self.settings.clock()
            today = local_day(moment, self.settings.zone)
            if today != self.day:  # the first claim, or past midnight: this day's allowance applies
                self.day = today
                self.allowance = allowance_today(self.store, self.campaign, moment, self.settings.zone)
            self.started += 1
            return today, self.allowance.limit, moment

    def _compose(self, claimed: Claimed, today: date, moment: datetime) -> Job | None:
        """The claimed recipient's message; None when it cannot be built (that row fails, not sent)."""
        try:
            composed = self.composer.compose(
                values=claimed.values,
                email=claimed.email,
                run_token=self.run.token,
                key=claimed.key,
                date=moment,
                rendered=self.checked.get(claimed.row),
                message_id=claimed.message_id,
            )
        except (TemplateRenderError, HeaderInjectionError) as exc:
            self._unbuildable(claimed, today, moment, exc.message)
            return None
        except BaseException:  # not built, so not sent
            self.store.release_claim(self.run, claimed.key, day=today)
            raise
        return Job(claimed, composed.data, today, composed.cc, composed.bcc)

    def _unbuildable(self, claimed: Claimed, today: date, moment: datetime, problem: str) -> None:
        """A row whose message cannot be built now (its attachment gone, a template changed since the
        check): under strict validation it goes back to pending and the run stops (messages already
        claimed on other connections still go), to go on once it is fixed; under permissive
        validation that row is skipped, as the check skips bad rows."""
        if self.campaign.validation == "permissive":
            skipped = Outcome(claimed.key, "skipped", f"not built: {problem}", today, moment, counted=False)
            self.store.record(self.run, skipped)
            return
        with self.lock:  # stopped first, so no claim of this pass takes the row put back
            if self.stop not in HALTING:
                self.stop = "unbuildable"
                self.unbuilt = f"row {claimed.row} ({claimed.email}) could not be built: {problem}"
        self.store.release_claim(self.run, claimed.key, day=today)


class GroupClaims:
    """Group commit: claims from every worker are committed together. While one durable commit
    (with its disk sync) runs, the claims that arrive wait and go in the next one, so N
    connections do not queue behind N syncs. Each worker still gets its claim only once it is on
    disk: no message is handed over before its claim. `on_claimed(count)` is told of each commit's
    claims before anyone gets theirs (the campaign's marker follows them)."""

    def __init__(
        self,
        store: StateStore,
        run: Run,
        stopped: Callable[[], bool] = lambda: False,
        on_claimed: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.store, self.run, self.stopped, self.on_claimed = store, run, stopped, on_claimed
        self._turn = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._committing = False

    def take(
        self, *, day: date, limit: int | None, now: datetime, outcome: Outcome | None = None
    ) -> Claimed | StopReason:
        """The next claim, committed with the others waiting (and their outcomes to record)."""
        ticket = _Ticket(day, limit, now, outcome)
        with self._turn:
            self._waiting.append(ticket)
            while not ticket.answered:
                if self._committing:
                    self._turn.wait()
                else:
                    self._commit()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def _commit(self) -> None:
        """Claim for everyone waiting on the first one's day (past midnight, a day's claims never mix
        with the next day's allowance), in one transaction: called holding the turn, released meanwhile."""
        day = self._waiting[0].day
        batch = [t for t in self._waiting if t.day == day]
        self._waiting = [t for t in self._waiting if t.day != day]
        limit, now = batch[-1].limit, max(t.now for t in batch)
        self._committing = True
        self._turn.release()
        try:
            outcomes = [t.outcome for t in batch if t.outcome is not None]
            # once the pass stops, the outcomes are written and nothing is claimed
            claimed, stop = self.store.claim_many(
                self.run, len(batch), day=day, limit=limit, now=now, outcomes=outcomes, stopped=self.stopped
            )
            if claimed:
                self.on_claimed(len(claimed))
            error: BaseException | None = None
        except BaseException as exc:  # every worker of the batch raises it
            claimed, stop, error = [], None, exc
            if not isinstance(exc, StateFileGoneError):  # then the transaction was written, to that file
                self._record_alone(outcomes)
        finally:
            self._turn.acquire()
        for index, ticket in enumerate(batch):
            ticket.answered = True
            ticket.error = error
            ticket.result = claimed[index] if index < len(claimed) else (stop or "done")
        self._committing = False
        self._turn.notify_all()

    def _record_alone(self, outcomes: list[Outcome]) -> None:
        """The 250s of a batch whose claims failed, each in a transaction of its own, so a message
        delivered is not left in doubt by the next one's failure (as far as the state file lets)."""
        for outcome in outcomes:
            with contextlib.suppress(Exception):
                self.store.record(self.run, outcome)


@dataclass(slots=True)
class _Ticket:
    day: date
    limit: int | None
    now: datetime
    outcome: Outcome | None = None
    answered: bool = False
    result: Claimed | StopReason | None = None
    error: BaseException | None = None


def _outcome(job: Job, delivery: Delivery, moment: datetime) -> Outcome:
    return Outcome(
        job.claimed.key,
        IN_DOUBT if delivery.status == "in_doubt" else delivery.status,  # the reply was lost
        delivery.reply,
        job.day,
        moment,
        retry_at=moment + RETRY_DEFERRED_AFTER if delivery.status == "deferred" else None,
        suppress_reason=f"bounced: {delivery.reply}" if delivery.suppress else None,
        email=job.claimed.email,
        retries=max(delivery.attempts - 1, 0),
    )
