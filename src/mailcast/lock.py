"""One process per campaign: an advisory lock that dies with its process (kill -9 included)."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from mailcast.errors import CampaignBusyError, StateError


class CampaignLock:
    """`with CampaignLock(folder, name):` holds the campaign or raises CampaignBusyError (exit 75)."""

    def __init__(self, folder: Path, campaign: str) -> None:
        digest = hashlib.sha256(campaign.encode("utf-8")).hexdigest()[:16]
        self.path = folder / f"{digest}.lock"
        self.campaign = campaign
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot create the lock file {self.path}: {exc.strerror}",
                hint="Check that the state file's folder is writable, or choose another with --state.",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise CampaignBusyError(
                f"campaign {self.campaign!r} is being worked on by process {holder}",
                hint="Wait for it to finish (mailcast status shows its progress), or stop it with mailcast pause.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def held_elsewhere(self) -> bool:
        """True when another process holds this campaign now (used by status)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CampaignLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
