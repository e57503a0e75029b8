"""The SQLite state file: runs, their recipients, sender-domain days and the suppression list.

Every change of state is one transaction. Claims (a recipient moving to `sending`) are
committed with a full sync before the message is handed over, so a crash at any moment
leaves each recipient either untouched, in doubt, or finished, never sent twice unknowingly.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal

from mailcast import schema
from mailcast.message_ids import recipient_ids
from mailcast.state_file import StateFile
from mailcast.vocabulary import FINISHED, IN_DOUBT, RECIPIENT_STATUSES, RecipientStatus, RunStatus, StopReason
from mailcast.warmup import DayRecord

SCHEMA_VERSION = schema.SCHEMA_VERSION
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
    status: RunStatus
    reason: str | None
    resume_at: datetime | None
    created_at: datetime
    updated_at: datetime
    held: bool = False  # paused by hand: only `mailcast resume` lifts it
    bounce_address: str | None = None  # VERP: each recipient gets a tag for its envelope sender
    fingerprint: str | None = None  # of the content the run started with (subject, templates, attachments)
    in_doubt_noted: bool = False  # run-due has told once that only rows in doubt are left

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def paused_by_hand(self) -> bool:
        return self.status == "paused" and self.held


@dataclass(frozen=True)
class NewRecipient:
    row: int
    email: str
    key: str
    values: dict[str, str]
    status: RecipientStatus = "pending"
    reply: str | None = None


@dataclass(slots=True)  # made once per message: a frozen dataclass costs more to make
class Claimed:
    row: int
    email: str
    key: str
    values: dict[str, str]
    tag: str | None = None  # the VERP tag of its envelope sender (with a campaign's bounce_address)
    message_id: str | None = None  # given when the run was created


@dataclass(frozen=True)
class RecipientOutcome:
    row: int
    email: str
    status: RecipientStatus
    attempts: int
    last_reply: str | None
    sent_at: str | None
    message_id: str | None


@dataclass(frozen=True)
class SentTo:
    """A recipient a message went to, as a report read back from a mailbox is matched to it."""

    run_id: int
    key: str
    email: str
    status: RecipientStatus
    sent_at: str | None
    sender_domain: str
    campaign: str


@dataclass(frozen=True)
class FeedbackChange:
    """One change a report makes; see StateStore.apply_feedback."""

    key: str
    email: str
    run_id: int | None = None
    status: RecipientStatus | None = None  # bounced or complained: the recipient's new status
    reply: str | None = None  # the recipient's last reply becomes this
    rejected_on: tuple[str, date] | None = None  # (sender domain, day): one sent becomes one rejected, for warm-up
    soft_status: str | None = None  # a soft bounce to remember (three in 30 days suppress)
    suppress_reason: str | None = None
    suppress_until: datetime | None = None


def _apply_change(db: sqlite3.Connection, change: FeedbackChange, now: datetime) -> None:
    if change.run_id is not None and (change.status or change.reply):
        db.execute(
            "UPDATE recipients SET status = COALESCE(?, status), last_reply = COALESCE(?, last_reply)"
            " WHERE run_id = ? AND key = ?",
            (change.status, change.reply, change.run_id, change.key),
        )
    if change.rejected_on is not None:
        domain, day = change.rejected_on
        db.execute(
            "UPDATE domain_days SET sent = MAX(sent - 1, 0), rejected = rejected + 1 WHERE domain = ? AND day = ?",
            (domain, day.isoformat()),
        )
    if change.soft_status is not None:
        db.execute(
            "INSERT INTO soft_bounces (key, run_id, at, status) VALUES (?, ?, ?, ?)",
            (change.key, change.run_id, _iso(now), change.soft_status),
        )
    if change.suppress_reason is not None:
        _suppress_for_at_least(db, change.key, change.email, change.suppress_reason, now, change.suppress_until)


# An entry is replaced only by one that lasts longer: a bounce or three soft bounces never shorten an
# unsubscribe, a complaint or an entry made by hand.
_SUPPRESS_FOR_AT_LEAST = (
    "INSERT INTO suppressions (key, email, reason, added_at, expires_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET email = excluded.email, reason = excluded.reason,"
    " added_at = excluded.added_at, expires_at = excluded.expires_at"
    " WHERE suppressions.expires_at IS NOT NULL"
    " AND (excluded.expires_at IS NULL OR excluded.expires_at > suppressions.expires_at)"
)


def _suppress_for_at_least(
    db: sqlite3.Connection, key: str, email: str, reason: str, now: datetime, until: datetime | None
) -> None:
    db.execute(_SUPPRESS_FOR_AT_LEAST, (key, email, reason, _iso(now), _iso(until)))


@dataclass(frozen=True)
class Suppression:
    email: str
    key: str
    reason: str
    added_at: str
    expires_at: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"email": self.email, "reason": self.reason, "added_at": self.added_at, "expires_at": self.expires_at}


def _iso(moment: datetime | None) -> str | None:
    """Times are stored in UTC so that they compare correctly as text."""
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(slots=True)  # made once per message: a frozen dataclass costs more to make
class Outcome:
    """What became of a claimed recipient. `status=IN_DOUBT` keeps it in doubt (the message went out
    whole but no reply came): its share of the day stays used. `counted=False` is for a message that
    never reached a server (it could not be built): its share of the day's allowance is given back, and
    its attempt (so no Message-ID is shown for it)."""

    key: str
    status: RecipientStatus
    reply: str
    day: date  # the day the claim was counted on; the outcome is counted on the same day
    now: datetime
    retry_at: datetime | None = None
    suppress_reason: str | None = None
    email: str = ""
    counted: bool = True
    retries: int = 0  # tries of the same message after the first, within this claim (a 4xx, a lost connection)


def _write_outcome(db: sqlite3.Connection, run: Run, outcome: Outcome, *, sent_counted_by: date | None = None) -> None:
    """Write the outcome and count it on its day; a 250 on `sent_counted_by` is left for the caller
    to count with the next claim, in the same statement."""
    status, day = outcome.status, outcome.day.isoformat()
    db.execute(
        "UPDATE recipients SET status = ?, last_reply = ?, retry_at = ?, attempts = MAX(attempts + ?, 0),"
        " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE run_id = ? AND key = ?",
        (
            status,
            outcome.reply,
            _iso(outcome.retry_at),
            outcome.retries if outcome.counted else -1,  # a message never built was never tried
            status,
            _iso(outcome.now),
            run.id,
            outcome.key,
        ),
    )
    column = {"sent": "sent", "failed": "rejected"}.get(status) if outcome.counted else None
    if column == "sent" and outcome.day == sent_counted_by:
        pass
    elif column:
        db.execute(
            f"UPDATE domain_days SET {column} = {column} + 1 WHERE domain = ? AND day = ?", (run.sender_domain, day)
        )
    elif status != IN_DOUBT or not outcome.counted:  # not sent after all: give the day's allowance back
        db.execute(
            "UPDATE domain_days SET claimed = MAX(claimed - 1, 0) WHERE domain = ? AND day = ?",
            (run.sender_domain, day),
        )
    if outcome.suppress_reason:
        email = outcome.email or outcome.key
        _suppress_for_at_least(db, outcome.key, email, outcome.suppress_reason, outcome.now, None)


def _claim_one(
    db: sqlite3.Connection, run: Run, day: str, limit: int | None, now: str | None, *, sent: int = 0
) -> Claimed | StopReason:
    """Inside a claiming transaction: the next pending recipient, marked `sending`, or why not. The
    day's count of messages sent is raised by `sent` in the same statement as its claims."""
    while True:
        row = db.execute(
            "SELECT r.row, r.email, r.key, r.vars, r.message_id, r.tag, run.status AS run_status,"
            " (SELECT reason FROM suppressions s WHERE s.key = r.key AND (s.expires_at IS NULL OR s.expires_at > ?))"
            " AS suppressed FROM recipients r JOIN runs run ON run.id = r.run_id"
            " WHERE r.run_id = ? AND r.status = 'pending' ORDER BY r.row LIMIT 1",
            (now, run.id),
        ).fetchone()
        if row is None:
            status = db.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
            return "paused" if status == "paused" else "cancelled" if status == "cancelled" else "done"
        if row["run_status"] == "paused":
            return "paused"
        if row["run_status"] == "cancelled":
            return "cancelled"
        if row["suppressed"] is None:
            break
        db.execute(
            "UPDATE recipients SET status = 'suppressed', last_reply = ? WHERE run_id = ? AND key = ?",
            (f"suppressed: {row['suppressed']}", run.id, row["key"]),
        )
    room = db.execute(
        "UPDATE domain_days SET claimed = claimed + 1, sent = sent + ?"
        " WHERE domain = ? AND day = ? AND (? IS NULL OR claimed < ?)",
        (sent, run.sender_domain, day, limit, limit),
    ).rowcount
    if not room:
        return "limit"
    message_id, tag = _ids(db, run, row)
    db.execute(
        "UPDATE recipients SET status = 'sending', attempts = attempts + 1 WHERE run_id = ? AND key = ?",
        (run.id, row["key"]),
    )
    values = json.loads(row["vars"])
    return Claimed(row["row"], row["email"], row["key"], values, tag=tag, message_id=message_id)


def _ids(db: sqlite3.Connection, run: Run, row: sqlite3.Row) -> tuple[str, str | None]:
    """The row's Message-ID and VERP tag, given when its run was created. A row that an older mailcast
    wrote into this file, while this one upgraded it, is given them now."""
    message_id, tag = row["message_id"], row["tag"]
    if message_id is None or (tag is None and run.bounce_address):
        made_id, made_tag = recipient_ids(
            run.id, run.token, row["key"], run.sender_domain, verp=bool(run.bounce_address)
        )
        message_id, tag = message_id or made_id, tag or made_tag
        db.execute(
            "UPDATE recipients SET message_id = ?, tag = ? WHERE run_id = ? AND key = ?",
            (message_id, tag, run.id, row["key"]),
        )
    return message_id, tag


class StateStore(StateFile):
    """The records in the state file: runs, their recipients, sender-domain days, suppressions.
    Open with `StateStore(path)`; close with `close()` or a `with` block."""

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
            bounce_address=row["bounce_address"],
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
        bounce_address: str | None = None,
        unsubscribe_mailto: str | None = None,
    ) -> Run:
        """Record a new run and the snapshot of its recipients, in one transaction. The bounce and
        unsubscribe addresses are kept so that `bounces import` knows what to look for."""
        token = secrets.token_hex(8)
        with self.transaction(durable=True) as db:
            cursor = db.execute(
                "INSERT INTO runs (campaign, campaign_file, type, occurrence, token, sender_domain, status,"
                " created_at, updated_at, fingerprint, bounce_address, unsubscribe_mailto)"
                " VALUES (?, ?, ?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?)",
                (
                    campaign,
                    campaign_file,
                    type,
                    _iso(occurrence),
                    token,
                    sender_domain,
                    _iso(now),
                    _iso(now),
                    fingerprint,
                    bounce_address,
                    unsubscribe_mailto,
                ),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            # Each recipient's Message-ID and VERP tag are known now, so a claim need not write them
            db.executemany(
                "INSERT INTO recipients (run_id, row, email, key, vars, status, last_reply, message_id, tag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        run_id,
                        r.row,
                        r.email,
                        r.key,
                        json.dumps(r.values, ensure_ascii=False),
                        r.status,
                        r.reply,
                        *recipient_ids(run_id, token, r.key, sender_domain, verp=bool(bounce_address)),
                    )
                    for r in recipients
                ),
            )
        return self.get_run(run_id)

    def set_run_status(
        self,
        run_id: int,
        status: RunStatus,
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

    def rename_campaign(self, old: str, new: str) -> None:
        """The campaign's file now gives it another name: its runs and schedule take it."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET campaign = ? WHERE campaign = ?", (new, old))
            db.execute("UPDATE schedules SET campaign = ? WHERE campaign = ?", (new, old))

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

    def claims(self, run_id: int) -> int:
        """How many claims the run has made: it only grows as the run goes on (a claim given back
        still counts), so a copy of the file with fewer is an older one."""
        return int(self._query("SELECT claims FROM runs WHERE id = ?", (run_id,))[0][0])

    def mark_in_doubt_noted(self, run_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET in_doubt_noted = 1 WHERE id = ?", (run_id,))

    def counts(self, run_id: int) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(RECIPIENT_STATUSES, 0)
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

    def claim(self, run: Run, *, day: date, limit: int | None, now: datetime) -> Claimed | StopReason:
        """Claim the next pending recipient for sending, or say why not (see `claim_many`)."""
        claimed, stop = self.claim_many(run, 1, day=day, limit=limit, now=now)
        return claimed[0] if claimed else stop or "done"

    def claim_many(
        self,
        run: Run,
        count: int,
        *,
        day: date,
        limit: int | None,
        now: datetime,
        outcomes: Sequence[Outcome] = (),
        stopped: Callable[[], bool] = lambda: False,
    ) -> tuple[list[Claimed], StopReason | None]:
        """Claim up to `count` pending recipients for sending in one durable transaction (group
        commit: one disk sync for all), and say why fewer when fewer. The `outcomes` of messages
        sent meanwhile are recorded in the same transaction.

        For each, the run's status, the suppression list and the sender domain's allowance for the
        day are checked, and the recipient is marked `sending` (it has its Message-ID and VERP tag). The
        stop reason is "done", "limit", or the run's status when it was paused or cancelled.
        """
        day_text = day.isoformat()
        if self._day_rows != (run.sender_domain, day_text):
            with self.transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO domain_days (domain, day) VALUES (?, ?)", (run.sender_domain, day_text)
                )
            self._day_rows = (run.sender_domain, day_text)
        claimed: list[Claimed] = []
        stop: StopReason | None = None
        with self.transaction(durable=True) as db:
            for outcome in outcomes:
                _write_outcome(db, run, outcome, sent_counted_by=day)
            sent = sum(1 for o in outcomes if o.status == "sent" and o.counted and o.day == day)
            if stopped():  # asked inside the transaction: nothing put back meanwhile is taken again
                count = 0
            while len(claimed) < count:
                one = _claim_one(db, run, day_text, limit, _iso(now), sent=0 if claimed else sent)
                if not isinstance(one, Claimed):
                    stop = one
                    break
                claimed.append(one)
            if claimed:
                db.execute("UPDATE runs SET claims = claims + ? WHERE id = ?", (len(claimed), run.id))
            if sent and not claimed:  # no claim to count them with
                db.execute(
                    "UPDATE domain_days SET sent = sent + ? WHERE domain = ? AND day = ?",
                    (sent, run.sender_domain, day_text),
                )
        if claimed:
            self.check_still_there()  # the claims are on disk, in the file that is still at the path
        return claimed, stop

    def record(self, run: Run, outcome: Outcome) -> None:
        """Record what became of a claimed recipient, and count it on the domain's day (see Outcome)."""
        with self.transaction() as db:
            _write_outcome(db, run, outcome)

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
            # a row has its Message-ID from the start; it is shown once a message was tried
            "SELECT row, email, status, attempts, last_reply, sent_at, CASE WHEN attempts > 0 THEN message_id END"
            " FROM recipients WHERE run_id = ? ORDER BY row",
            (run_id,),
        )
        return [RecipientOutcome(*tuple(r)) for r in rows]

    def in_doubt(self, run_id: int) -> list[RecipientOutcome]:
        return [o for o in self.outcomes(run_id) if o.status == IN_DOUBT]

    def first_seen(self, campaign: str, *, now: datetime) -> datetime:
        """When run-due first saw this recurring campaign (recorded now if never)."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO schedules (campaign, first_seen) VALUES (?, ?)", (campaign, _iso(now)))
            row = db.execute("SELECT first_seen FROM schedules WHERE campaign = ?", (campaign,)).fetchone()
        return datetime.fromisoformat(row[0])

    # Feedback read back from a mailbox (bounces import) ---------------------

    def feedback_addresses(self) -> tuple[set[str], set[str]]:
        """The bounce addresses (VERP) and unsubscribe addresses the runs were sent with."""
        rows = self._query("SELECT DISTINCT bounce_address, unsubscribe_mailto FROM runs")
        return {r[0].lower() for r in rows if r[0]}, {r[1].lower() for r in rows if r[1]}

    def find_sent(self, by: Literal["tag", "message_id", "key"], value: str) -> SentTo | None:
        """The recipient a report is about, found by VERP tag, Message-ID or address (its latest run)."""
        rows = self._query(
            "SELECT r.run_id, r.key, r.email, r.status, r.sent_at, run.sender_domain, run.campaign"
            f" FROM recipients r JOIN runs run ON run.id = r.run_id WHERE r.{by} = ?"
            " AND r.status IN ('sent', 'sending', 'bounced', 'complained') ORDER BY r.run_id DESC LIMIT 1",
            (value,),
        )
        return SentTo(*tuple(rows[0])) if rows else None

    def soft_bounces_since(self, key: str, since: datetime, *, besides_run: int | None = None) -> int:
        """How many messages (runs) to this address soft-bounced since then: repeated delay warnings
        about one message count once. `besides_run`: not counting that run's."""
        rows = self._query(
            "SELECT COUNT(DISTINCT run_id) FROM soft_bounces WHERE key = ? AND at > ? AND run_id IS NOT ?",
            (key, _iso(since), besides_run),
        )
        return int(rows[0][0])

    def seen_feedback(self, report_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM feedback_seen WHERE report_id = ?", (report_id,)))

    def apply_feedback(self, report_id: str, kind: str, changes: Iterable[FeedbackChange], *, now: datetime) -> bool:
        """Apply what one report says, and remember the report, in one transaction: a report read
        twice (or again after a crash midway) changes nothing the second time. False if seen before."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM feedback_seen WHERE report_id = ?", (report_id,)).fetchone():
                return False
            db.execute("INSERT INTO feedback_seen (report_id, kind, at) VALUES (?, ?, ?)", (report_id, kind, _iso(now)))
            for change in changes:
                _apply_change(db, change, now)
        return True

    # Sender domains --------------------------------------------------------

    def domain_days(self, domain: str) -> list[DayRecord]:
        """The sender domain's days, oldest first: what warm-up decides its level from."""
        rows = self._query("SELECT * FROM domain_days WHERE domain = ? ORDER BY day", (domain,))
        return [DayRecord(date.fromisoformat(r["day"]), r["sent"], r["rejected"], r["claimed"]) for r in rows]

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
