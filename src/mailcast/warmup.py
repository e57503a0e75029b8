"""Warm-up policy: a sender domain's level and daily limit from its history. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from mailcast.campaign import Limits

STANDARD_PLAN: tuple[int, ...] = (
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000,
    150_000, 200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 900_000, 1_000_000,
)  # fmt: skip
REJECT_THRESHOLD = 0.05


@dataclass(frozen=True)
class DayRecord:
    day: date
    sent: int  # messages the servers accepted that day
    rejected: int  # messages the servers refused (5xx) that day


@dataclass(frozen=True)
class Allowance:
    level: int | None  # None when warm-up is off
    limit: int | None  # None: no cap


def warmup_level(history: Sequence[DayRecord], today: date, plan_length: int) -> int:
    """Today's warm-up level (1-based, at most `plan_length`).

    Start at 1; after each day before `today` on which mail went out (sent + rejected > 0), in date
    order, rise one if under 5% of it was rejected, else fall one (not below 1). Idle days change
    nothing, and today's own traffic counts from tomorrow.
    """
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
    """Today's level and cap: the plan's limit at today's level (a plan's last value holds past
    its end), capped by `limits.daily`; with warm-up off, `daily` alone (None: no cap)."""
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
    """The local date in `zone` of the aware moment `now` (days run midnight to midnight, local time)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now} has no time zone; pass an aware time")
    return now.astimezone(zone).date()


def next_midnight(now: datetime, zone: tzinfo) -> datetime:
    """The next local midnight after the aware moment `now`, in `zone`.

    Where that midnight does not exist (clocks jump from 00:00 to 01:00, as in America/Santiago
    and America/Havana), the first instant after the jump: the wall time read with the offset
    before the change (PEP 495 fold=0) is exactly the instant of the change, and going through
    UTC turns it into a wall time that exists. Where midnight happens twice, the first.
    """
    tomorrow = local_day(now, zone) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0), tzinfo=zone).astimezone(timezone.utc).astimezone(zone)
