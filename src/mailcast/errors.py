"""The one root error of mailcast, its kinds, and the exit code of each (the README's table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    UNDELIVERED = 1
    USAGE = 2
    DATA = 65
    NOINPUT = 66
    UNAVAILABLE = 69
    STATE = 74
    TEMPFAIL = 75
    AUTH = 77
    CONFIG = 78


@dataclass(frozen=True)
class Problem:
    """One problem found in the input, with where it is when that is known."""

    message: str
    file: str | None = None
    line: int | None = None
    row: int | None = None
    key: str | None = None

    @property
    def location(self) -> str:
        """`file:line` (or what of it is known), for people."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        for name in ("file", "line", "row", "key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class MailcastError(Exception):
    """Root of every error mailcast reports to a user; carries its exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class UsageError(MailcastError):
    exit_code = ExitCode.USAGE


class DataError(MailcastError):
    """Bad input data: CSV, addresses, templates, rendered rows."""

    exit_code = ExitCode.DATA


class ConfigError(MailcastError):
    """Campaign file: YAML, unknown keys, wrong types, TLS policy, plaintext password."""

    exit_code = ExitCode.CONFIG


class ServerUnavailableError(MailcastError):
    """A server (SMTP or IMAP) cannot be reached, its certificate is not trusted, or the connection broke."""

    exit_code = ExitCode.UNAVAILABLE


class LoginRefusedError(MailcastError):
    """A server (SMTP or IMAP) refused the login, or wants one."""

    exit_code = ExitCode.AUTH


class SourceMissingError(MailcastError):
    """`bounces import`: the source does not exist, cannot be read, or is not a mailbox."""

    exit_code = ExitCode.NOINPUT


class StateError(MailcastError):
    """The state file cannot be read, is damaged or is of a newer version."""

    exit_code = ExitCode.STATE


class CampaignBusyError(MailcastError):
    """Another process holds the campaign."""

    exit_code = ExitCode.TEMPFAIL


@dataclass
class ProblemsError(MailcastError):
    """Validation found problems; every one of them is listed, not the first only."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    kind: ExitCode = ExitCode.DATA
    partial: Any = None  # for a campaign file: the campaign without its faulty keys, so data can still be checked

    def __post_init__(self) -> None:
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")
        self.exit_code = self.kind

    def __str__(self) -> str:
        lines = [self.message]
        for p in self.problems:
            where = p.location
            lines.append(f"  {where}: {p.message}" if where else f"  {p.message}")
        return "\n".join(lines)
