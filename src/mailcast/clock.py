"""The current time and the machine's time zone, read once by the CLI and passed to the core."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfoNotFoundError

from mailcast.errors import UsageError


def current_time(env: Mapping[str, str]) -> datetime:
    """`MAILCAST_NOW` (ISO 8601 with offset) when set, else the real clock; always aware."""
    value = env.get("MAILCAST_NOW")
    if not value:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"MAILCAST_NOW={value!r} is not an ISO 8601 time",
            hint='Write it with an offset, such as MAILCAST_NOW="2026-12-01T09:00:00+01:00".',
        ) from None
    if moment.tzinfo is None:
        raise UsageError(
            f"MAILCAST_NOW={value!r} has no UTC offset",
            hint='Add one, such as "+01:00" or "Z", so the moment is not ambiguous.',
        )
    if not 1970 <= moment.year <= 9000:
        raise UsageError(f"MAILCAST_NOW={value!r} is out of range", hint="Give a time between the years 1970 and 9000.")
    return moment


def local_zone() -> tzinfo:
    """The machine's IANA zone, so days and DST follow local rules. tzlocal reads it the way the
    system does: `TZ` as a name (`Europe/Berlin`, `:Europe/Berlin`) or a zoneinfo file path, else
    /etc/localtime and the distribution's files. A POSIX rule in `TZ` (`CET-1CEST,M3.5.0,…`) names
    no IANA zone: then the current offset from UTC is used, without DST changes."""
    import tzlocal

    try:
        return tzlocal.reload_localzone()  # not the cached zone: TZ may differ from one command to the next
    except (ZoneInfoNotFoundError, ValueError):
        fallback = datetime.now().astimezone().tzinfo
        return fallback if fallback is not None else timezone.utc
