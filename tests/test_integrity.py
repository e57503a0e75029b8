"""The state file as a ledger: deleted, emptied, another one, a symlink, a copied folder, changed content."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import mailcast, maildir_recipients, smtp, start_mailcast, wait_for_messages, write_campaign
from smtp_server import TestServer


def test_a_state_file_deleted_mid_run_stops_the_send_and_the_next_send_refuses(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.05)
    campaign = write_campaign(tmp_path / "c", 40, transport=smtp(server.port))
    state = tmp_path / "st" / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 5)
    shutil.rmtree(tmp_path / "st")
    seen_at_deletion = len(server.messages)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 74, err
    assert "was deleted or moved away while mailcast was using it" in err and "Traceback" not in err
    assert len(server.messages) <= seen_at_deletion + 1  # at most the message already in flight
    # the next send finds no state file where the campaign's is recorded: refused, none made, nobody mailed again
    sent = len(server.messages)
    again = mailcast("send", str(campaign), "--yes", state=state)
    assert again.code == 74 and "not there any more" in again.err and "Put it back" in again.err
    assert len(server.messages) == sent and not state.exists()


def test_an_emptied_state_file_is_refused_not_started_over(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    state.write_bytes(b"")
    again = mailcast("send", str(campaign), "--yes", state=state)
    assert again.code == 74
    assert "empty (0 bytes)" in again.err and "delete it first" in again.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 3
    assert state.stat().st_size == 0  # left as it was
    status = mailcast("status", state=state)
    assert status.code == 74 and "empty" in status.err


def test_a_journal_without_its_state_file_is_refused(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "state.db"
    (tmp_path / "state.db-wal").write_bytes(b"\0" * 32)
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 74 and "state.db-wal" in result.err and "deleted" in result.err
    assert not state.exists() and not (tmp_path / "c" / "outbox").exists()


def test_another_state_file_meets_the_campaigns_marker(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3, extra={"limits": {"daily": 2}})
    home = tmp_path / "home.db"
    assert mailcast("send", str(campaign), "--yes", state=home).code == 75  # 2 sent, 1 waits
    marker = json.loads((tmp_path / "c" / ".mailcast" / "news.yaml.state").read_text(encoding="utf-8"))
    assert marker["state_file"] == str(home)
    other = tmp_path / "other.db"
    refused = mailcast("send", str(campaign), "--yes", state=other, now="2026-12-02T10:00:00+00:00")
    assert refused.code == 74
    assert str(home) in refused.err and str(other) in refused.err and "--new-state" in refused.err
    dry = mailcast("send", str(campaign), "--dry-run", state=tmp_path / "third.db")
    assert dry.code == 74 and not (tmp_path / "third.db").exists()
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 2
    # the right state file continues; --new-state starts over on purpose
    on = mailcast("send", str(campaign), "--yes", state=home, now="2026-12-02T10:00:00+00:00")
    assert on.code == 0, on.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 3
    fresh = mailcast("send", str(campaign), "--yes", "--new-state", state=other, now="2026-12-02T10:00:00+00:00")
    assert fresh.code == 75 and "2 sent now" in fresh.out
    assert json.loads((tmp_path / "c" / ".mailcast" / "news.yaml.state").read_text(encoding="utf-8"))[
        "state_file"
    ] == str(other)


def test_a_symlinked_state_path_shares_the_campaign_lock(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.05)
    campaign = write_campaign(tmp_path / "c", 30, transport=smtp(server.port))
    state = tmp_path / "state.db"
    link = tmp_path / "link.db"
    first = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 2)
    link.symlink_to(state)
    started = time.monotonic()
    second = mailcast("send", str(campaign), "--yes", "--resend-in-doubt", state=link)
    assert second.code == 75 and "being worked on by process" in second.err
    assert time.monotonic() - started < 30  # at once, not after the first finished
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert Counter(server.recipients()) == {f"r{i}@example.com": 1 for i in range(1, 31)}


def test_a_copied_campaign_folder_is_refused_and_a_moved_one_keeps_its_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    original = write_campaign(tmp_path / "p1", 4, extra={"limits": {"daily": 2}})
    assert mailcast("send", str(original), "--yes", state=state).code == 75
    shutil.copytree(tmp_path / "p1", tmp_path / "p2")
    copy = tmp_path / "p2" / "news.yaml"
    copy.write_text(copy.read_text(encoding="utf-8").replace("Hi {{", "New {{"), encoding="utf-8")
    refused = mailcast("send", str(copy), "--yes", state=state, now="2026-12-02T10:00:00+00:00")
    assert refused.code == 78
    assert str(original) in refused.err and "name:" in refused.err
    assert len(maildir_recipients(tmp_path / "p1" / "outbox")) == 2
    # the original moved away: the copy is now where its runs go on
    shutil.rmtree(tmp_path / "p1")
    moved = mailcast("send", str(copy), "--yes", state=state, now="2026-12-02T10:00:00+00:00")
    assert moved.code == 0 and "2 sent now; 4 of 4 sent in all" in moved.out
    status = mailcast("status", "--json", state=state).json()
    assert [r["run"] for r in status] == [1]


def test_content_changed_mid_run_is_said_and_noted(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 4)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    (tmp_path / "c" / "body.txt").write_text("Hello again {{ first_name }}\n", encoding="utf-8")
    dry = mailcast("send", str(campaign), "--dry-run", state=state)
    assert "changed since run 1 began; 2 of 4 got an earlier version" in dry.out
    on = mailcast("send", str(campaign), "--yes", state=state)
    assert on.code == 0
    said = on.out.index("changed since run 1 began; 2 of 4 got an earlier version")
    assert said < on.out.index("2 sent now") and on.out.count("changed since run 1 began") == 1  # before sending
    report = mailcast("report", str(campaign), "--json", state=state).json()
    assert len(report["notes"]) == 1 and "2 of 4 got an earlier version" in report["notes"][0]["note"]
    assert "changed since run 1 began" in mailcast("report", str(campaign), state=state).out


def test_a_server_rejecting_everyone_alike_stops_and_the_same_run_delivers_after_the_fix(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(reject_all="550 5.1.1 <x>: Recipient address rejected: User unknown in relay recipient table")
    campaign = write_campaign(tmp_path / "c", 100, transport=smtp(server.port, connections=4))
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", state=state)
    assert first.code == 69, first.err
    assert "rejected 20 recipients in a row" in first.out and "relay recipient table" in first.out
    assert server.handler_.rcpt_count <= 24  # stopped within the streak (and what was in flight)
    assert max(Counter(server.handler_.rcpt_addresses).values()) == 1  # a row put back is not tried again
    assert mailcast("suppress", "list", "--json", state=state).json() == []
    assert mailcast("warmup", "--json", state=state).json()[0]["sent_today"] == 0
    report = mailcast("report", str(campaign), "--json", state=state).json()
    assert report["totals"]["failed"] == 0 and report["totals"]["pending"] == 100
    server.behaviour.reject_all = None  # the relay is fixed
    second = mailcast("send", str(campaign), "--yes", state=state)
    assert second.code == 0 and "100 sent now; 100 of 100 sent in all" in second.out
    assert [r["run"] for r in mailcast("status", "--json", state=state).json()] == [1]


def test_a_few_bad_addresses_are_not_a_streak(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    bad = {f"r{i}@example.com": "550 5.1.1 User unknown" for i in (2, 3, 4)}
    server = smtp_server(replies=bad)
    campaign = write_campaign(
        tmp_path / "c", 6, transport=smtp(server.port), extra={"limits": {"max_rejections_in_a_row": 3}}
    )
    state = tmp_path / "state.db"
    first = mailcast("send", str(campaign), "--yes", state=state)
    assert first.code == 69  # three in a row: the limit set in the campaign
    server.behaviour.replies = {"r3@example.com": "550 5.1.1 User unknown"}
    second = mailcast("send", str(campaign), "--yes", state=state)
    assert second.code == 1 and "1 failed" in second.out
    listed = [e["email"] for e in mailcast("suppress", "list", "--json", state=state).json()]
    assert listed == ["r3@example.com"]


def test_report_csv_never_overwrites_without_force(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    recipients = tmp_path / "c" / "recipients.csv"
    before = recipients.read_bytes()
    refused = mailcast("report", str(campaign), "--csv", str(recipients), state=state)
    assert refused.code == 2 and "already exists" in refused.err and "--force" in refused.err
    assert recipients.read_bytes() == before
    forced = mailcast("report", str(campaign), "--csv", str(recipients), "--force", state=state)
    assert forced.code == 0 and recipients.read_text(encoding="utf-8-sig").startswith("email,status")


def test_dry_run_with_limit_counts_the_limit(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 10)
    result = mailcast("send", str(campaign), "--dry-run", "--limit", "3", state=tmp_path / "state.db")
    assert result.code == 0 and "would send 3 message(s)" in result.out and "7 wait for the next send" in result.out


def test_short_help_and_state_after_the_command(tmp_path: Path) -> None:
    assert "Usage:" in mailcast("send", "-h", state=tmp_path / "x.db").out
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "given.db"
    env_state = tmp_path / "env.db"
    assert mailcast("send", str(campaign), "--yes", "--state", str(state), state=env_state).code == 0
    assert state.exists() and not env_state.exists()
    assert mailcast("status", "--json", "--state", str(state), state=env_state).json()[0]["sent"] == 2


def test_an_old_state_file_from_before_markers_goes_on(tmp_path: Path) -> None:
    """A campaign sent before markers existed has none: its state file is simply used, and marked."""
    campaign = write_campaign(tmp_path / "c", 2, extra={"limits": {"daily": 1}})
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state).code == 75
    shutil.rmtree(tmp_path / "c" / ".mailcast")
    on = mailcast("send", str(campaign), "--yes", state=state, now="2026-12-02T10:00:00+00:00")
    assert on.code == 0
    assert (tmp_path / "c" / ".mailcast" / "news.yaml.state").is_file()


def test_sigterm_says_how_to_stop_at_once(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    import signal

    server = smtp_server(delay=0.05)
    campaign = write_campaign(tmp_path / "c", 30, transport=smtp(server.port))
    proc = start_mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    wait_for_messages(server, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75
    assert "a second SIGTERM stops at once" in err and "Ctrl-C" not in err
    assert os.path.exists(tmp_path / "state.db")


def test_a_full_disk_says_so_and_promises_the_data_is_intact(tmp_path: Path) -> None:
    import sqlite3

    from mailcast.state import StateStore

    with StateStore(tmp_path / "state.db") as store:
        error = store._damaged(sqlite3.OperationalError("database or disk is full"))
    assert "is full" in error.message
    assert error.hint is not None and "Free space" in error.hint and "intact" in error.hint
    assert "new one" not in error.hint and "starts empty" not in error.hint


def test_ctrl_c_outside_a_send_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mailcast.checks.check_campaign", interrupted)
    result = mailcast("check", str(write_campaign(tmp_path / "c", 2)), state=tmp_path / "state.db")
    assert result.code == 130 and "Interrupted" in result.err


def test_run_due_meeting_another_state_file_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    campaign = write_campaign(folder / "news", 3)
    home = tmp_path / "home.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=home).code == 75
    other = mailcast("run-due", str(folder), state=tmp_path / "other.db")
    assert other.code == 74 and str(home) in other.err
    assert len(maildir_recipients(folder / "news" / "outbox")) == 1


def test_a_state_file_emptied_mid_run_stops_the_send(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(delay=0.05)
    campaign = write_campaign(tmp_path / "c", 40, transport=smtp(server.port))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 5)
    state.write_bytes(b"")
    seen = len(server.messages)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 74 and "emptied" in err
    assert len(server.messages) <= seen + 1


def test_read_only_commands_refuse_what_is_left_of_a_deleted_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    (tmp_path / "state.db-wal").write_bytes(b"\0" * 32)
    for command in (["status"], ["warmup"], ["suppress", "list"]):
        result = mailcast(*command, state=state)
        assert result.code == 74 and "deleted" in result.err, command


def test_a_signal_that_arrives_twice_at_once_still_stops_gently(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    """GNU timeout signals the process and its group, so mailcast gets the same SIGTERM twice."""
    import signal

    server = smtp_server(delay=0.1)
    campaign = write_campaign(tmp_path / "c", 40, transport=smtp(server.port, connections=4))
    state = tmp_path / "state.db"
    proc = start_mailcast("send", str(campaign), "--yes", state=state)
    wait_for_messages(server, 4)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 75
    report = mailcast("report", str(campaign), "--json", state=state).json()
    assert report["totals"]["sending"] == 0  # nothing left in doubt
    assert report["totals"]["sent"] == len(server.messages)


def test_a_second_sigterm_later_stops_at_once(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    import signal

    server = smtp_server(hold_reply={"r2@example.com"})  # r2's message stays in flight: its reply never comes
    campaign = write_campaign(tmp_path / "c", 40, transport=smtp(server.port))
    proc = start_mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    wait_for_messages(server, 2)
    proc.send_signal(signal.SIGTERM)  # the first waits for the message in flight
    time.sleep(1.2)  # a person (or a script) asking a second time, not an echo of the first
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM


def test_an_older_copy_of_the_state_file_is_refused(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    state = tmp_path / "state.db"
    assert mailcast("suppress", "add", "nobody@example.com", state=state).code == 0
    backup = tmp_path / "backup.db"
    backup.write_bytes(state.read_bytes())  # a backup taken before the campaign's first run
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    state.write_bytes(backup.read_bytes())  # "restored from a backup"
    result = mailcast("send", str(campaign), "--yes", state=state)
    assert result.code == 74 and "older copy" in result.err and "run 1" in result.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 2


def test_a_copy_of_the_state_file_or_a_backup_of_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 6)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    backup = tmp_path / "backup.db"
    backup.write_bytes(state.read_bytes())  # run 1 had sent 2
    # a second live copy of the same state file, elsewhere
    copy = mailcast("send", str(campaign), "--yes", "--limit", "2", state=backup)
    assert copy.code == 74 and "is a copy of" in copy.err and f"--state {state}" in copy.err
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75  # now 4 sent
    state.write_bytes(backup.read_bytes())  # the backup restored over it
    older = mailcast("send", str(campaign), "--yes", state=state)
    assert older.code == 74 and "older copy" in older.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 4  # nobody twice


def test_a_marker_of_the_version_before_still_finds_an_older_copy(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 6)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75
    backup = tmp_path / "backup.db"
    backup.write_bytes(state.read_bytes())  # run 1 had sent 2
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=state).code == 75  # now 4
    marker = tmp_path / "c" / ".mailcast" / "news.yaml.state"
    fields = json.loads(marker.read_text(encoding="utf-8"))
    assert fields["claims"] == 4
    fields["attempts"] = fields.pop("claims")  # as the version before this one wrote it
    marker.write_text(json.dumps(fields, indent=2), encoding="utf-8")
    state.write_bytes(backup.read_bytes())
    older = mailcast("send", str(campaign), "--yes", state=state)
    assert older.code == 74 and "older copy" in older.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 4


def test_a_state_file_moved_on_for_good_goes_on_and_a_renamed_copied_campaign_starts_fresh(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 4)
    first, moved = tmp_path / "first.db", tmp_path / "moved.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=first).code == 75
    first.rename(moved)
    assert mailcast("send", str(campaign), "--yes", state=moved).code == 0  # the file moved: its runs go on
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 4
    shutil.copytree(tmp_path / "c", tmp_path / "copy")
    copied = tmp_path / "copy" / "news.yaml"
    copied.write_text(copied.read_text(encoding="utf-8").replace("name: news", "name: news-2"), encoding="utf-8")
    fresh = mailcast("send", str(copied), "--yes", state=moved)  # the copied marker is the old campaign's
    assert fresh.code == 0 and "4 sent now" in fresh.out


def test_renaming_a_campaign_with_an_unfinished_run_continues_it(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 4)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=state).code == 75
    campaign.write_text(campaign.read_text(encoding="utf-8").replace("name: news", "name: weekly"), encoding="utf-8")
    renamed = mailcast("send", str(campaign), "--yes", state=state)
    assert renamed.code == 0 and "3 sent now; 4 of 4 sent in all" in renamed.out
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 4


def test_the_daily_limit_is_reported_even_with_limit_and_many_connections(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(delay=0.02)
    campaign = write_campaign(
        tmp_path / "c", 10, transport=smtp(server.port, connections=4), extra={"limits": {"daily": 2}}
    )
    state = tmp_path / "state.db"
    result = mailcast("send", str(campaign), "--yes", "--limit", "3", state=state, now="2026-12-01T10:00:00+00:00")
    assert result.code == 75 and len(server.messages) == 2
    run = mailcast("status", "--json", state=state).json()[0]
    assert "daily limit" in run["reason"] and run["resume_at"].startswith("2026-12-02T00:00")


def test_a_renamed_campaign_keeps_its_history(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state).code == 0
    campaign.write_text(campaign.read_text(encoding="utf-8").replace("name: news", "name: weekly"), encoding="utf-8")
    again = mailcast("send", str(campaign), "--yes", state=state)
    assert again.code == 0 and "already completed" in again.out  # not sent to everyone again
    assert [(r["campaign"], r["run"]) for r in mailcast("status", "--json", state=state).json()] == [("weekly", 1)]
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 3


def test_a_renamed_campaign_file_named_after_itself_is_refused_until_told(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    campaign = write_campaign(folder, 4)
    plain = campaign.read_text(encoding="utf-8").replace("name: news\n", "")
    (folder / "campaign.yaml").write_text(plain, encoding="utf-8")  # named after its file: campaign
    campaign.unlink()
    state = tmp_path / "state.db"
    assert mailcast("send", str(folder / "campaign.yaml"), "--yes", "--limit", "2", state=state).code == 75
    (folder / "campaign.yaml").rename(folder / "newsletter.yaml")
    refused = mailcast("send", str(folder / "newsletter.yaml"), "--yes", state=state)
    assert refused.code == 78 and "add `name: campaign`" in refused.err
    (folder / "newsletter.yaml").write_text("name: campaign\n" + plain, encoding="utf-8")
    assert mailcast("send", str(folder / "newsletter.yaml"), "--yes", state=state).code == 0
    assert len(maildir_recipients(folder / "outbox")) == 4


def test_a_state_file_reached_through_a_symlink_or_moved_back_is_not_a_copy(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    campaign = write_campaign(tmp_path / "c", 6)
    linked = tmp_path / "link" / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=linked).code == 75
    real = tmp_path / "real" / "state.db"
    assert mailcast("send", str(campaign), "--yes", "--limit", "2", state=real).code == 75
    # moved for good, then once more the old path (a cron line not yet changed): a new file appears there
    (tmp_path / "real").rename(tmp_path / "moved")
    stale_cron = mailcast("send", str(campaign), "--yes", state=real)
    assert stale_cron.code == 74
    on = mailcast("send", str(campaign), "--yes", state=tmp_path / "moved" / "state.db")
    assert on.code == 0 and len(maildir_recipients(tmp_path / "c" / "outbox")) == 6


def test_a_campaign_given_by_its_folder(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert mailcast("init", str(tmp_path / "rate"), state=state).code == 0
    assert mailcast("send", str(tmp_path / "rate" / "campaign.yaml"), "--yes", state=state).code == 0
    for command in ("report", "status"):
        result = mailcast(command, str(tmp_path / "rate"), state=state)
        assert result.code == 0 and "rate" in result.out, command


def test_a_second_send_of_the_campaign_with_another_state_file_keeps_its_marker_whole(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    import signal

    server = smtp_server(delay=0.01)
    campaign = write_campaign(tmp_path / "c", 400, transport=smtp(server.port))
    first, second = tmp_path / "a" / "state.db", tmp_path / "b" / "state.db"
    first.parent.mkdir()
    second.parent.mkdir()
    proc = start_mailcast("send", str(campaign), "--yes", state=first)  # keeps its marker in step as it goes
    wait_for_messages(server, 20)
    other = mailcast("send", str(campaign), "--yes", "--new-state", "--limit", "2", state=second)
    assert other.code == 75, other.out + other.err
    time.sleep(0.5)  # the first send goes on claiming meanwhile
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    marker = json.loads((tmp_path / "c" / ".mailcast" / "news.yaml.state").read_text(encoding="utf-8"))
    assert marker["state_file"] == str(second.resolve()) and marker["claims"] == 2  # the second's, untouched
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=second).code == 75  # not an older copy


def test_a_renamed_campaign_meeting_no_state_file_is_not_taken_for_a_copy(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    home = tmp_path / "home.db"
    assert mailcast("send", str(campaign), "--yes", state=home).code == 0
    campaign.write_text(campaign.read_text(encoding="utf-8").replace("name: news", "name: newsletter"), "utf-8")
    elsewhere = tmp_path / "cron-home" / "state.db"  # cron with another HOME: no state file there yet
    refused = mailcast("send", str(campaign), "--yes", state=elsewhere)
    assert refused.code == 74 and str(home) in refused.err, refused.err
    assert not elsewhere.exists() and len(maildir_recipients(tmp_path / "c" / "outbox")) == 3
    again = mailcast("send", str(campaign), "--yes", state=home)  # the right one knows its runs, renamed
    assert again.code == 0 and "already completed" in again.out
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 3


def test_a_marker_that_cannot_be_written_is_said_and_sending_goes_on(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 3)
    (tmp_path / "c" / ".mailcast").write_text("in the way", encoding="utf-8")  # a file where the folder goes
    sent = mailcast("send", str(campaign), "--yes", state=tmp_path / "state.db")
    assert sent.code == 0, sent.out + sent.err
    assert "could not write" in sent.out + sent.err and "cannot warn" in sent.out + sent.err
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 3
