"""The SQLite state file: versions, damage, claims against the day's allowance, suppressions."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailcast.errors import ExitCode, StateError
from mailcast.message_ids import make_message_id, make_verp_tag
from mailcast.state import SCHEMA_VERSION, Claimed, NewRecipient, Outcome, StateStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 12, 1)


def people(count: int) -> list[NewRecipient]:
    return [NewRecipient(i, f"p{i}@example.com", f"p{i}@example.com", {"name": f"P{i}"}) for i in range(1, count + 1)]


def new_run(store: StateStore, count: int = 5, campaign: str = "news", domain: str = "example.com", **extra):  # type: ignore[no-untyped-def]
    return store.create_run(
        campaign=campaign,
        campaign_file="/x/news.yaml",
        type="batch",
        occurrence=None,
        sender_domain=domain,
        now=NOW,
        recipients=people(count),
        **extra,
    )


def test_new_file_records_its_schema_version(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db"):
        pass
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db"):
        pass
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StateError) as caught:
        StateStore(tmp_path / "state.db")
    assert caught.value.exit_code == ExitCode.STATE
    assert "newer mailcast" in caught.value.message


def test_garbage_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StateError) as caught:
        StateStore(path)
    assert str(path) in caught.value.message
    assert caught.value.hint and "backup" in caught.value.hint


def test_other_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not a mailcast state file"):
        StateStore(path)


def test_claims_go_in_row_order_and_record_outcomes(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 3)
        first = store.claim(run, day=DAY, limit=None, now=NOW)
        assert isinstance(first, Claimed) and first.row == 1 and first.values == {"name": "P1"}
        store.record(run, Outcome(first.key, "sent", "250 ok", DAY, NOW))
        second = store.claim(run, day=DAY, limit=None, now=NOW)
        assert isinstance(second, Claimed) and second.row == 2
        counts = store.counts(run.id)
        assert counts["sent"] == 1 and counts["sending"] == 1 and counts["pending"] == 1
        assert [o.email for o in store.in_doubt(run.id)] == ["p2@example.com"]


def test_a_claim_carries_the_message_id_the_report_shows_once_tried(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 2, bounce_address="bounces@example.com")
        assert [o.message_id for o in store.outcomes(run.id)] == [None, None]  # nothing tried yet
        first = store.claim(run, day=DAY, limit=None, now=NOW)
        assert isinstance(first, Claimed)
        assert first.message_id == make_message_id(run.token, "p1@example.com", "example.com")
        assert first.tag == make_verp_tag(run.id, run.token, "p1@example.com")
        store.record(run, Outcome(first.key, "sent", "250 ok", DAY, NOW))
        assert [o.message_id for o in store.outcomes(run.id)] == [first.message_id, None]
        found = store.find_sent("tag", first.tag)
        assert found is not None and found.key == "p1@example.com"
        assert store.find_sent("message_id", make_message_id(run.token, "p2@example.com", "example.com")) is None


def test_a_row_an_older_mailcast_wrote_without_its_ids_gets_them_at_its_claim(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        run = new_run(store, 1, bounce_address="bounces@example.com")
        db = sqlite3.connect(path)  # as a mailcast of version 3 still running wrote it
        db.execute("UPDATE recipients SET message_id = NULL, tag = NULL")
        db.commit()
        db.close()
        claimed = store.claim(run, day=DAY, limit=None, now=NOW)
        assert isinstance(claimed, Claimed)
        assert claimed.message_id == make_message_id(run.token, "p1@example.com", "example.com")
        assert claimed.tag == make_verp_tag(run.id, run.token, "p1@example.com")
        store.record(run, Outcome(claimed.key, "sent", "250 ok", DAY, NOW))
        found = store.find_sent("tag", claimed.tag)
        assert found is not None and found.key == "p1@example.com"
        assert [o.message_id for o in store.outcomes(run.id)] == [claimed.message_id]


def test_a_runs_claims_only_grow_even_when_one_is_given_back(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 3)
        claimed, _ = store.claim_many(run, 2, day=DAY, limit=None, now=NOW)
        assert store.claims(run.id) == 2
        store.release_claim(run, claimed[1].key, day=DAY)  # pending again, its attempt given back
        assert store.claims(run.id) == 2
        assert store.counts(run.id)["pending"] == 2
        store.claim(run, day=DAY, limit=None, now=NOW)
        assert store.claims(run.id) == 3


def test_limit_is_shared_by_two_connections_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as a, StateStore(path) as b:
        run_a = new_run(a, 10, campaign="one")
        run_b = new_run(b, 10, campaign="two")
        got = []
        for _ in range(10):
            for store, run in ((a, run_a), (b, run_b)):
                claimed = store.claim(run, day=DAY, limit=7, now=NOW)
                got.append(claimed)
        assert sum(isinstance(c, Claimed) for c in got) == 7
        assert got.count("limit") == 13
        # the next day has a fresh allowance
        assert isinstance(a.claim(run_a, day=DAY + timedelta(days=1), limit=7, now=NOW), Claimed)


def test_deferred_gives_allowance_back_and_failed_counts_as_rejected(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 3)
        for status in ("sent", "failed", "deferred"):
            claimed = store.claim(run, day=DAY, limit=None, now=NOW)
            assert isinstance(claimed, Claimed)
            retry_at = NOW + timedelta(minutes=10) if status == "deferred" else None
            store.record(run, Outcome(claimed.key, status, status, DAY, NOW, retry_at=retry_at))
        (day,) = store.domain_days("example.com")
        assert (day.claimed, day.sent, day.rejected) == (2, 1, 1)
        assert store.next_retry(run.id) == NOW + timedelta(minutes=10)
        assert store.requeue(run.id, statuses=("deferred",), due_by=NOW) == 0
        assert store.requeue(run.id, statuses=("deferred",), due_by=NOW + timedelta(minutes=11)) == 1


def test_suppressed_addresses_are_skipped_at_claim_time(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 2)
        store.suppress([("P1@example.com", "p1@example.com")], reason="unsubscribed", now=NOW, expires_at=None)
        claimed = store.claim(run, day=DAY, limit=None, now=NOW)
        assert isinstance(claimed, Claimed) and claimed.row == 2
        assert store.counts(run.id)["suppressed"] == 1


def test_expired_suppression_no_longer_applies(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        store.suppress([("a@example.com", "a@example.com")], reason="x", now=NOW, expires_at=NOW + timedelta(days=1))
        assert store.suppressed_keys(now=NOW) == {"a@example.com": "x"}
        assert store.suppressed_keys(now=NOW + timedelta(days=2)) == {}


def test_paused_run_is_not_claimed_from(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 2)
        store.set_run_status(run.id, "paused", now=NOW, reason="paused by hand")
        assert store.claim(run, day=DAY, limit=None, now=NOW) == "paused"


def test_a_state_file_that_cannot_be_written_is_a_state_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store._db.execute("PRAGMA query_only = ON")  # what SQLite says for a read-only file (root ignores chmod)
    with pytest.raises(StateError) as caught:
        store.suppress([("a@example.com", "a@example.com")], reason="by hand", now=NOW, expires_at=None)
    assert caught.value.exit_code == ExitCode.STATE and "cannot be written" in caught.value.message
    store.close()


def test_a_folder_is_not_a_state_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is a folder"):
        StateStore(tmp_path)


def test_the_store_is_safe_from_several_threads_by_itself(tmp_path: Path) -> None:
    """Claims from 8 threads with no lock of their own: each recipient is claimed exactly once."""
    import threading

    with StateStore(tmp_path / "state.db") as store:
        run = new_run(store, 200)
        claimed: list[str] = []
        errors: list[BaseException] = []

        def claim_all() -> None:
            try:
                while isinstance(got := store.claim(run, day=DAY, limit=None, now=NOW), Claimed):
                    claimed.append(got.key)
            except BaseException as exc:  # reported below: a thread's error must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=claim_all) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(claimed) == sorted(f"p{i}@example.com" for i in range(1, 201))
        assert store.counts(run.id)["sending"] == 200
