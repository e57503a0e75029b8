"""The current time and the machine's zone, as the CLI reads them once."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from mailcast.clock import current_time, local_zone
from mailcast.errors import UsageError

JULY = datetime(2026, 7, 1, 12, 0)


@pytest.mark.parametrize(
    ("tz", "hours"),
    [("Europe/Berlin", 2), (":America/New_York", -4), ("/usr/share/zoneinfo/Asia/Tokyo", 9), ("UTC", 0)],
)
def test_local_zone_follows_tz_as_a_name_or_a_zoneinfo_file(
    monkeypatch: pytest.MonkeyPatch, tz: str, hours: int
) -> None:
    monkeypatch.setenv("TZ", tz)
    zone = local_zone()
    assert JULY.replace(tzinfo=zone).utcoffset() == timedelta(hours=hours)
    assert datetime(2026, 1, 15, 12, tzinfo=zone).dst() == timedelta(0)  # an IANA zone: DST follows the date


def test_a_posix_rule_is_not_taken_for_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "XYZ-5")  # five hours east of UTC, no DST: names no IANA zone
    time.tzset()
    try:
        assert datetime.now(local_zone()).utcoffset() == timedelta(hours=5)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_mailcast_now_needs_an_offset() -> None:
    assert current_time({"MAILCAST_NOW": "2026-12-01T09:00:00Z"}) == datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    with pytest.raises(UsageError, match="no UTC offset"):
        current_time({"MAILCAST_NOW": "2026-12-01T09:00:00"})
