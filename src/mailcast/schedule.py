"""Schedules: which occurrence is due at a given time. Pure: the zone, the last run and `now` come in.

- `start` is a wall time in the schedule's zone (a naive start inside a DST gap is read with the
  offset before the change, so "02:30" on a spring-forward night means 03:30 after it).
- `every: Nh/Nd` steps in elapsed time from the start: 24h is 24 hours, so a daily run keeps its
  UTC hour, and moves by an hour of local time, across a DST change.
- `cron` is evaluated in local wall time, so "0 9 * * *" fires at 09:00 local all year. A fixed
  time in the hour a spring-forward skips fires once, at the first instant after the gap; a fixed
  time in the hour a fall-back repeats fires once, on the first pass. Expressions whose hour is a
  wildcard ("0 * * * *", "*/30 * * * *") fire on both passes, as those are different hours.
- Occurrences missed while nothing ran are not all sent: only the latest one is due.

Every time returned is in UTC (the state file stores UTC); arithmetic and comparisons are done
in UTC too, because Python adds and compares datetimes that share a tzinfo by wall time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter

from mailcast.campaign import Schedule

UTC = timezone.utc
SECOND = timedelta(seconds=1)


def schedule_zone(schedule: Schedule | None, default: tzinfo) -> tzinfo:
    """The schedule's own zone, else `default` (the machine's zone, passed in by the caller)."""
    return ZoneInfo(schedule.timezone) if schedule is not None and schedule.timezone else default


def occurrences_due(schedule: Schedule, *, zone: tzinfo, last: datetime | None, now: datetime) -> datetime | None:
    """The occurrence to start now, or None. `last` is the occurrence of the latest run already started.

    - Scheduled (start only): the start, once: when `now` has reached it and nothing ran yet.
    - `every`: the latest of start + k·every at or before `now` that is after `last`. Without a
      start, `now` itself when it never ran, then last + k·every.
    - `cron`: the latest cron time at or before `now` (and not before the start) that is after
      `last`. With neither start nor last, that is the latest cron time so far: a caller that
      wants a new schedule to wait for its first future time passes when it first saw it as `last`.
    """
    start = _start(schedule, zone)
    now = _utc(now)
    last = _utc(last) if last is not None else None
    if not schedule.recurring:
        return start if start is not None and now >= start and last is None else None
    if start is not None and now < start:
        return None
    if schedule.every is not None:
        if start is None:
            if last is None:
                return now
            steps = (now - last) // schedule.every
            return last + steps * schedule.every if steps >= 1 else None
        due = start + ((now - start) // schedule.every) * schedule.every
    else:
        assert schedule.cron is not None
        due = _cron_at_or_before(schedule.cron, now, zone)
        if start is not None and due < start:
            return None
    if last is not None and due <= last:
        return None
    return due


def next_occurrence(schedule: Schedule, *, zone: tzinfo, last: datetime | None, now: datetime) -> datetime | None:
    """When the next occurrence goes, for `status`; None for a scheduled campaign already started.

    A scheduled campaign's start is returned until it has run, even when it has passed (it is
    pending). A recurring one gives its first occurrence when the start is ahead, `now` when an
    `every` without start has never run, else the first occurrence after `now`.
    """
    start = _start(schedule, zone)
    now = _utc(now)
    last = _utc(last) if last is not None else None
    if not schedule.recurring:
        return start if start is not None and last is None else None
    if schedule.every is not None:
        if start is not None and now < start:
            return start
        base = start or last
        if base is None:
            return now
        steps = max((now - base) // schedule.every + 1, 1)
        return base + steps * schedule.every
    assert schedule.cron is not None
    if start is not None and now < start:
        return _cron_after(schedule.cron, start - timedelta(microseconds=1), zone)
    return _cron_after(schedule.cron, now, zone)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment} has no time zone; schedule times must be aware")
    return moment.astimezone(UTC)


def _start(schedule: Schedule, zone: tzinfo) -> datetime | None:
    if schedule.start is None:
        return None
    start = schedule.start
    return _utc(start.replace(tzinfo=zone) if start.tzinfo is None else start)


def _cron_at_or_before(expression: str, moment: datetime, zone: tzinfo) -> datetime:
    # get_prev is strictly before its base: base one whole second after `moment` (cron times are whole seconds).
    return _first_fired(expression, moment.replace(microsecond=0) + SECOND, zone, backwards=True)


def _cron_after(expression: str, moment: datetime, zone: tzinfo) -> datetime:
    # get_next is strictly after its base; cron times are whole seconds, so dropping the fraction is safe.
    return _first_fired(expression, moment.replace(microsecond=0), zone, backwards=False)


def _first_fired(expression: str, base: datetime, zone: tzinfo, *, backwards: bool) -> datetime:
    """The first cron time strictly before (or after) `base`, in wall time of `zone`, that fires."""
    times = croniter(expression, base.astimezone(zone))
    step = times.get_prev if backwards else times.get_next
    while True:
        found: datetime = step(datetime)
        if not _skipped_repeat(expression, found, zone):
            return _utc(found)


def _skipped_repeat(expression: str, moment: datetime, zone: tzinfo) -> bool:
    """A fixed-hour cron time on the second pass of an hour a fall-back repeats: it already fired on the first."""
    fields = expression.split()
    wildcard_hour = fields[0] == "@hourly" if fields[0].startswith("@") else fields[1].startswith("*")
    if wildcard_hour:
        return False
    local = moment.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
