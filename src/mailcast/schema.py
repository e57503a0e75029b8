"""The state file's schema, its version, and the ordered steps that upgrade an older file.

A new file is created with `SCHEMA` at `SCHEMA_VERSION`. A file of an older version is
upgraded in place by `MIGRATIONS`: each step takes the file from one version to the next, and
all the steps a file needs run in one transaction, after a backup copy beside it
(`state.db.bak-v3` for a file of version 3). A newer file is refused: this mailcast does not
know what it holds.

To change the schema: change `SCHEMA`, raise `SCHEMA_VERSION`, and add the step from the old
version (SQL that turns a file of the old version into one of the new, data included).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

from mailcast.message_ids import recipient_ids

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    campaign_file TEXT NOT NULL,
    type TEXT NOT NULL,
    occurrence TEXT,
    token TEXT NOT NULL,
    sender_domain TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    resume_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT,
    in_doubt_noted INTEGER NOT NULL DEFAULT 0,
    bounce_address TEXT,
    unsubscribe_mailto TEXT,
    claims INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_campaign ON runs (campaign, id);
CREATE TABLE run_notes (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    at TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX run_notes_run ON run_notes (run_id);
CREATE TABLE recipients (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    row INTEGER NOT NULL,
    email TEXT NOT NULL,
    key TEXT NOT NULL,
    vars TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT,
    sent_at TEXT,
    message_id TEXT,
    retry_at TEXT,
    tag TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX recipients_todo ON recipients (run_id, status, row);
CREATE INDEX recipients_message_id ON recipients (message_id);
CREATE INDEX recipients_tag ON recipients (tag);
CREATE INDEX recipients_key ON recipients (key);
CREATE TABLE feedback_seen (
    report_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE soft_bounces (
    key TEXT NOT NULL,
    run_id INTEGER,
    at TEXT NOT NULL,
    status TEXT
);
CREATE INDEX soft_bounces_key ON soft_bounces (key, at);
CREATE TABLE domain_days (
    domain TEXT NOT NULL,
    day TEXT NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (domain, day)
);
CREATE TABLE sender_domains (
    domain TEXT PRIMARY KEY,
    limits TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE schedules (
    campaign TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL
);
CREATE TABLE suppressions (
    key TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    added_at TEXT NOT NULL,
    expires_at TEXT
)
"""


def _to_v2(db: sqlite3.Connection) -> None:
    """v2: the state file's own id; "paused by hand" as a field; a run's content fingerprint and notes."""
    for statement in (
        "ALTER TABLE runs ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN fingerprint TEXT",
        "ALTER TABLE runs ADD COLUMN in_doubt_noted INTEGER NOT NULL DEFAULT 0",
        "UPDATE runs SET held = 1, reason = 'paused by hand' WHERE status = 'paused' AND reason = 'paused by hand'",
        "CREATE TABLE run_notes (run_id INTEGER NOT NULL REFERENCES runs (id), at TEXT NOT NULL, note TEXT NOT NULL)",
        "CREATE INDEX run_notes_run ON run_notes (run_id)",
    ):
        db.execute(statement)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('state_id', ?)", (new_state_id(),))


def _to_v3(db: sqlite3.Connection) -> None:
    """v3: what bounces and complaints read back from a mailbox need: each recipient's VERP tag,
    each run's bounce and unsubscribe addresses, the reports already read, soft bounces."""
    for statement in (
        "ALTER TABLE runs ADD COLUMN bounce_address TEXT",
        "ALTER TABLE runs ADD COLUMN unsubscribe_mailto TEXT",
        "ALTER TABLE recipients ADD COLUMN tag TEXT",
        "CREATE INDEX recipients_message_id ON recipients (message_id)",
        "CREATE INDEX recipients_tag ON recipients (tag)",
        "CREATE INDEX recipients_key ON recipients (key)",
        "CREATE TABLE feedback_seen (report_id TEXT PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL)",
        "CREATE TABLE soft_bounces (key TEXT NOT NULL, run_id INTEGER, at TEXT NOT NULL, status TEXT)",
        "CREATE INDEX soft_bounces_key ON soft_bounces (key, at)",
    ):
        db.execute(statement)


def _to_v4(db: sqlite3.Connection) -> None:
    """v4: a claim writes as little as it can, since each costs a disk sync. Every recipient has its
    Message-ID (and VERP tag) from the moment its run is created, so a claim does not write them.
    Rows not sent yet get theirs now; rows sent keep what was recorded. Each run counts its claims
    (only ever up), which the campaign's marker follows: a file lacking some is an older copy."""
    db.execute("ALTER TABLE runs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE runs SET claims = (SELECT COALESCE(SUM(attempts), 0) FROM recipients WHERE run_id = runs.id)")
    runs = db.execute("SELECT id, token, sender_domain, bounce_address FROM runs").fetchall()
    for run_id, token, domain, bounce_address in runs:
        rows = db.execute(
            "SELECT key, message_id, tag FROM recipients"
            " WHERE run_id = ? AND status NOT IN ('sent', 'bounced', 'complained')",
            (run_id,),
        ).fetchall()
        updates = []
        for key, message_id, tag in rows:
            made_id, made_tag = recipient_ids(run_id, token, key, domain, verp=bool(bounce_address))
            updates.append((message_id or made_id, tag or made_tag, run_id, key))
        db.executemany("UPDATE recipients SET message_id = ?, tag = ? WHERE run_id = ? AND key = ?", updates)


# MIGRATIONS[n] takes a file from version n to n + 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _to_v2, 2: _to_v3, 3: _to_v4}


def new_state_id() -> str:
    """A state file's identity, given once at creation: markers beside campaigns name it."""
    return secrets.token_hex(8)


def create(db: sqlite3.Connection) -> None:
    """Lay out a new file at the current version (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    db.execute("INSERT INTO meta VALUES ('state_id', ?)", (new_state_id(),))


def upgrade(db: sqlite3.Connection, version: int) -> None:
    """Run every step from `version` to SCHEMA_VERSION (inside the caller's transaction)."""
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](db)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
