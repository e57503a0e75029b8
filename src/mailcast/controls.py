"""pause, resume and cancel: the rules for changing a run's status by hand.

Each is checked against the run's status in the same statement that changes it, so a `send`
finishing meanwhile is never overwritten, and a finished run is never touched.
"""

from __future__ import annotations

from datetime import datetime

from mailcast.errors import UsageError
from mailcast.state import PAUSED_BY_HAND, Run, StateStore

RESUMED = "resumed: the next send or run-due continues it"


def _latest(store: StateStore | None, name: str) -> tuple[StateStore, Run]:
    run = store.latest_run(name) if store else None
    if store is None or run is None:
        raise UsageError(f"campaign {name!r} has no run in the state file", hint="mailcast status lists the runs.")
    if run.finished:
        raise UsageError(f"run {run.id} of {name} is already {run.status}", hint="Nothing to change.")
    return store, run


def _finished_meanwhile(run: Run, name: str) -> UsageError:
    return UsageError(f"run {run.id} of {name} has finished meanwhile", hint="mailcast status shows how.")


def pause_run(store: StateStore | None, name: str, *, now: datetime) -> str:
    """Hold the run until `resume`; a running send stops after the messages in flight."""
    store, run = _latest(store, name)
    if not store.set_run_status(run.id, "paused", now=now, reason=PAUSED_BY_HAND, held=True, unless_finished=True):
        raise _finished_meanwhile(run, name)
    return f"Paused run {run.id} of {name}; a running send stops after the message in flight."


def resume_run(store: StateStore | None, name: str, *, now: datetime) -> str:
    """Lift a pause by hand. The run then waits, no longer held, for the next send or run-due."""
    store, run = _latest(store, name)
    if not run.paused_by_hand:
        waits = f"; it continues from {run.resume_at:%Y-%m-%d %H:%M} UTC" if run.resume_at else ""
        raise UsageError(
            f"run {run.id} of {name} is not paused by hand ({run.status}: {run.reason or 'no reason'}{waits})",
            hint="Only a pause by hand is lifted by resume; mailcast send (or run-due) continues the run.",
        )
    if not store.set_run_status(run.id, "paused", now=now, reason=RESUMED, unless_finished=True):
        raise _finished_meanwhile(run, name)
    return f"Resumed run {run.id} of {name}: the next mailcast send (or run-due) continues it."


def cancel_run(store: StateStore | None, name: str, *, now: datetime) -> str:
    """End the run: recipients not yet sent are not sent."""
    store, run = _latest(store, name)
    if not store.set_run_status(run.id, "cancelled", now=now, reason="cancelled by hand", unless_finished=True):
        raise _finished_meanwhile(run, name)
    return f"Cancelled run {run.id} of {name}; recipients not yet sent will not be."
