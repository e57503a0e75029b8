"""The state file as a file: created whole, guarded while open, upgraded, its errors explained.

Only a path where nothing exists starts a new file. An existing file of 0 bytes, or a
`-wal`/`-shm` file without its database, is what is left of a state file that was emptied or
deleted: it is refused, never taken for a new one. While open, the path is checked at each claim
to still name the file that was opened. An older schema is upgraded in place after a backup
(schema.py). `StateStore` (state.py) keeps the records in it.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from mailcast import schema
from mailcast.errors import StateError

OPEN_ATTEMPTS = 100


class StateFileGoneError(StateError):
    """The path no longer names the file this store opened (deleted, moved, replaced, emptied): what
    was written to it is written, but where nobody reads."""


Opened = TypeVar("Opened", bound="StateFile")


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class StateFile:
    """The state file. Open with `StateStore(path)`; close with `close()` or a `with` block.

    Only a path where nothing exists starts a new file. An existing file of 0 bytes, or a
    `-wal`/`-shm` file without its database, is what is left of a state file that was emptied or
    deleted: it is refused, never taken for a new one. While open, the store checks at each claim
    that the path still names the file it opened (deleted or replaced: the run stops at once).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._day_rows: tuple[str, str] | None = None  # the (domain, day) row known to exist
        self._synchronous = ""
        self._lock = threading.RLock()  # one connection, shared by the send loop's threads
        self._identity: tuple[int, int, int] = (0, 0, 0)
        if path.is_dir():
            raise StateError(
                f"the state file {path} is a folder",
                hint=f"Point --state / MAILCAST_STATE at a file inside it, such as {path}/mailcast.db.",
            )
        try:
            self._refuse_remains()
            if not path.exists():
                self._create()
            self._open()
            self._identity = self._file_identity()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        except OSError as exc:
            raise StateError(
                f"cannot open the state file {path}: {exc.strerror or exc}",
                hint="Check the path and its permissions, or choose another with --state or MAILCAST_STATE.",
            ) from None

    def _refuse_remains(self) -> None:
        """An emptied file or a journal without its file: the runs it held are gone, not new."""
        path = self.path
        if path.exists() and path.stat().st_size == 0:
            raise StateError(
                f"the state file {path} exists but is empty (0 bytes): it was emptied, or never written",
                hint="mailcast never takes an emptied state file for a new one, since everyone would be sent "
                "again. Restore the file from a backup; to start a new state file on purpose, delete it first.",
            )
        remains = [p.name for p in (_beside(path, "-wal"), _beside(path, "-shm")) if p.exists()]
        if remains and not path.exists():
            raise StateError(
                f"the state file {path} is gone but {' and '.join(remains)} beside it remain: it was deleted",
                hint="Restore the file from a backup; to start a new state file on purpose, delete "
                f"{' and '.join(remains)} too.",
            )

    def _create(self) -> None:
        """A new state file, laid out beside its path and then linked into place, so that no other
        process ever sees a file without its tables (and an empty file always means damage)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        draft = _beside(self.path, f".new-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            db = sqlite3.connect(draft, isolation_level=None)
            try:
                db.execute("BEGIN")
                schema.create(db)
                db.execute("COMMIT")
            finally:
                db.close()
            with suppress(FileExistsError):  # another process created it first: use theirs
                os.link(draft, self.path)
        finally:
            with suppress(FileNotFoundError):
                draft.unlink()

    def _open(self) -> None:
        """Connect (never creating a file) and check or upgrade the schema. While another process
        switches a new file to WAL, SQLite answers "locked" at once instead of waiting, so opening
        is tried again briefly."""
        uri = "file:" + quote(str(self.path.absolute())) + "?mode=rw"
        for attempt in range(OPEN_ATTEMPTS):
            self._db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._prepare()
                return
            except sqlite3.OperationalError as exc:
                self._db.close()
                if "locked" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
            except StateError as exc:
                self._db.close()
                if "locked" not in exc.message or attempt == OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)

    def _file_identity(self) -> tuple[int, int, int]:
        """Device, inode and size: the size of a state file never shrinks (no VACUUM) but when it is emptied."""
        info = os.stat(self.path)
        return info.st_dev, info.st_ino, info.st_size

    def check_still_there(self) -> None:
        """Raise StateError (74) when the path no longer names the file this store opened: deleted,
        moved away, replaced or emptied. What is written from then on would be recorded nowhere
        anyone reads."""
        try:
            device, inode, size = self._file_identity()
        except FileNotFoundError:
            raise StateFileGoneError(
                f"the state file {self.path} was deleted or moved away while mailcast was using it; nothing more "
                "is sent",
                hint="If it was moved, move it back (with the -wal and -shm files beside it) and send again: the run "
                "goes on. If it was deleted, what this run sent since is recorded nowhere: restore the file from a "
                "backup; mailcast refuses to start over in its place.",
            ) from None
        if size < self._identity[2]:
            raise StateFileGoneError(
                f"the state file {self.path} was emptied or cut short while mailcast was using it; "
                "nothing more is sent",
                hint="Restore the file from a backup before sending again; what this run sent is in report "
                "only if the file comes back whole.",
            )
        if (device, inode) != self._identity[:2]:
            raise StateFileGoneError(
                f"the state file {self.path} was replaced by another file while mailcast was using it; "
                "nothing more is sent",
                hint="Put the original file back (from a backup) before sending again.",
            )

    @property
    def locks_folder(self) -> Path:
        """Beside the real file, so that every path that leads to it (a symlink too) shares the locks."""
        real = self.path.resolve()
        return real.parent / f"{real.name}.locks"

    @property
    def state_id(self) -> str:
        """This file's identity, given at creation (markers beside campaigns name it)."""
        return str(self._query("SELECT value FROM meta WHERE key = 'state_id'")[0][0])

    def _damaged(self, exc: BaseException) -> StateError:
        """The StateError for what SQLite said: locked, not writable, not openable, full or damaged."""
        said = str(exc)
        if "readonly" in said or "read-only" in said:
            return StateError(
                f"the state file {self.path} cannot be written: {said}",
                hint="Give your user write access to the file and its folder (SQLite writes beside it), "
                "or choose another with --state or MAILCAST_STATE.",
            )
        if "disk is full" in said or "disk I/O" in said:
            return StateError(
                f"the disk holding the state file {self.path} is full (or failing): {said}",
                hint="Free space on that disk and run the command again: the state file is intact, and "
                "what was not recorded was not sent.",
            )
        if "unable to open" in said:
            return StateError(
                f"cannot open the state file {self.path}: {said}",
                hint="Check the path and its permissions, or choose another with --state or MAILCAST_STATE.",
            )
        if "locked" in said:
            return StateError(
                f"the state file {self.path} stayed locked by another process for 30 seconds",
                hint="Try again when the other mailcast command has finished.",
            )
        return StateError(
            f"the state file {self.path} cannot be read: {exc}",
            hint="It is damaged or not a mailcast state file. Restore it from a backup; "
            "a new state file would not know who was already sent.",
        )

    def _prepare(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise StateError(
                f"{self.path} is an SQLite file but not a mailcast state file",
                hint="Point --state / MAILCAST_STATE at a mailcast state file, or at a new path to start one.",
            )
        version = self._version()
        if version > schema.SCHEMA_VERSION:
            raise StateError(
                f"the state file {self.path} was written by a newer mailcast (schema {version}; "
                f"this one reads {schema.SCHEMA_VERSION})",
                hint="Upgrade mailcast (pip install -U mailcast) before using this state file.",
            )
        if version < 1:
            raise self._damaged(ValueError("no schema version"))
        if version < schema.SCHEMA_VERSION:
            self._upgrade(version)

    def _version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _upgrade(self, version: int) -> None:
        """Back the file up beside itself, then upgrade it in one transaction."""
        backup = _beside(self.path, f".bak-v{version}")
        copies = 1
        while backup.exists():
            copies += 1
            backup = _beside(self.path, f".bak-v{version}-{copies}")
        target = sqlite3.connect(backup)
        try:
            self._db.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
        with self.transaction() as db:
            found = self._version()  # another process may have upgraded it meanwhile
            if found < schema.SCHEMA_VERSION:
                schema.upgrade(db, found)

    def close(self) -> None:
        self._db.close()

    def __enter__(self: Opened) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; `durable` syncs it to disk before returning (used before mail leaves).
        One thread at a time: the store may be called from several threads."""
        with self._lock:
            yield from self._transaction(durable)

    def _transaction(self, durable: bool) -> Iterator[sqlite3.Connection]:
        try:
            mode = "FULL" if durable else "NORMAL"
            if mode != self._synchronous:
                self._db.execute(f"PRAGMA synchronous={mode}")
                self._synchronous = mode
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        try:
            yield self._db
        except sqlite3.DatabaseError as exc:
            self._rollback()
            raise self._damaged(exc) from None
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise self._damaged(exc) from None

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already (it may have, after a full disk)."""
        if self._db.in_transaction:
            with suppress(sqlite3.DatabaseError):
                self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
