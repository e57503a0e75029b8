"""`mailcast send` as a user runs it: real processes, a real SMTP server, a real state file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from helpers import (
    MAILCAST,
    env_for,
    mailcast,
    maildir_recipients,
    signal_when,
    smtp,
    start_mailcast,
    wait_for_messages,
    write_campaign,
)
from smtp_server import TestServer


def test_every_recipient_once_and_a_second_send_sends_nothing(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign = write_campaign(tmp_path / "c", 12, transport=smtp(server.port, connections=3))
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", state=state)
    assert first.code == 0, first.err
    assert "12 sent now" in first.out and "Completed" in first.out
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(1, 13))
    again = mailcast("send", str(campaign), "--yes", state=state)
    assert again.code == 0
    assert "already completed" in again.out
    assert len(server.messages) == 12
    status = mailcast("status", "--json", state=state).json()
    assert status[0]["status"] == "completed" and status[0]["sent"] == 12 and status[0]["type"] == "batch"
    # the message as received: one To, the Message-ID recorded in the report
    report = mailcast("report", str(campaign), "--json", state=state).json()
    ids = {r["email"]: r["message_id"] for r in report["recipients"]}
    for received in server.messages:
        parsed = received.parsed()
        assert parsed["To"] == received.to
        assert parsed["Message-ID"] == ids[received.to]


def test_again_starts_a_new_run(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    assert mailcast("send", str(campaign), "--yes", "--again", state=state).code == 0
    assert Counter(server.recipients()) == {f"r{i}@example.com": 2 for i in range(1, 4)}
    assert [r["run"] for r in mailcast("status", "--json", state=state).json()] == [1, 2]


def test_dry_run_connects_to_nothing_and_changes_no_state(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign = write_campaign(tmp_path / "c", 4, transport=smtp(server.port))
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--dry-run", state=state)
    assert result.code == 0
    assert "would send 4" in result.out
    assert server.connections == 0 and not state.exists()


def test_temporary_failure_then_success(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"r2@example.com": "451 4.7.1 Greylisted"}, replies_times={"r2@example.com": 1})
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert result.code == 0, result.out + result.err
    assert server.recipients() == ["r1@example.com", "r2@example.com", "r3@example.com"]


def test_deferred_rows_wait_and_go_later(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"r2@example.com": "451 4.7.1 Try later"}, replies_times={"r2@example.com": 4})
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", state=state, now="2026-12-01T10:00:00+00:00")
    assert first.code == 75
    assert "deferred" in first.out
    row = mailcast("status", "--json", state=state).json()[0]
    assert row["deferred"] == 1 and row["status"] == "paused" and row["resume_at"].startswith("2026-12-01T10:10")
    r2 = mailcast("report", str(campaign), "--json", state=state).json()["recipients"][1]
    assert (r2["status"], r2["attempts"]) == ("deferred", 4)  # each try the server answered 451 counts
    # run-due before the retry time does nothing and says nothing; after it, the row goes
    early = mailcast("run-due", str(campaign), state=state, now="2026-12-01T10:05:00+00:00")
    assert (early.code, early.out) == (0, "")
    later = mailcast("run-due", str(campaign), state=state, now="2026-12-01T10:11:00+00:00")
    assert later.code == 0, later.out + later.err
    assert server.recipients() == ["r1@example.com", "r2@example.com", "r3@example.com"]
    assert mailcast("report", str(campaign), "--json", state=state).json()["recipients"][1]["attempts"] == 5


def test_bounced_mailbox_fails_and_is_suppressed(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(replies={"r2@example.com": "550 5.1.1 No such user"})
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 1
    assert "1 failed" in result.out
    listed = mailcast("suppress", "list", "--json", state=state).json()
    assert [e["email"] for e in listed] == ["r2@example.com"]
    report = mailcast("report", str(campaign), "--json", state=state).json()
    assert {k: v for k, v in report["totals"].items() if v} == {"failed": 1, "sent": 2}
    assert set(report["totals"]) == {
        "pending", "sending", "sent", "deferred", "failed", "skipped", "suppressed", "bounced", "complained"
    }  # fmt: skip
    failed = next(r for r in report["recipients"] if r["status"] == "failed")
    assert failed["last_reply"].startswith("550 5.1.1")
    # the next campaign to that address skips it
    other = write_campaign(tmp_path / "d", 3, name="other", transport=smtp(server.port))
    assert mailcast("send", str(other), "--yes", state=state).code == 1
    assert Counter(server.recipients())["r2@example.com"] == 0


def test_a_reply_lost_after_the_message_leaves_the_row_in_doubt(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(drop_on_data={"r2@example.com"})
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", state=state)
    assert first.code == 75 and "r2@example.com" in first.out and "in doubt" in first.out
    assert server.recipients() == ["r1@example.com", "r3@example.com"]  # r2 tried once only
    row = mailcast("status", "--json", state=state).json()[0]
    assert (row["sent"], row["in_doubt"], row["pending"]) == (2, 1, 0)
    assert mailcast("send", str(campaign), "--yes", state=state).code == 75  # not resent unless asked
    assert mailcast("send", str(campaign), "--yes", "--resend-in-doubt", state=state).code == 0
    assert server.recipients() == ["r1@example.com", "r2@example.com", "r3@example.com"]


def test_refused_login_exits_77_with_nothing_marked_sent(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password="right")
    transport = smtp(server.port, username="news", password_env="TEST_SMTP_PASSWORD")
    campaign = write_campaign(tmp_path / "c", 3, transport=transport)
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state, TEST_SMTP_PASSWORD="wrong-secret")
    assert result.code == 77
    assert "news" in result.err and "wrong-secret" not in result.err + result.out
    assert server.messages == []
    assert all(r["sent"] == 0 for r in mailcast("status", "--json", state=state).json())
    ok = mailcast("send", str(campaign), "--yes", state=state, TEST_SMTP_PASSWORD="right")
    assert ok.code == 0 and len(server.messages) == 3


def test_server_that_wants_a_login_stops_the_run_with_77(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password="right")
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))  # no username given
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 77 and "530" in result.err and "username" in result.err
    row = mailcast("status", "--json", state=state).json()[0]
    assert (row["sent"], row["failed"], row["pending"]) == (0, 0, 3)
    assert mailcast("warmup", "--json", state=state).json()[0]["sent_today"] == 0


def test_missing_password_variable_is_a_config_error(tmp_path: Path) -> None:
    transport = smtp(2525, username="news", password_env="MAILCAST_TEST_UNSET_VARIABLE")
    campaign = write_campaign(tmp_path / "c", 1, transport=transport)
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "s.db")
    assert result.code == 78
    assert "MAILCAST_TEST_UNSET_VARIABLE" in result.err


def test_unreachable_server_exits_69(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    campaign = write_campaign(tmp_path / "c", 2, transport=smtp(port))
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "s.db")
    assert result.code == 69
    assert f"127.0.0.1:{port}" in result.err


def test_damaged_state_file_exits_74_and_is_left_alone(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "state.db"
    garbage = b"not a database" * 500
    state.write_bytes(garbage)
    for args in (["send", str(campaign), "--yes"], ["status"]):
        result = mailcast(*args, state=state)
        assert result.code == 74, result.err
        assert str(state) in result.err
    assert state.read_bytes() == garbage


def test_bad_data_sends_nothing(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = write_campaign(
        tmp_path / "c", emails=["a@example.com", "not-an-address", "b@example.com"], transport=smtp(server.port)
    )
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 65
    assert "recipients.csv:3" in result.err
    assert server.connections == 0
    assert mailcast("status", "--json", state=state).json() == []


def test_permissive_skips_bad_rows_and_duplicates(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    campaign = write_campaign(
        tmp_path / "c",
        emails=["a@example.com", "not-an-address", "A@Example.com", "b@example.com"],
        transport=smtp(server.port),
        extra={"validation": "permissive"},
    )
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 1  # finished, some not delivered (skipped)
    assert server.recipients() == ["a@example.com", "b@example.com"]
    assert mailcast("status", "--json", state=state).json()[0]["skipped"] == 2


def test_two_sends_at_once_one_exits_75_each_recipient_once(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.02)
    campaign = write_campaign(tmp_path / "c", 20, transport=smtp(server.port))
    state = tmp_path / "state.db"
    procs = [start_mailcast("send", str(campaign), "--yes", state=state) for _ in range(2)]
    outcomes = [(p.wait(timeout=120), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 75], outcomes
    busy = next(err for code, (_, err) in outcomes if code == 75)
    assert "process" in busy and "Traceback" not in busy
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(1, 21))


def test_kill_9_mid_run_loses_nobody_and_duplicates_only_rows_in_doubt(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    # the server takes r10's message and holds its reply back: killed then, mailcast cannot know it arrived
    # four connections claiming by group commit, pipelining
    server = smtp_server(delay=0.01, hold_reply={"r10@example.com"}, pipelining=True)
    count = 40
    campaign = write_campaign(tmp_path / "c", count, transport=smtp(server.port, connections=4))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    deadline = time.monotonic() + 60
    while "r10@example.com" not in server.recipients():
        assert time.monotonic() < deadline, "r10's message never arrived"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 0 < len(server.messages) < count

    db = sqlite3.connect(state)
    doubt_ids = dict(db.execute("SELECT email, message_id FROM recipients WHERE status = 'sending'").fetchall())
    db.close()
    in_doubt = set(doubt_ids)
    assert "r10@example.com" in in_doubt
    assert len(in_doubt) <= 4  # at most one message in flight per connection
    for email, message_id in doubt_ids.items():  # the report names the Message-ID to look for
        assert message_id and all(m.parsed()["Message-ID"] == message_id for m in server.messages if m.to == email)
    shown = mailcast("report", str(campaign), state=state).out  # as a person reads it, not only --json
    assert "in doubt" in shown and "sending" not in shown and "--resend-in-doubt" in shown
    for email, message_id in doubt_ids.items():
        assert any(email in line and message_id in line for line in shown.splitlines()), shown

    server.behaviour.hold_reply = set()
    resumed = mailcast("send", str(campaign), "--yes", state=state)
    received = Counter(server.recipients())
    everyone = {f"r{i}@example.com" for i in range(1, count + 1)}
    # nobody twice; everybody but the rows in doubt has arrived
    assert max(received.values()) == 1
    assert everyone - set(received) <= in_doubt
    assert resumed.code == 75 and "in doubt" in resumed.out
    assert f"already done, {len(in_doubt)} in doubt)" in resumed.out  # the start line counts every row
    for email in in_doubt:
        assert email in resumed.out
    final = mailcast("send", str(campaign), "--yes", "--resend-in-doubt", state=state)
    assert final.code == 0, final.out + final.err
    received = Counter(server.recipients())
    assert set(received) == everyone
    assert received["r10@example.com"] == 2  # the row in doubt had arrived: the resend is its copy
    assert {e for e, n in received.items() if n > 1} <= in_doubt
    for email in in_doubt:  # a resend keeps the Message-ID, so the copies can be told apart from new mail
        ids = {m.parsed()["Message-ID"] for m in server.messages if m.to == email}
        assert len(ids) == 1


@pytest.mark.parametrize("with_wal", [False, True], ids=["without-its-wal", "with-its-wal"])
def test_a_state_file_moved_after_kill_9_must_bring_its_wal(
    tmp_path: Path, smtp_server: Callable[..., TestServer], with_wal: bool
) -> None:
    # what the run did since the file was last closed is in state.db-wal: the file alone is an older copy
    server = smtp_server(delay=0.02, pipelining=True)
    count = 40
    campaign = write_campaign(tmp_path / "c", count, transport=smtp(server.port, connections=2))
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "8", state=state).code == 75  # closed cleanly
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 16)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reached = len(server.messages)
    marker = json.loads((tmp_path / "c" / ".mailcast" / "news.yaml.state").read_text(encoding="utf-8"))
    assert marker["claims"] >= reached  # it followed the claims of the killed process

    moved = tmp_path / "moved" / "state.db"
    moved.parent.mkdir()
    state.rename(moved)
    wal = tmp_path / "state.db-wal"
    if with_wal:
        wal.rename(tmp_path / "moved" / "state.db-wal")
    else:
        wal.unlink()
    (tmp_path / "state.db-shm").unlink()

    again = mailcast("send", str(campaign), "--yes", state=moved)
    received = Counter(server.recipients())
    if with_wal:  # the whole record moved: the run goes on, nobody twice
        assert again.code == 75 and max(received.values()) == 1, again.out + again.err
    else:
        assert again.code == 74, again.out + again.err
        assert "older copy" in again.err and "-wal" in again.err
        assert len(server.messages) == reached  # nothing sent again


def test_pause_stops_a_running_send(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(delay=0.03)
    campaign = write_campaign(tmp_path / "c", 60, transport=smtp(server.port))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 3)
    assert mailcast("pause", str(campaign), state=state).code == 0
    code = proc.wait(timeout=60)
    assert code == 75
    sent = len(server.messages)
    assert sent < 60
    status = mailcast("status", "--json", state=state).json()[0]
    assert status["status"] == "paused" and status["sent"] == sent
    # a paused run is not sent by send until resumed
    assert mailcast("send", str(campaign), "--yes", state=state).code == 75
    assert mailcast("resume", str(campaign), state=state).code == 0
    assert mailcast("status", "--json", state=state).json()[0]["reason"].startswith("resumed")
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(1, 61))


def test_limit_option_sends_part_now(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 5)
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", "--limit", "2", state=state)
    assert first.code == 75
    assert mailcast("status", "--json", state=state).json()[0]["sent"] == 2
    again = mailcast("send", str(campaign), "--yes", "--again", state=state)
    assert again.code == 2 and "not finished" in again.err  # --again never leaves a run half-done behind
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    assert len(list((tmp_path / "c" / "outbox" / "new").iterdir())) == 5


def test_json_output_is_json_only(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    result = mailcast("send", str(campaign), "--yes", "--json", state=tmp_path / "s.db")
    data = json.loads(result.out)
    assert data["sent_now"] == 2 and data["exit_code"] == 0


def test_test_send_goes_to_test_addresses_only_and_is_not_recorded(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server()
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    result = mailcast(
        "test", str(campaign), "--to", "me@example.org", "--to", "boss@example.org", "--row", "2", state=state
    )
    assert result.code == 0, result.err
    assert server.recipients() == ["boss@example.org", "me@example.org"]
    assert all(m.parsed()["Subject"] == "Hi Name2" for m in server.messages)
    assert mailcast("status", "--json", state=state).json() == []
    too_many = mailcast("test", str(campaign), *[f"--to=t{i}@example.org" for i in range(21)], state=state)
    assert too_many.code == 2 and "20" in too_many.err


def test_cancel_stops_a_run_for_good(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 5)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    assert mailcast("cancel", str(campaign), state=state).code == 0
    again = mailcast("send", str(campaign), "--yes", state=state)
    assert again.code == 0 and "cancelled" in again.out
    status = mailcast("status", "--json", state=state).json()[0]
    assert (status["status"], status["sent"], status["pending"]) == ("cancelled", 2, 3)


def test_rate_paces_messages_without_real_waiting(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign
    from mailcast.state import StateStore

    campaign = load_campaign(write_campaign(tmp_path / "c", 11, extra={"limits": {"rate": 5}}))
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    now = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    settings = Settings(clock=lambda: now, zone=timezone.utc, sleep=sleep, monotonic=lambda: clock[0])
    with StateStore(tmp_path / "state.db") as store:
        outcome = send_campaign(campaign, store, settings, SendOptions())
    assert outcome.sent_now == 11
    # 11 messages at 5 a second take 2 seconds (the pacing comes before each claim, so the
    # look for a 12th recipient waits its turn too)
    assert 2.0 - 1e-9 <= sum(waits) <= 2.2 + 1e-9
    assert all(w <= 0.2 + 1e-9 for w in waits)


def test_rate_makes_no_burst_after_a_stall(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign
    from mailcast.state import Run, StateStore
    from mailcast.transports import Delivery

    campaign = load_campaign(write_campaign(tmp_path / "c", 10, extra={"limits": {"rate": 5}}))
    clock = [0.0]
    delivered_at: list[float] = []

    class StallAfterThree:
        def started(self, campaign: str, run: Run, total: int, done: int, to_send: int, *, in_doubt: int) -> None:
            pass

        def delivered(self, email: str, delivery: Delivery) -> None:
            delivered_at.append(clock[0])
            if len(delivered_at) == 3:
                clock[0] += 3.0  # the server hung for three seconds

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    now = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    settings = Settings(clock=lambda: now, zone=timezone.utc, sleep=sleep, monotonic=lambda: clock[0])
    with StateStore(tmp_path / "state.db") as store:
        outcome = send_campaign(campaign, store, settings, SendOptions(), progress=StallAfterThree())
    assert outcome.sent_now == 10
    after_stall = delivered_at[3:]
    gaps = [b - a for a, b in pairwise(after_stall)]
    assert gaps and min(gaps) >= 0.2 - 1e-9  # never faster than the rate, not even to catch up


def test_sigterm_stops_after_the_messages_in_flight(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(delay=0.03)
    campaign = write_campaign(tmp_path / "c", 60, transport=smtp(server.port, connections=3))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    err = signal_when(proc, server, 5, signal.SIGTERM)  # what kill and cron's timeout send
    assert proc.returncode == 75 and "Traceback" not in err and "messages in flight" in err
    row = mailcast("status", "--json", state=state).json()[0]
    assert row["in_doubt"] == 0 and row["sent"] == len(server.messages) < 60
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    assert server.recipients() == sorted(f"r{i}@example.com" for i in range(1, 61))


def test_controls_work_while_the_campaign_file_is_broken(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 5)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    campaign.write_text(campaign.read_text(encoding="utf-8") + "surprise: key\n", encoding="utf-8")
    assert mailcast("check", str(campaign), state=state).code == 78
    assert mailcast("status", str(campaign), "--json", state=state).json()[0]["sent"] == 2
    assert mailcast("report", str(campaign), "--json", state=state).json()["totals"]["pending"] == 3
    assert mailcast("pause", str(campaign), state=state).code == 0
    campaign.write_text("name: [news\n", encoding="utf-8")  # not even YAML: the file's stem names it
    assert mailcast("cancel", str(campaign), state=state).code == 0
    assert mailcast("status", "--json", state=state).json()[0]["status"] == "cancelled"


def test_ctrl_c_waits_for_every_message_in_flight(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(delay=0.15)  # each message takes about half a second
    campaign = write_campaign(tmp_path / "c", 40, transport=smtp(server.port, connections=4))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    err = signal_when(proc, server, 4, signal.SIGINT)
    assert proc.returncode == 75 and "Traceback" not in err
    row = mailcast("status", "--json", state=state).json()[0]
    assert row["in_doubt"] == 0 and row["sent"] == len(server.messages) < 40


def test_a_cancel_while_send_waits_at_its_prompt_is_kept(tmp_path: Path) -> None:
    from datetime import timezone

    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign
    from mailcast.state import StateStore

    path = write_campaign(tmp_path / "c", 5)
    state = tmp_path / "state.db"
    assert mailcast("send", str(path), "--yes", "--limit", "2", state=state).code == 75

    def cancel_then_say_yes(plan: object) -> bool:  # someone cancels from another terminal meanwhile
        assert mailcast("cancel", str(path), state=state).code == 0
        return True

    settings = Settings(clock=lambda: datetime.now(timezone.utc), zone=timezone.utc)
    with StateStore(state) as store:
        outcome = send_campaign(load_campaign(path), store, settings, SendOptions(), confirm=cancel_then_say_yes)
    assert outcome.sent_now == 0 and outcome.exit_code == 1
    row = mailcast("status", "--json", state=state).json()[0]
    assert (row["status"], row["sent"]) == ("cancelled", 2)


def test_a_run_past_midnight_gets_the_new_days_allowance(tmp_path: Path) -> None:
    from datetime import timezone

    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign
    from mailcast.state import Run, StateStore
    from mailcast.transports import Delivery

    path = write_campaign(tmp_path / "c", 20, extra={"limits": {"warmup": [3, 6]}})
    moment = [datetime(2026, 12, 1, 23, 59, 58, tzinfo=timezone.utc)]

    class MidnightAfterTwo:
        count = 0

        def started(self, campaign: str, run: Run, total: int, done: int, to_send: int, *, in_doubt: int) -> None:
            pass

        def delivered(self, email: str, delivery: Delivery) -> None:
            self.count += 1
            if self.count == 2:
                moment[0] = datetime(2026, 12, 2, 0, 0, 1, tzinfo=timezone.utc)

    settings = Settings(clock=lambda: moment[0], zone=timezone.utc)
    with StateStore(tmp_path / "state.db") as store:
        outcome = send_campaign(load_campaign(path), store, settings, SendOptions(), progress=MidnightAfterTwo())
    # 2 on the first day (level 1: 3 a day), then the second day's level 2: 6 a day
    assert outcome.sent_now == 8 and outcome.exit_code == 75


def test_run_due_checks_every_path_before_sending(tmp_path: Path) -> None:
    write_campaign(tmp_path / "campaigns" / "news", 2, extra={"schedule": {"start": "2026-12-01 09:00"}})
    result = mailcast(
        "run-due", str(tmp_path / "campaigns"), str(tmp_path / "missing"), state=tmp_path / "s.db",
        now="2026-12-01T10:00:00+00:00", TZ="UTC",
    )  # fmt: skip
    assert result.code == 2 and "missing" in result.err
    assert not (tmp_path / "campaigns" / "news" / "outbox").exists()


@pytest.mark.parametrize("lines_read", [1, 0])
def test_sending_goes_on_when_its_output_pipe_closes(tmp_path: Path, lines_read: int) -> None:
    campaign = write_campaign(tmp_path / "c", 250)
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)  # like `mailcast send … | head -1`
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(lines_read):
        assert "250 to send" in proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 250


def test_a_stop_before_anything_goes_records_nothing(tmp_path: Path) -> None:
    from datetime import timezone

    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign
    from mailcast.state import StateStore

    settings = Settings(clock=lambda: datetime.now(timezone.utc), zone=timezone.utc)

    def stopped_at_the_prompt(plan: object) -> bool:  # SIGTERM while the question waits
        settings.stop.set()
        return True

    with StateStore(tmp_path / "state.db") as store:
        campaign = load_campaign(write_campaign(tmp_path / "c", 3))
        outcome = send_campaign(campaign, store, settings, SendOptions(), confirm=stopped_at_the_prompt)
        assert outcome.exit_code == 75 and "before anything was sent" in outcome.summary
        assert store.runs() == []


def test_a_cancel_stands_when_the_message_in_flight_then_fails(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.3, replies={"r1@example.com": "530 5.7.0 Authentication required"})
    campaign = write_campaign(tmp_path / "c", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until r1 is claimed: its message is in flight
        claimed = None
        if state.exists():  # mailcast creates it; the test only looks
            db = sqlite3.connect(state)
            try:
                claimed = db.execute("SELECT 1 FROM recipients WHERE status = 'sending'").fetchone()
            except sqlite3.OperationalError:  # the file exists before its tables do
                pass
            finally:
                db.close()
        if claimed:
            break
        time.sleep(0.02)
    assert mailcast("cancel", str(campaign), state=state).code == 0
    assert proc.wait(timeout=30) == 77  # the server's answer to r1 stops the send
    row = mailcast("status", "--json", state=state).json()[0]
    assert row["status"] == "cancelled"  # and the cancel given meanwhile stands
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0 and server.messages == []


def test_a_closing_terminal_stops_gently_and_nohup_keeps_sending(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.03)
    closed = write_campaign(tmp_path / "a", 40, name="a", transport=smtp(server.port, connections=2))
    proc = start_mailcast("send", str(closed), "--yes", state=tmp_path / "a.db")
    wait_for_messages(server, 3)
    proc.send_signal(signal.SIGHUP)  # a closing terminal sends two, back to back
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75 and "Traceback" not in err
    row = mailcast("status", "--json", state=tmp_path / "a.db").json()[0]
    assert row["in_doubt"] == 0 and 0 < row["sent"] < 40

    before = len(server.messages)
    detached = write_campaign(tmp_path / "b", 20, name="b", transport=smtp(server.port))
    nohup = subprocess.Popen(
        ["nohup", *MAILCAST, "send", str(detached), "--yes"],
        cwd=tmp_path, env=env_for(tmp_path / "b.db"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_for_messages(server, before + 3)  # sending, with mailcast's own handlers in place
    nohup.send_signal(signal.SIGHUP)
    assert nohup.wait(timeout=60) == 0  # nohup's choice to ignore SIGHUP is kept
    assert len(server.messages) == before + 20
