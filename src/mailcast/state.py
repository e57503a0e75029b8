"""The SQLite state file: runs, their recipients, sender-domain days and the suppression list.

Every change of state is one transaction. Claims (a recipient moving to `sending`) are
committed with a full sync before the message is handed over, so a crash at any moment
leaves each recipient either untouched, in doubt, or finished, never sent twice unknowingly.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mailcast import schema
from mailcast.errors import StateError
from mailcast.message import make_message_id

SCHEMA_VERSION = schema.SCHEMA_VERSION
OPEN_ATTEMPTS = 100
RECIPIENT_STATUSES = ("pending", "sending", "sent", "deferred", "failed", "skipped", "suppressed")
UNFINISHED = ("pending", "sending", "deferred")
PAUSED_BY_HAND = "paused by hand"


@dataclass(frozen=True)
class Run:
    id: int
    campaign: str
    campaign_file: str
    type: str
    occurrence: datetime | None
    token: str
    sender_domain: str
    status: str
    reason: str | None
    resume_at: datetime | None
    created_at: datetime
    updated_at: datetime
    held: bool = False  # paused by hand: only `mailcast resume` lifts it
    fingerprint: str | None = None  # of the content the run started with (subject, templates, attachments)
    in_doubt_noted: bool = False  # run-due has told once that only rows in doubt are left

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "cancelled")

    @property
    def paused_by_hand(self) -> bool:
        return self.status == "paused" and self.held


@dataclass(frozen=True)
class NewRecipient:
    row: int
    email: str
    key: str
    values: dict[str, str]
    status: str = "pending"
    reply: str | None = None


@dataclass(frozen=True)
class Claimed:
    row: int
    email: str
    key: str
    values: dict[str, str]
    attempts: int


@dataclass(frozen=True)
class RecipientOutcome:
    row: int
    email: str
    status: str
    attempts: int
    last_reply: str | None
    sent_at: str | None
    message_id: str | None


@dataclass(frozen=True)
class DomainDay:
    domain: str
    day: date
    claimed: int
    sent: int
    rejected: int


@dataclass(frozen=True)
class Suppression:
    email: str
    key: str
    reason: str
    added_at: str
    expires_at: str | None


def _iso(moment: datetime | None) -> str | None:
    """Times are stored in UTC so that they compare correctly as text."""
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class StateStore:
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
        self._identity: tuple[int, int] = (0, 0)
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

    def _file_identity(self) -> tuple[int, int]:
        info = os.stat(self.path)
        return info.st_dev, info.st_ino

    def check_still_there(self) -> None:
        """Raise StateError (74) when the path no longer names the file this store opened: deleted,
        moved away or replaced. What is written from then on would be recorded nowhere anyone reads."""
        try:
            same = self._file_identity() == self._identity
        except FileNotFoundError:
            raise StateError(
                f"the state file {self.path} was deleted while mailcast was using it; nothing more is sent",
                hint="What this run sent since then is recorded nowhere. Restore the file from a backup, or find "
                "who deleted it; mailcast refuses to start over in its place.",
            ) from None
        if not same:
            raise StateError(
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

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; `durable` syncs it to disk before returning (used before mail leaves)."""
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
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    # Runs -----------------------------------------------------------------

    def _run(self, row: sqlite3.Row) -> Run:
        return Run(
            id=row["id"],
            campaign=row["campaign"],
            campaign_file=row["campaign_file"],
            type=row["type"],
            occurrence=_time(row["occurrence"]),
            token=row["token"],
            sender_domain=row["sender_domain"],
            status=row["status"],
            reason=row["reason"],
            resume_at=_time(row["resume_at"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            held=bool(row["held"]),
            fingerprint=row["fingerprint"],
            in_doubt_noted=bool(row["in_doubt_noted"]),
        )

    def runs(self, campaign: str | None = None) -> list[Run]:
        if campaign is None:
            rows = self._query("SELECT * FROM runs ORDER BY campaign, id")
        else:
            rows = self._query("SELECT * FROM runs WHERE campaign = ? ORDER BY id", (campaign,))
        return [self._run(r) for r in rows]

    def latest_run(self, campaign: str) -> Run | None:
        rows = self._query("SELECT * FROM runs WHERE campaign = ? ORDER BY id DESC LIMIT 1", (campaign,))
        return self._run(rows[0]) if rows else None

    def get_run(self, run_id: int) -> Run:
        return self._run(self._query("SELECT * FROM runs WHERE id = ?", (run_id,))[0])

    def latest_occurrence(self, campaign: str) -> datetime | None:
        rows = self._query(
            "SELECT occurrence FROM runs WHERE campaign = ? AND occurrence IS NOT NULL ORDER BY id DESC LIMIT 1",
            (campaign,),
        )
        return _time(rows[0][0]) if rows else None

    def create_run(
        self,
        *,
        campaign: str,
        campaign_file: str,
        type: str,
        occurrence: datetime | None,
        sender_domain: str,
        now: datetime,
        recipients: Iterable[NewRecipient],
        fingerprint: str | None = None,
    ) -> Run:
        """Record a new run and the snapshot of its recipients, in one transaction."""
        with self.transaction(durable=True) as db:
            cursor = db.execute(
                "INSERT INTO runs (campaign, campaign_file, type, occurrence, token, sender_domain, status,"
                " created_at, updated_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, 'sending', ?, ?, ?)",
                (
                    campaign,
                    campaign_file,
                    type,
                    _iso(occurrence),
                    secrets.token_hex(8),
                    sender_domain,
                    _iso(now),
                    _iso(now),
                    fingerprint,
                ),
            )
            run_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO recipients (run_id, row, email, key, vars, status, last_reply) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (run_id, r.row, r.email, r.key, json.dumps(r.values, ensure_ascii=False), r.status, r.reply)
                    for r in recipients
                ),
            )
        assert run_id is not None
        return self.get_run(run_id)

    def set_run_status(
        self,
        run_id: int,
        status: str,
        *,
        now: datetime,
        reason: str | None = None,
        resume_at: datetime | None = None,
        held: bool = False,
        unless_stopped: bool = False,
        unless_finished: bool = False,
    ) -> bool:
        """Change a run's status; True if it changed. Checked in the same statement, so nothing
        that happened meanwhile is overwritten: with `unless_stopped`, not if the run was cancelled
        or paused by hand; with `unless_finished`, not if it completed or was cancelled. `held`
        marks a pause by hand."""
        # a new pass may leave new rows in doubt: run-due tells of them again
        sql = (
            "UPDATE runs SET status = ?, reason = ?, resume_at = ?, updated_at = ?, held = ?,"
            " in_doubt_noted = CASE WHEN ? = 'sending' THEN 0 ELSE in_doubt_noted END WHERE id = ?"
        )
        params: list[Any] = [status, reason, _iso(resume_at), _iso(now), int(held), status, run_id]
        if unless_stopped:
            sql += " AND status != 'cancelled' AND NOT (status = 'paused' AND held)"
        if unless_finished:
            sql += " AND status NOT IN ('completed', 'cancelled')"
        with self.transaction() as db:
            return db.execute(sql, params).rowcount > 0

    def move_campaign(self, campaign: str, campaign_file: str) -> None:
        """The campaign file moved: its runs go with it."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET campaign_file = ? WHERE campaign = ?", (campaign_file, campaign))

    def note(self, run_id: int, text: str, *, now: datetime, fingerprint: str | None = None) -> None:
        """Keep a note on the run (shown by report); with `fingerprint`, the content it goes on with."""
        with self.transaction() as db:
            db.execute("INSERT INTO run_notes (run_id, at, note) VALUES (?, ?, ?)", (run_id, _iso(now), text))
            if fingerprint is not None:
                db.execute("UPDATE runs SET fingerprint = ? WHERE id = ?", (fingerprint, run_id))

    def set_fingerprint(self, run_id: int, fingerprint: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET fingerprint = ? WHERE id = ?", (fingerprint, run_id))

    def notes(self, run_id: int) -> list[tuple[str, str]]:
        """(time, text) of each note on the run, oldest first."""
        return [
            (r[0], r[1])
            for r in self._query("SELECT at, note FROM run_notes WHERE run_id = ? ORDER BY rowid", (run_id,))
        ]

    def mark_in_doubt_noted(self, run_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET in_doubt_noted = 1 WHERE id = ?", (run_id,))

    def counts(self, run_id: int) -> dict[str, int]:
        counts = dict.fromkeys(RECIPIENT_STATUSES, 0)
        for row in self._query("SELECT status, COUNT(*) FROM recipients WHERE run_id = ? GROUP BY status", (run_id,)):
            counts[row[0]] = row[1]
        return counts

    def next_retry(self, run_id: int) -> datetime | None:
        rows = self._query("SELECT MIN(retry_at) FROM recipients WHERE run_id = ? AND status = 'deferred'", (run_id,))
        return _time(rows[0][0]) if rows else None

    def requeue(self, run_id: int, *, statuses: tuple[str, ...], due_by: datetime | None = None) -> int:
        """Put recipients in these statuses back to pending (deferred ones only when their retry time has come)."""
        marks = ",".join("?" * len(statuses))
        sql = f"UPDATE recipients SET status = 'pending' WHERE run_id = ? AND status IN ({marks})"
        params: list[Any] = [run_id, *statuses]
        if due_by is not None:
            sql += " AND (retry_at IS NULL OR retry_at <= ?)"
            params.append(_iso(due_by))
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    def claim(self, run: Run, *, day: date, limit: int | None, now: datetime) -> Claimed | str:
        """Claim the next pending recipient for sending, or say why not.

        One durable transaction checks the run's status, the suppression list and the sender
        domain's allowance for the day, and marks the recipient `sending`. Returns the claimed
        recipient, or one of "done", "limit", or the run's status when it was paused or cancelled.
        """
        day_text = day.isoformat()
        if self._day_rows != (run.sender_domain, day_text):
            with self.transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO domain_days (domain, day) VALUES (?, ?)", (run.sender_domain, day_text)
                )
            self._day_rows = (run.sender_domain, day_text)
        with self.transaction(durable=True) as db:
            while True:
                row = db.execute(
                    "SELECT r.row, r.email, r.key, r.vars, r.attempts, run.status AS run_status,"
                    " (SELECT reason FROM suppressions s WHERE s.key = r.key AND (s.expires_at IS NULL OR s.expires_at > ?))"
                    " AS suppressed FROM recipients r JOIN runs run ON run.id = r.run_id"
                    " WHERE r.run_id = ? AND r.status = 'pending' ORDER BY r.row LIMIT 1",
                    (_iso(now), run.id),
                ).fetchone()
                if row is None:
                    status: str = db.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
                    return status if status in ("paused", "cancelled") else "done"
                if row["run_status"] in ("paused", "cancelled"):
                    return str(row["run_status"])
                if row["suppressed"] is None:
                    break
                db.execute(
                    "UPDATE recipients SET status = 'suppressed', last_reply = ? WHERE run_id = ? AND key = ?",
                    (f"suppressed: {row['suppressed']}", run.id, row["key"]),
                )
            room = db.execute(
                "UPDATE domain_days SET claimed = claimed + 1 WHERE domain = ? AND day = ? AND (? IS NULL OR claimed < ?)",
                (run.sender_domain, day_text, limit, limit),
            ).rowcount
            if not room:
                return "limit"
            # The Message-ID is known before the message leaves, so a row left in doubt can be looked for
            db.execute(
                "UPDATE recipients SET status = 'sending', attempts = attempts + 1, message_id = ?"
                " WHERE run_id = ? AND key = ?",
                (make_message_id(run.token, row["key"], run.sender_domain), run.id, row["key"]),
            )
        self.check_still_there()  # the claim is on disk, in the file that is still at the path
        return Claimed(
            row=row["row"],
            email=row["email"],
            key=row["key"],
            values=json.loads(row["vars"]),
            attempts=row["attempts"] + 1,
        )

    def record(
        self,
        run: Run,
        key: str,
        *,
        status: str,
        reply: str,
        message_id: str,
        day: date,
        now: datetime,
        retry_at: datetime | None = None,
        suppress_reason: str | None = None,
        email: str = "",
        counted: bool = True,
    ) -> None:
        """Record what became of a claimed recipient, and count it on the domain's day.

        `status="sending"` keeps the recipient in doubt (the message went out whole but no reply
        came): its share of the day stays used. `counted=False` is for a message that never
        reached a server (it could not be built): its share of the day's allowance is given back.
        """
        column = {"sent": "sent", "failed": "rejected"}.get(status) if counted else None
        with self.transaction() as db:
            db.execute(
                "UPDATE recipients SET status = ?, last_reply = ?, message_id = ?, retry_at = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE run_id = ? AND key = ?",
                (status, reply, message_id, _iso(retry_at), status, _iso(now), run.id, key),
            )
            if column:
                db.execute(
                    f"UPDATE domain_days SET {column} = {column} + 1 WHERE domain = ? AND day = ?",
                    (run.sender_domain, day.isoformat()),
                )
            elif status != "sending" or not counted:  # not sent after all: give the day's allowance back
                db.execute(
                    "UPDATE domain_days SET claimed = MAX(claimed - 1, 0) WHERE domain = ? AND day = ?",
                    (run.sender_domain, day.isoformat()),
                )
            if suppress_reason:
                db.execute(
                    "INSERT OR REPLACE INTO suppressions (key, email, reason, added_at, expires_at) VALUES (?, ?, ?, ?, NULL)",
                    (key, email or key, suppress_reason, _iso(now)),
                )

    def take_back_rejections(self, run: Run, rejected: Iterable[tuple[str, date, bool]]) -> None:
        """Undo recorded rejections that were the server's fault, not the recipients': each (key,
        day, suppressed) goes back to pending, off the suppression list it was put on, and out of
        the day's counts, so warm-up does not hold it against the domain."""
        with self.transaction() as db:
            for key, day, suppressed in rejected:
                db.execute(
                    "UPDATE recipients SET status = 'pending' WHERE run_id = ? AND key = ? AND status = 'failed'",
                    (run.id, key),
                )
                db.execute(
                    "UPDATE domain_days SET rejected = MAX(rejected - 1, 0), claimed = MAX(claimed - 1, 0)"
                    " WHERE domain = ? AND day = ?",
                    (run.sender_domain, day.isoformat()),
                )
                if suppressed:
                    db.execute("DELETE FROM suppressions WHERE key = ? AND reason LIKE 'bounced:%'", (key,))

    def release_claim(self, run: Run, key: str, *, day: date) -> None:
        """Undo a claim whose message never left (the run stopped first): pending again, allowance back."""
        with self.transaction() as db:
            db.execute(
                "UPDATE recipients SET status = 'pending', attempts = MAX(attempts - 1, 0) WHERE run_id = ? AND key = ?",
                (run.id, key),
            )
            db.execute(
                "UPDATE domain_days SET claimed = MAX(claimed - 1, 0) WHERE domain = ? AND day = ?",
                (run.sender_domain, day.isoformat()),
            )

    def columns(self, run_id: int) -> list[str]:
        """The CSV columns recorded in the run's snapshot."""
        rows = self._query("SELECT vars FROM recipients WHERE run_id = ? AND vars != '{}' LIMIT 1", (run_id,))
        return list(json.loads(rows[0][0])) if rows else []

    def outcomes(self, run_id: int) -> list[RecipientOutcome]:
        rows = self._query(
            "SELECT row, email, status, attempts, last_reply, sent_at, message_id FROM recipients WHERE run_id = ? ORDER BY row",
            (run_id,),
        )
        return [RecipientOutcome(*tuple(r)) for r in rows]

    def in_doubt(self, run_id: int) -> list[RecipientOutcome]:
        return [o for o in self.outcomes(run_id) if o.status == "sending"]

    def first_seen(self, campaign: str, *, now: datetime) -> datetime:
        """When run-due first saw this recurring campaign (recorded now if never)."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO schedules (campaign, first_seen) VALUES (?, ?)", (campaign, _iso(now)))
            row = db.execute("SELECT first_seen FROM schedules WHERE campaign = ?", (campaign,)).fetchone()
        return datetime.fromisoformat(row[0])

    # Sender domains --------------------------------------------------------

    def domain_days(self, domain: str | None = None) -> list[DomainDay]:
        if domain is None:
            rows = self._query("SELECT * FROM domain_days ORDER BY domain, day")
        else:
            rows = self._query("SELECT * FROM domain_days WHERE domain = ? ORDER BY day", (domain,))
        return [
            DomainDay(r["domain"], date.fromisoformat(r["day"]), r["claimed"], r["sent"], r["rejected"]) for r in rows
        ]

    def remember_limits(self, domain: str, limits: dict[str, Any], *, now: datetime) -> None:
        """Keep the limits a campaign last sent this domain with, for `mailcast warmup`."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO sender_domains (domain, limits, updated_at) VALUES (?, ?, ?)",
                (domain, json.dumps(limits), _iso(now)),
            )

    def sender_domains(self) -> dict[str, dict[str, Any]]:
        """Each sender domain with the limits it last sent with."""
        rows = self._query("SELECT domain, limits FROM sender_domains ORDER BY domain")
        return {r[0]: json.loads(r[1]) for r in rows}

    # Suppression list ------------------------------------------------------

    def suppress(
        self, entries: Iterable[tuple[str, str]], *, reason: str, now: datetime, expires_at: datetime | None
    ) -> int:
        """Add (email, key) pairs; an existing entry is replaced. Returns how many were written."""
        with self.transaction() as db:
            cursor = db.executemany(
                "INSERT OR REPLACE INTO suppressions (key, email, reason, added_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                ((key, email, reason, _iso(now), _iso(expires_at)) for email, key in entries),
            )
            return cursor.rowcount

    def unsuppress(self, keys: Iterable[str]) -> int:
        with self.transaction() as db:
            return db.executemany("DELETE FROM suppressions WHERE key = ?", ((k,) for k in keys)).rowcount

    def suppressions(self, *, now: datetime) -> list[Suppression]:
        rows = self._query(
            "SELECT email, key, reason, added_at, expires_at FROM suppressions"
            " WHERE expires_at IS NULL OR expires_at > ? ORDER BY email",
            (_iso(now),),
        )
        return [Suppression(*tuple(r)) for r in rows]

    def suppressed_keys(self, *, now: datetime) -> dict[str, str]:
        return {s.key: s.reason for s in self.suppressions(now=now)}
