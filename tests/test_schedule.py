"""When occurrences are due, table-driven: zones, DST, month ends, missed occurrences."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from mailcast.campaign import Schedule
from mailcast.schedule import next_occurrence, occurrences_due, schedule_zone

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def schedule(**keys: object) -> Schedule:
    return Schedule.model_validate(keys)


@pytest.mark.parametrize(
    ("now", "last", "due"),
    [
        ("2026-12-01T07:59:00+00:00", None, None),  # 08:59 in Berlin: not yet
        ("2026-12-01T08:00:00+00:00", None, "2026-12-01T08:00:00+00:00"),  # 09:00 Berlin is 08:00 UTC
        ("2026-12-09T08:00:00+00:00", None, "2026-12-01T08:00:00+00:00"),
        ("2026-12-09T08:00:00+00:00", "2026-12-01T08:00:00+00:00", None),  # once only
    ],
)
def test_scheduled_start(now: str, last: str | None, due: str | None) -> None:
    s = schedule(start="2026-12-01 09:00", timezone="Europe/Berlin")
    result = occurrences_due(s, zone=BERLIN, last=at(last) if last else None, now=at(now))
    assert result == (at(due) if due else None)


def test_every_24h_once_a_day_and_only_the_latest_when_missed() -> None:
    s = schedule(start="2026-12-01 09:00", every="24h")
    last = None
    fired = []
    for day in (1, 2, 3):
        for hour in (8, 10, 22):
            due = occurrences_due(s, zone=UTC, last=last, now=datetime(2026, 12, day, hour, tzinfo=UTC))
            if due is not None:
                fired.append(due)
                last = due
    assert fired == [datetime(2026, 12, d, 9, tzinfo=UTC) for d in (1, 2, 3)]
    missed = occurrences_due(s, zone=UTC, last=last, now=datetime(2026, 12, 9, 12, tzinfo=UTC))
    assert missed == datetime(2026, 12, 9, 9, tzinfo=UTC)


def test_every_without_start_begins_now() -> None:
    s = schedule(every="6h")
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert occurrences_due(s, zone=UTC, last=None, now=now) == now
    assert occurrences_due(s, zone=UTC, last=now, now=datetime(2026, 12, 1, 15, tzinfo=UTC)) is None
    assert occurrences_due(s, zone=UTC, last=now, now=datetime(2026, 12, 1, 16, tzinfo=UTC)) == datetime(
        2026, 12, 1, 16, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-03-28T12:00:00+00:00", "2026-03-28T08:00:00+00:00"),  # winter: 09:00 CET
        ("2026-03-29T12:00:00+00:00", "2026-03-29T07:00:00+00:00"),  # DST starts: 09:00 CEST
        ("2026-03-29T06:59:00+00:00", "2026-03-28T08:00:00+00:00"),  # 08:59 CEST: still yesterday's
        ("2026-10-25T12:00:00+00:00", "2026-10-25T08:00:00+00:00"),  # DST ends: back to 08:00 UTC
    ],
)
def test_cron_fires_at_local_time_across_dst(now: str, due: str) -> None:
    s = schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    assert occurrences_due(s, zone=BERLIN, last=None, now=at(now)) == at(due)


def test_cron_on_the_31st_skips_short_months() -> None:
    s = schedule(cron="0 9 31 * *")
    assert occurrences_due(s, zone=UTC, last=None, now=datetime(2026, 5, 15, tzinfo=UTC)) == datetime(
        2026, 3, 31, 9, tzinfo=UTC
    )
    assert next_occurrence(s, zone=UTC, last=None, now=datetime(2026, 4, 1, tzinfo=UTC)) == datetime(
        2026, 5, 31, 9, tzinfo=UTC
    )


def test_weekly_cron() -> None:
    s = schedule(cron="0 9 * * MON", start="2026-11-30 00:00")
    monday = datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert occurrences_due(s, zone=UTC, last=None, now=datetime(2026, 12, 2, tzinfo=UTC)) == monday
    assert occurrences_due(s, zone=UTC, last=monday, now=datetime(2026, 12, 6, tzinfo=UTC)) is None
    assert next_occurrence(s, zone=UTC, last=monday, now=datetime(2026, 12, 2, tzinfo=UTC)) == datetime(
        2026, 12, 7, 9, tzinfo=UTC
    )


def test_next_occurrence_of_each_kind() -> None:
    once = schedule(start="2026-12-01 09:00")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    assert next_occurrence(once, zone=UTC, last=None, now=now) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert next_occurrence(once, zone=UTC, last=datetime(2026, 12, 1, 9, tzinfo=UTC), now=now) is None
    daily = schedule(start="2026-12-01 09:00", every="1d")
    assert next_occurrence(daily, zone=UTC, last=None, now=datetime(2026, 12, 3, 12, tzinfo=UTC)) == datetime(
        2026, 12, 4, 9, tzinfo=UTC
    )


def test_schedule_zone() -> None:
    assert schedule_zone(None, UTC) is UTC
    assert schedule_zone(schedule(every="1d", timezone="Asia/Tokyo"), UTC) == ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize("written_in", [UTC, BERLIN])  # moments sharing the start's tzinfo add by wall time in Python
@pytest.mark.parametrize(
    ("now", "last", "due"),
    [
        # start 09:00 CEST (07:00 UTC) on the day before the fall-back; 24h is 24 hours of elapsed time
        ("2026-10-25T06:59:00+00:00", "2026-10-24T07:00:00+00:00", None),
        ("2026-10-25T07:30:00+00:00", "2026-10-24T07:00:00+00:00", "2026-10-25T07:00:00+00:00"),  # 08:00 CET
        ("2026-10-25T07:30:00+00:00", "2026-10-25T07:00:00+00:00", None),
        ("2026-10-28T12:00:00+00:00", "2026-10-25T07:00:00+00:00", "2026-10-28T07:00:00+00:00"),  # missed: latest
    ],
)
def test_every_steps_in_elapsed_time_across_dst(now: str, last: str, due: str | None, written_in: tzinfo) -> None:
    s = schedule(start="2026-10-24 09:00", every="24h", timezone="Europe/Berlin")
    result = occurrences_due(s, zone=BERLIN, last=at(last).astimezone(written_in), now=at(now).astimezone(written_in))
    assert result == (at(due) if due else None)


@pytest.mark.parametrize(
    ("expression", "now", "last", "due"),
    [
        ("0 9 * * *", "2026-12-01T08:59:59.500000+00:00", None, "2026-11-30T09:00:00+00:00"),  # not early
        ("0 9 * * *", "2026-12-01T09:00:00+00:00", None, "2026-12-01T09:00:00+00:00"),  # on the dot
        ("0 9 * * *", "2026-12-01T09:00:00+00:00", "2026-12-01T09:00:00+00:00", None),
        ("0 9 31 * *", "2026-07-30T12:00:00+00:00", None, "2026-05-31T09:00:00+00:00"),  # no 30 June 31st
        ("0 9 * * MON", "2026-12-06T23:59:00+00:00", None, "2026-11-30T09:00:00+00:00"),  # Sunday night
        ("0 9 * * MON", "2026-12-07T09:01:00+00:00", "2026-11-30T09:00:00+00:00", "2026-12-07T09:00:00+00:00"),
        ("@daily", "2026-12-01T12:00:00+00:00", None, "2026-12-01T00:00:00+00:00"),
    ],
)
def test_cron_in_utc(expression: str, now: str, last: str | None, due: str | None) -> None:
    s = schedule(cron=expression)
    result = occurrences_due(s, zone=UTC, last=at(last) if last else None, now=at(now))
    assert result == (at(due) if due else None)


@pytest.mark.parametrize(
    ("expression", "now", "last", "due"),
    [
        # 02:30 does not exist on 2026-03-29 in Berlin: it fires once, at 03:00 CEST (01:00 UTC)
        ("30 2 * * *", "2026-03-29T01:30:00+00:00", "2026-03-28T01:30:00+00:00", "2026-03-29T01:00:00+00:00"),
        ("30 2 * * *", "2026-03-29T12:00:00+00:00", "2026-03-29T01:00:00+00:00", None),
        # 02:30 happens twice on 2026-10-25: a daily job fires on the first pass only
        ("30 2 * * *", "2026-10-25T00:45:00+00:00", "2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00"),
        ("30 2 * * *", "2026-10-25T01:45:00+00:00", "2026-10-25T00:30:00+00:00", None),  # 02:45 CET, again
        ("30 2 * * *", "2026-10-26T12:00:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"),
        # an hourly job fires in both 02:00 hours: they are different hours
        ("0 * * * *", "2026-10-25T01:05:00+00:00", "2026-10-25T00:00:00+00:00", "2026-10-25T01:00:00+00:00"),
    ],
)
def test_cron_in_the_hours_dst_skips_or_repeats(expression: str, now: str, last: str, due: str | None) -> None:
    s = schedule(cron=expression, timezone="Europe/Berlin")
    assert occurrences_due(s, zone=BERLIN, last=at(last), now=at(now)) == (at(due) if due else None)


@pytest.mark.parametrize(
    ("keys", "last", "now", "expected"),
    [
        # scheduled: the start until it has run, even once passed (pending)
        (
            {"start": "2026-12-01 09:00", "timezone": "Europe/Berlin"},
            None,
            "2026-12-05T00:00:00+00:00",
            "2026-12-01T08:00:00+00:00",
        ),
        ({"start": "2026-12-01 09:00"}, "2026-12-01T09:00:00+00:00", "2026-12-05T00:00:00+00:00", None),
        # every: the start when ahead, then the first step after now
        ({"start": "2026-12-01 09:00", "every": "24h"}, None, "2026-11-01T00:00:00+00:00", "2026-12-01T09:00:00+00:00"),
        ({"start": "2026-12-01 09:00", "every": "24h"}, None, "2026-12-01T09:00:00+00:00", "2026-12-02T09:00:00+00:00"),
        ({"every": "6h"}, None, "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:00+00:00"),  # never ran: now
        ({"every": "6h"}, "2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00", "2026-12-01T16:00:00+00:00"),
        # cron: the first time at or after a future start, else the first after now
        (
            {"cron": "0 9 * * MON", "start": "2026-12-01 00:00"},
            None,
            "2026-11-01T00:00:00+00:00",
            "2026-12-07T09:00:00+00:00",
        ),
        (
            {"cron": "0 9 * * MON", "start": "2026-12-07 09:00"},
            None,
            "2026-11-01T00:00:00+00:00",
            "2026-12-07T09:00:00+00:00",
        ),
        (
            {"cron": "0 9 * * *", "timezone": "Europe/Berlin"},
            None,
            "2026-03-28T12:00:00+00:00",
            "2026-03-29T07:00:00+00:00",
        ),
        (
            {"cron": "0 9 * * *", "timezone": "Europe/Berlin"},
            None,
            "2026-10-24T12:00:00+00:00",
            "2026-10-25T08:00:00+00:00",
        ),
        (
            {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
            None,
            "2026-10-25T00:45:00+00:00",
            "2026-10-26T01:30:00+00:00",
        ),
    ],
)
def test_next_occurrence(keys: dict[str, object], last: str | None, now: str, expected: str | None) -> None:
    s = schedule(**keys)
    zone = schedule_zone(s, UTC)
    result = next_occurrence(s, zone=zone, last=at(last) if last else None, now=at(now))
    assert result == (at(expected) if expected else None)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        occurrences_due(schedule(every="1d"), zone=UTC, last=None, now=datetime(2026, 12, 1, 9))
