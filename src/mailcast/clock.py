"""The current time and the machine's time zone, read once by the CLI and passed to the core."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def local_zone(env: Mapping[str, str]) -> tzinfo:
    """The machine's IANA zone (from TZ or /etc/localtime), so days and DST follow local rules."""
    name = env.get("TZ", "").lstrip(":")
    candidates = [name] if name else []
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(os.path.realpath(localtime))
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text(encoding="utf-8").strip())
    for candidate in candidates:
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    fallback = datetime.now().astimezone().tzinfo
    return fallback if fallback is not None else timezone.utc
