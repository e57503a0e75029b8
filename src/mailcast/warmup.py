"""Warm-up policy: a sender domain's level and daily limit from its history. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from mailcast.campaign import Limits

STANDARD_PLAN: tuple[int, ...] = (
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000,
    150_000, 200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 900_000, 1_000_000,
)  # fmt: skip
REJECT_THRESHOLD = 0.05


@dataclass(frozen=True)
class DayRecord:
    day: date
    sent: int
    rejected: int


@dataclass(frozen=True)
class Allowance:
    level: int | None  # None when warm-up is off
    limit: int | None  # None: no cap


def warmup_level(history: Sequence[DayRecord], today: date, plan_length: int) -> int:
    """Start at 1; after each earlier day with mail, rise one if under 5% was rejected, else fall one."""
    level = 1
    for record in sorted(history, key=lambda r: r.day):
        if record.day >= today:
            continue
        total = record.sent + record.rejected
        if total == 0:
            continue
        level = min(level + 1, plan_length) if record.rejected / total < REJECT_THRESHOLD else max(level - 1, 1)
    return level


def daily_allowance(limits: Limits, history: Sequence[DayRecord], today: date) -> Allowance:
    warmup = limits.warmup
    if warmup == "off":
        return Allowance(None, limits.daily)
    plan = STANDARD_PLAN if warmup == "standard" else tuple(warmup)
    level = warmup_level(history, today, len(plan))
    limit = plan[level - 1]
    if limits.daily is not None:
        limit = min(limit, limits.daily)
    return Allowance(level, limit)


def local_day(now: datetime, zone: tzinfo) -> date:
    return now.astimezone(zone).date()


def next_midnight(now: datetime, zone: tzinfo) -> datetime:
    """The next local midnight after `now`; where midnight does not exist (a DST jump), the first instant after."""
    tomorrow = local_day(now, zone) + timedelta(days=1)
    moment = datetime.combine(tomorrow, time(0, 0), tzinfo=zone)
    # A wall time inside a DST gap does not survive a round trip through UTC: step to the first real one.
    from datetime import timezone

    round_trip = moment.astimezone(timezone.utc).astimezone(zone)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        moment = round_trip if round_trip > moment else moment + timedelta(hours=1)
    return moment
