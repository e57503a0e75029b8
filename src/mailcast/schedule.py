"""Schedules: which occurrence is due at a given time. Pure.

`start` is a local wall time in the schedule's zone. `every: Nh/Nd` steps in elapsed time from
the start (24h is 24 hours, so a daily run keeps its UTC hour across a DST change); `cron`
expressions are evaluated in local wall time, so "0 9 * * *" fires at 09:00 local all year.
Occurrences missed while nothing ran are not all sent: only the latest one is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mailcast.campaign import Schedule


def schedule_zone(schedule: Schedule | None, default: tzinfo) -> tzinfo:
    return ZoneInfo(schedule.timezone) if schedule is not None and schedule.timezone else default


def _start(schedule: Schedule, zone: tzinfo) -> datetime | None:
    if schedule.start is None:
        return None
    start = schedule.start
    return start.replace(tzinfo=zone) if start.tzinfo is None else start


def _cron_previous(expression: str, moment: datetime, zone: tzinfo) -> datetime:
    from croniter import croniter

    # croniter on an aware local datetime gives local wall-clock occurrences.
    local = moment.astimezone(zone)
    return croniter(expression, local + timedelta(seconds=1)).get_prev(datetime)  # type: ignore[no-any-return]


def _cron_next(expression: str, moment: datetime, zone: tzinfo) -> datetime:
    from croniter import croniter

    return croniter(expression, moment.astimezone(zone)).get_next(datetime)  # type: ignore[no-any-return]


def latest_occurrence(schedule: Schedule, *, zone: tzinfo, now: datetime) -> datetime | None:
    """The latest occurrence at or before `now` (None when the schedule has not begun)."""
    start = _start(schedule, zone)
    if start is not None and now < start:
        return None
    if schedule.every is not None:
        if start is None:
            return None
        steps = (now - start) // schedule.every
        return start + steps * schedule.every
    if schedule.cron is not None:
        found = _cron_previous(schedule.cron, now, zone)
        if start is not None and found < start:
            return None
        return found
    return start


def occurrences_due(schedule: Schedule, *, zone: tzinfo, last: datetime | None, now: datetime) -> datetime | None:
    """The occurrence to run now, or None: the latest one not yet run.

    Scheduled (start only): the start, once. `every` without a start: `now` itself when it has
    never run, then each `every` after the last occurrence.
    """
    if not schedule.recurring:
        start = _start(schedule, zone)
        return start if start is not None and now >= start and last is None else None
    if schedule.every is not None and schedule.start is None:
        if last is None:
            return now
        steps = (now - last) // schedule.every
        return last + steps * schedule.every if steps >= 1 else None
    due = latest_occurrence(schedule, zone=zone, now=now)
    if due is None or (last is not None and due <= last):
        return None
    return due


def next_occurrence(schedule: Schedule, *, zone: tzinfo, last: datetime | None, now: datetime) -> datetime | None:
    """When the next occurrence after `now` goes (or the pending start); None when nothing more is planned."""
    start = _start(schedule, zone)
    if not schedule.recurring:
        return start if start is not None and last is None else None
    if start is not None and now < start:
        return start
    if schedule.every is not None:
        base = start or last
        if base is None:
            return now
        steps = (now - base) // schedule.every + 1
        return base + steps * schedule.every
    assert schedule.cron is not None
    return _cron_next(schedule.cron, now, zone)
