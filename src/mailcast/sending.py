"""`send_campaign`: what `mailcast send` and `mailcast run-due` call to start or continue a run.

It holds the campaign's lock, checks that the campaign meets its own state file and runs
(integrity.py), plans (planning.py), asks for confirmation, records the run, opens the
connections and runs the send loop (send_loop.py), then settles the run's status
(outcomes.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime

from mailcast.campaign import Campaign, SmtpTransport
from mailcast.compose import Composer
from mailcast.errors import ExitCode, MailcastError
from mailcast.integrity import MarkerKeeper, check_name, check_state_file, fingerprint, write_marker
from mailcast.lock import CampaignLock
from mailcast.outcomes import SendOutcome, limit_reason, settle
from mailcast.planning import SendOptions, SendPlan, dry_run_outcome, password_for, plan_send
from mailcast.send_loop import Pass, SendProgress
from mailcast.settings import Settings
from mailcast.state import Run, StateStore
from mailcast.transports import Connection, open_connection
from mailcast.vocabulary import IN_DOUBT

__all__ = ["SendOptions", "SendOutcome", "SendPlan", "SendProgress", "Settings", "send_campaign"]


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
        check_state_file(campaign, store, new_state=options.new_state, move=False)
        if store is not None:
            check_name(campaign, store, move=False)
        plan = plan_send(campaign, store, settings, options)
        return dry_run_outcome(plan, options)
    assert store is not None
    password = password_for(campaign, settings.env)  # a missing variable stops us before anything changes
    with CampaignLock(store.locks_folder, campaign.name):
        check_state_file(campaign, store, new_state=options.new_state)
        check_name(campaign, store)
        if options.new_state and (latest := store.latest_run(campaign.name)) is not None:
            write_marker(campaign, store, latest)  # from now on the marker names this state file
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
            return settle(plan, store, plan.run, settings, None, {})
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
                reason=limit_reason(plan),
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
        bounce_address=campaign.bounce_address,
        unsubscribe_mailto=campaign.unsubscribe.mailto if campaign.unsubscribe else None,
    )
    _keep_marker(store, plan, run)
    return run


def _keep_marker(store: StateStore, plan: SendPlan, run: Run) -> None:
    """The marker beside the campaign names this state file, the run and how far it has gone."""
    note = write_marker(plan.campaign, store, run)
    if note and note not in plan.notes:
        plan.notes.append(note)


def _continue_run(store: StateStore, plan: SendPlan, run: Run, now: datetime) -> None:
    """A continued run: note a change of content (report shows it), and keep the marker."""
    if plan.content_change is not None:
        store.note(run.id, plan.content_change, now=now, fingerprint=fingerprint(plan.campaign))
        plan.notes.append(plan.content_change)
    elif run.fingerprint is None:  # a run from before fingerprints: from now on, changes are told
        store.set_fingerprint(run.id, fingerprint(plan.campaign))
    _keep_marker(store, plan, run)


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
    connections = _open_connections(campaign, settings, password)
    # Nothing is recorded or changed when a stop came while connecting, or a pause or cancel meanwhile.
    if settings.stop.is_set():
        _close_all(connections)
        return SendOutcome(campaign.name, plan.run, {}, ExitCode.TEMPFAIL, "Stopped before anything was sent.")
    now = settings.clock()
    run = _begin(store, plan, options, now)
    if run is None:
        _close_all(connections)
        assert plan.run is not None
        return settle(plan, store, plan.run, settings, None, {})

    counts = store.counts(run.id)
    if progress is not None:
        done = sum(counts.values()) - counts["pending"] - counts["deferred"] - counts[IN_DOUBT]
        this_time = [counts["pending"], plan.allowance.remaining, options.limit]
        with contextlib.suppress(OSError):  # output may have nowhere to go; sending goes on
            progress.started(
                campaign.name,
                run,
                sum(counts.values()),
                done,
                min(n for n in this_time if n is not None),
                in_doubt=counts[IN_DOUBT],
            )

    # A new run was rendered row by row when it was checked a moment ago: use that rendering.
    checked = plan.check.rendered if plan.check is not None else {}
    marker = MarkerKeeper(campaign, store, run)
    one_pass = Pass(
        store,
        run,
        composer,
        checked,
        settings,
        options,
        plan,
        progress,
        workers=len(connections),
        on_claimed=marker.claimed,
    )
    try:
        one_pass.run_workers(connections)
    finally:
        marker.close()
    plan.allowance = one_pass.allowance  # the day's, if the pass went past midnight
    if one_pass.error is None:  # after an error the file may not be the one at the path any more
        _keep_marker(store, plan, run)
    outcome = settle(
        plan,
        store,
        run,
        settings,
        one_pass.stop,
        one_pass.tally,
        detail=one_pass.rejected_alike or one_pass.unbuilt,
        limit_at=one_pass.limit_at,
    )
    error = one_pass.error
    if isinstance(error, MailcastError):
        store.set_run_status(run.id, "failed", now=settings.clock(), reason=error.message, unless_stopped=True)
    if error is not None:
        raise error
    return outcome


def _open_connections(campaign: Campaign, settings: Settings, password: str | None) -> list[Connection]:
    """One connection per worker (`transport.connections`): the first alone (a refused login or an
    unreachable server is said once), then the others at the same time, since each costs round
    trips to a server that may be far away. None more once a stop comes."""
    transport = campaign.transport
    workers = transport.connections if isinstance(transport, SmtpTransport) else 1

    def connect() -> Connection:
        return open_connection(
            transport,
            folder=campaign.folder,
            password=password,
            ssl_context=settings.ssl_context,
            sleep=settings.sleep,
            should_stop=settings.stop.is_set,
        )

    connections: list[Connection] = []
    try:
        if settings.stop.is_set():
            return connections
        connections.append(connect())
        if workers > 1 and not settings.stop.is_set():
            connections.extend(_open_more(connect, workers - 1))
    except BaseException:  # nothing was sent: the run, if any, stays as it was
        _close_all(connections)
        raise
    return connections


def _open_more(connect: Callable[[], Connection], count: int) -> list[Connection]:
    """`count` connections opened at the same time, each on a thread of its own. Any failure is
    raised once all have ended (none is left open unseen). A second Ctrl-C meanwhile stops at once:
    the threads are daemons, and a connection that opens after that is closed at once."""
    opened: list[Connection] = []
    failures: list[Exception] = []
    lock = threading.Lock()
    abandoned = threading.Event()

    def open_one() -> None:
        try:
            connection = connect()
        except Exception as exc:
            with lock:
                failures.append(exc)
            return
        with lock:
            late = abandoned.is_set()
            if not late:
                opened.append(connection)
        if late:
            _close_all([connection])

    threads = [threading.Thread(target=open_one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # KeyboardInterrupt: do not wait for the others
        with lock:
            abandoned.set()
            _close_all(opened)
        raise
    if failures:
        _close_all(opened)
        raise failures[0]
    return opened


def _begin(store: StateStore, plan: SendPlan, options: SendOptions, now: datetime) -> Run | None:
    """Record a new run, or mark the one continued as sending; None when it was paused by hand or
    cancelled meanwhile (that stands)."""
    store.remember_limits(plan.campaign.sender_domain, plan.campaign.limits.model_dump(), now=now)
    if plan.run is None:
        return _start_run(store, plan, options, now)
    if not store.set_run_status(plan.run.id, "sending", now=now, unless_stopped=True):
        return None
    run = store.get_run(plan.run.id)
    _continue_run(store, plan, run, now)
    store.requeue(run.id, statuses=("deferred",), due_by=now if options.only_due_retries else None)
    if options.resend_in_doubt:
        store.requeue(run.id, statuses=(IN_DOUBT,))
    return run


def _close_all(connections: list[Connection]) -> None:
    for connection in connections:
        with contextlib.suppress(Exception):  # closing a connection that sent nothing loses nothing
            connection.close()
