"""Schema versions: an older state file upgrades itself in place, after a backup copy beside it."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from helpers import mailcast, write_campaign
from mailcast.message_ids import make_message_id
from mailcast.schema import SCHEMA_VERSION
from mailcast.state import StateStore

# The schema of version 1, as mailcast 0.1 wrote it: a file of that version must always open.
V1_SCHEMA = """
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
    updated_at TEXT NOT NULL
);
CREATE INDEX runs_campaign ON runs (campaign, id);
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
    PRIMARY KEY (run_id, key)
);
CREATE INDEX recipients_todo ON recipients (run_id, status, row);
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
);
"""


def write_v1_state(path: Path, campaign_file: Path) -> None:
    """A state file as version 1 left it: one run paused by hand with 3 recipients, one of them sent."""
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO runs VALUES (1, 'news', ?, 'batch', NULL, 'abc', 'example.com', 'paused', 'paused by hand',"
        " NULL, '2026-11-01T09:00:00+00:00', '2026-11-01T09:05:00+00:00')",
        (str(campaign_file),),
    )
    for row in (1, 2, 3):
        status = "sent" if row == 1 else "pending"
        db.execute(
            "INSERT INTO recipients (run_id, row, email, key, vars, status) VALUES (1, ?, ?, ?, ?, ?)",
            (row, f"r{row}@example.com", f"r{row}@example.com", f'{{"first_name": "Name{row}"}}', status),
        )
    db.execute("INSERT INTO domain_days VALUES ('example.com', '2026-11-01', 1, 1, 0)")
    db.execute("INSERT INTO suppressions VALUES ('x@example.com', 'x@example.com', 'bounced', '2026-11-01', NULL)")
    db.commit()
    db.close()


def test_a_version_1_file_is_upgraded_in_place_with_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    write_v1_state(path, tmp_path / "news.yaml")
    with StateStore(path) as store:
        run = store.latest_run("news")
        assert run is not None and run.paused_by_hand and run.fingerprint is None
        assert store.counts(run.id)["sent"] == 1 and store.counts(run.id)["pending"] == 2
        assert len(store.state_id) == 16
        assert [s.email for s in store.suppressions(now=datetime(2026, 11, 2, tzinfo=timezone.utc))] == [
            "x@example.com"
        ]
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    # the rows still to send have their Message-IDs now (the run's token and domain); the sent one keeps none
    ids = dict(db.execute("SELECT key, message_id FROM recipients"))
    assert ids == {
        "r1@example.com": None,
        "r2@example.com": make_message_id("abc", "r2@example.com", "example.com"),
        "r3@example.com": make_message_id("abc", "r3@example.com", "example.com"),
    }
    backup = sqlite3.connect(tmp_path / "state.db.bak-v1")
    assert backup.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert backup.execute("SELECT COUNT(*) FROM recipients").fetchone()[0] == 3
    backup.close()
    db.close()
    # opened again: already upgraded, no second backup, the same identity
    with StateStore(path) as store:
        first_id = store.state_id
    with StateStore(path) as store:
        assert store.state_id == first_id
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == ["state.db.bak-v1"]


def test_an_upgraded_file_goes_on_with_its_run(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    state = tmp_path / "state.db"
    write_v1_state(state, campaign.resolve())
    held = mailcast("send", str(campaign), "--yes", state=state)
    assert held.code == 75 and "paused by hand" in held.out
    assert mailcast("resume", str(campaign), state=state).code == 0
    on = mailcast("send", str(campaign), "--yes", state=state)
    assert on.code == 0 and "2 sent now; 3 of 3 sent in all" in on.out
