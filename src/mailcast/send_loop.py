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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from mailcast.compose import Composer
from mailcast.message import HeaderInjectionError
from mailcast.planning import SendOptions, SendPlan, allowance_today
from mailcast.settings import Settings
from mailcast.state import Claimed, Run, StateStore
from mailcast.templates import Rendered, TemplateRenderError
from mailcast.transports import Connection, Delivery
from mailcast.vocabulary import IN_DOUBT, StopReason
from mailcast.warmup import local_day

RETRY_DEFERRED_AFTER = timedelta(minutes=10)


class SendProgress(Protocol):
    def started(self, campaign: str, run: Run, total: int, done: int, to_send: int) -> None: ...
    def delivered(self, email: str, delivery: Delivery) -> None: ...


@dataclass
class Job:
    claimed: Claimed
    message_id: str
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
    ) -> None:
        self.store, self.run, self.composer, self.checked = store, run, composer, checked
        self.settings, self.options, self.progress = settings, options, progress
        self.campaign = plan.campaign
        self.sender = plan.campaign.sender_address
        self.bounce_address = plan.campaign.bounce_address
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
        self.store.take_back_rejections(self.run, self.streak)
        self.tally["failed"] -= len(self.streak)
        self.tally["returned"] += len(self.streak)
        self.streak.clear()
        if self.rejected_alike is None:
            self.rejected_alike = delivery.reply
            if self.stop != "error":
                self.stop = "rejections"

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
        try:
            while (job := self._next()) is not None:
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

    def _envelope_sender(self, job: Job) -> str:
        """MAIL FROM: the From address, or with `bounce_address` its VERP form, bounces+TAG@domain,
        whose tag tells `bounces import` which run and recipient a bounce is about."""
        if self.bounce_address is None:
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

    def _next(self) -> Job | None:
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
                    self.allowance = allowance_today(store, self.campaign, moment, self.settings.zone)
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
                return Job(claimed, composed.message_id, composed.data, today, composed.cc, composed.bcc)
        return None


def _record(store: StateStore, run: Run, job: Job, delivery: Delivery, moment: datetime) -> None:
    retry_at = moment + RETRY_DEFERRED_AFTER if delivery.status == "deferred" else None
    store.record(
        run,
        job.claimed.key,
        status=IN_DOUBT if delivery.status == "in_doubt" else delivery.status,  # the reply was lost
        reply=delivery.reply,
        message_id=job.message_id,
        day=job.day,
        now=moment,
        retry_at=retry_at,
        suppress_reason=f"bounced: {delivery.reply}" if delivery.suppress else None,
        email=job.claimed.email,
    )
