"""Warm-up policy, table-driven: levels rise and fall with each day's rejections."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from mailcast.campaign import Limits
from mailcast.warmup import STANDARD_PLAN, Allowance, DayRecord, daily_allowance, local_day, next_midnight, warmup_level

D1 = date(2026, 12, 1)


def days(*pairs: tuple[int, int]) -> list[DayRecord]:
    return [DayRecord(date(2026, 12, 1 + i), sent, rejected) for i, (sent, rejected) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("history", "today", "level"),
    [
        ([], D1, 1),  # a new domain starts at level 1
        (days((500, 0)), date(2026, 12, 2), 2),  # a clean day raises it
        (days((500, 0), (950, 50)), date(2026, 12, 3), 1),  # exactly 5% rejected: falls
        (days((500, 0), (951, 49)), date(2026, 12, 3), 3),  # 4.9%: rises
        (days((100, 100)), date(2026, 12, 2), 1),  # never below 1
        (days((500, 0), (0, 0), (0, 0)), date(2026, 12, 4), 2),  # idle days change nothing
        (days((500, 0)), D1, 1),  # today's own mail does not change today's level
        (days(*[(10, 0)] * 30), date(2027, 1, 1), 20),  # never above the plan's end
        (days(*[(10, 0)] * 30, (95, 5)), date(2027, 1, 1), 19),  # from the top it falls
        (days((95, 5)), date(2026, 12, 2), 1),  # 5 of 100: exactly 5%
        (days((19, 1)), date(2026, 12, 2), 1),  # 1 of 20: exactly 5%
        (days((0, 3)), date(2026, 12, 2), 1),  # all rejected
        (days((1, 0), (1, 0), (19, 1), (1, 0)), date(2026, 12, 5), 3),  # up, up, down, up
        (list(reversed(days((1, 0), (1, 0), (19, 1), (1, 0)))), date(2026, 12, 5), 3),  # any order: by date
        (days((1, 0), (1, 0), (19, 1), (1, 0)), date(2026, 12, 3), 3),  # later days do not count yet
    ],
)
def test_level(history: list[DayRecord], today: date, level: int) -> None:
    assert warmup_level(history, today, len(STANDARD_PLAN)) == level


@pytest.mark.parametrize(
    ("limits", "history", "today", "allowance"),
    [
        ({}, [], D1, Allowance(1, 500)),
        ({}, days((500, 0)), date(2026, 12, 2), Allowance(2, 1_000)),
        ({"daily": 300}, [], D1, Allowance(1, 300)),  # daily caps the plan
        ({"daily": 5000}, [], D1, Allowance(1, 500)),
        ({"warmup": [10, 20, 30]}, days((10, 0), (20, 0), (30, 0), (30, 0)), date(2026, 12, 5), Allowance(3, 30)),
        ({"warmup": "off", "daily": 40}, [], D1, Allowance(None, 40)),
        ({"warmup": False}, [], D1, Allowance(None, None)),  # YAML's unquoted off
        ({"warmup": "off"}, days((500, 0)), date(2026, 12, 2), Allowance(None, None)),
        ({}, days(*[(10, 0)] * 25), date(2027, 1, 1), Allowance(20, 1_000_000)),
        ({"warmup": [10, 20, 30], "daily": 25}, days((10, 0), (20, 0), (30, 0)), date(2026, 12, 4), Allowance(3, 25)),
        ({"warmup": [10, 20, 30]}, days((10, 0), (19, 1)), date(2026, 12, 3), Allowance(1, 10)),
        ({"warmup": [7]}, days((7, 0), (7, 0)), date(2026, 12, 3), Allowance(1, 7)),
    ],
)
def test_allowance(limits: dict[str, object], history: list[DayRecord], today: date, allowance: Allowance) -> None:
    assert daily_allowance(Limits.model_validate(limits), history, today) == allowance


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2026-03-28T22:30:00+00:00", "Europe/Berlin", "2026-03-29T00:00:00+01:00"),  # night before spring forward
        ("2026-03-29T12:00:00+00:00", "Europe/Berlin", "2026-03-30T00:00:00+02:00"),
        ("2026-10-25T12:00:00+00:00", "Europe/Berlin", "2026-10-26T00:00:00+01:00"),  # after fall back
        ("2026-12-01T23:59:00+00:00", "UTC", "2026-12-02T00:00:00+00:00"),
        ("2026-03-29T00:30:00+01:00", "Europe/Berlin", "2026-03-30T00:00:00+02:00"),  # the 23-hour day
        ("2026-10-24T21:59:00+00:00", "Europe/Berlin", "2026-10-25T00:00:00+02:00"),  # night before fall back
        ("2026-10-25T01:30:00+00:00", "Europe/Berlin", "2026-10-26T00:00:00+01:00"),  # inside the repeated hour
        ("2026-10-25T00:00:00+02:00", "Europe/Berlin", "2026-10-26T00:00:00+01:00"),  # at midnight: the next one
        ("2026-12-01T14:00:00+00:00", "Asia/Tokyo", "2026-12-02T00:00:00+09:00"),  # 23:00 in Tokyo
        ("2026-03-07T12:00:00+00:00", "America/Havana", "2026-03-08T01:00:00-04:00"),  # midnight skipped: 01:00
    ],
)
def test_next_midnight(now: str, zone: str, expected: str) -> None:
    result = next_midnight(datetime.fromisoformat(now), ZoneInfo(zone))
    assert result == datetime.fromisoformat(expected)
    assert result.astimezone(ZoneInfo(zone)).isoformat() == expected  # the local wall time is as written


def test_next_midnight_where_midnight_does_not_exist() -> None:
    # Santiago moves its clocks at midnight: the result must exist and lie ahead.
    now = datetime(2026, 9, 5, 12, tzinfo=timezone.utc)
    result = next_midnight(now, ZoneInfo("America/Santiago"))
    assert result > now
    assert result.astimezone(ZoneInfo("America/Santiago")).date() == date(2026, 9, 6)


@pytest.mark.parametrize(
    ("now", "zone", "day"),
    [
        ("2026-12-01T23:30:00+00:00", "Asia/Tokyo", date(2026, 12, 2)),  # east of UTC: already tomorrow
        ("2026-12-02T03:00:00+00:00", "America/New_York", date(2026, 12, 1)),  # west: still yesterday
        ("2026-10-25T01:30:00+00:00", "Europe/Berlin", date(2026, 10, 25)),
    ],
)
def test_local_day(now: str, zone: str, day: date) -> None:
    assert local_day(datetime.fromisoformat(now), ZoneInfo(zone)) == day


def test_naive_now_is_refused() -> None:
    # A naive time would be read in the machine's zone: the policy stays pure by refusing it.
    with pytest.raises(ValueError, match="no time zone"):
        local_day(datetime(2026, 12, 1, 12), ZoneInfo("Europe/Berlin"))
