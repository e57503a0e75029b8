"""Warm-up policy: a sender domain's level and daily limit from its history. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Protocol

STANDARD_PLAN: tuple[int, ...] = (
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000,
    150_000, 200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 900_000, 1_000_000,
)  # fmt: skip
REJECT_THRESHOLD = 0.05


class Limits(Protocol):
    """What the policy reads of a campaign's `limits` (or of the limits a domain last sent with)."""

    @property
    def daily(self) -> int | None: ...

    @property
    def warmup(self) -> str | list[int]: ...


@dataclass(frozen=True)
class DayRecord:
    """One sender domain's day, as the state file counts it."""

    day: date
    sent: int  # messages the servers accepted that day
    rejected: int  # messages the servers refused (5xx) that day
    claimed: int = 0  # messages counted against the day's allowance: sent, rejected, in flight or in doubt


@dataclass(frozen=True)
class Allowance:
    level: int | None  # None when warm-up is off
    limit: int | None  # None: no cap
    used: int = 0  # claimed so far today

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


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
    """Today's level, cap and use: the plan's limit at today's level (a plan's last value holds
    past its end), capped by `limits.daily`; with warm-up off, `daily` alone (None: no cap). The
    one place that says how much a sender domain may still send today."""
    used = next((d.claimed for d in history if d.day == today), 0)
    warmup = limits.warmup
    if warmup == "off":
        return Allowance(None, limits.daily, used)
    plan = STANDARD_PLAN if isinstance(warmup, str) else tuple(warmup)
    level = warmup_level(history, today, len(plan))
    limit = plan[level - 1]
    if limits.daily is not None:
        limit = min(limit, limits.daily)
    return Allowance(level, limit, used)


@dataclass(frozen=True)
class RememberedLimits:
    """The limits a domain last sent with, as the state file keeps them (for `mailcast warmup`)."""

    daily: int | None = None
    warmup: str | list[int] = "standard"


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
