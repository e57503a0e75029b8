"""`mailcast run-due`, the cron entry point: scheduled and recurring campaigns over simulated time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import mailcast, maildir_recipients, smtp, write_campaign
from smtp_server import TestServer


def test_scheduled_campaign_goes_once_after_its_start(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    write_campaign(folder / "news", 3, extra={"schedule": {"start": "2026-12-01 09:00", "timezone": "Europe/Berlin"}})
    state = tmp_path / "state.db"
    before = mailcast("run-due", str(folder), state=state, now="2026-12-01T07:59:00+00:00")
    assert (before.code, before.out, before.err) == (0, "", "")
    status = mailcast("status", "--json", state=state, now="2026-12-01T07:59:00+00:00", cwd=tmp_path).json()
    assert status[0]["status"] == "scheduled" and status[0]["resume_at"].startswith("2026-12-01T08:00")
    after = mailcast("run-due", str(folder), state=state, now="2026-12-01T08:01:00+00:00")
    assert after.code == 0 and "3 sent now" in after.out
    again = mailcast("run-due", str(folder), state=state, now="2026-12-02T08:01:00+00:00")
    assert (again.code, again.out) == (0, "")
    assert len(maildir_recipients(folder / "news" / "outbox")) == 3
    runs = mailcast("status", "--json", state=state).json()
    assert [(r["type"], r["status"]) for r in runs] == [("scheduled", "completed")]


def test_recurring_every_24h_once_a_day_reading_the_csv_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    campaign = write_campaign(folder / "daily", 2, extra={"schedule": {"start": "2026-12-01 09:00", "every": "24h"}})
    state = tmp_path / "state.db"
    for n in (1, 2, 3):
        if n == 3:  # the list changed: the next occurrence uses the new one
            (campaign.parent / "recipients.csv").write_text("email,first_name\nnew@example.com,New\n", encoding="utf-8")
        for hour in (10, 15, 23):
            result = mailcast(
                "run-due", str(folder), state=state, now=f"2026-12-{n:02d}T{hour:02d}:00:00+00:00", TZ="UTC"
            )
            assert result.code == 0, result.err
            assert bool(result.out) == (hour == 10), result.out
    runs = mailcast("status", "--json", state=state).json()
    runs = [r for r in runs if r["run"] is not None]
    assert [r["type"] for r in runs] == ["recurring"] * 3
    assert [r["occurrence"][:13] for r in runs] == ["2026-12-01T09", "2026-12-02T09", "2026-12-03T09"]
    assert maildir_recipients(campaign.parent / "outbox").count("r1@example.com") == 2
    assert "new@example.com" in maildir_recipients(campaign.parent / "outbox")


def test_missed_occurrences_send_only_the_latest(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    write_campaign(folder / "daily", 1, extra={"schedule": {"start": "2026-12-01 09:00", "every": "1d"}})
    state = tmp_path / "state.db"
    result = mailcast("run-due", str(folder), state=state, now="2026-12-05T10:00:00+00:00", TZ="UTC")
    assert result.code == 0
    runs = [r for r in mailcast("status", "--json", state=state).json() if r["run"]]
    assert len(runs) == 1 and runs[0]["occurrence"].startswith("2026-12-05T09:00")


def test_cron_in_local_time_across_a_dst_change(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    schedule = {"start": "2026-03-27 00:00", "cron": "0 9 * * *", "timezone": "Europe/Berlin"}
    write_campaign(folder / "morning", 1, extra={"schedule": schedule})
    state = tmp_path / "state.db"
    moments = [
        ("2026-03-28T07:30:00+00:00", False),  # 08:30 CET: before 09:00, but yesterday's 09:00 is due
        ("2026-03-28T08:05:00+00:00", True),  # 09:05 CET
        ("2026-03-29T06:30:00+00:00", False),  # 08:30 CEST: not yet
        ("2026-03-29T07:05:00+00:00", True),  # 09:05 CEST
    ]
    sent_flags = []
    for now, _ in moments:
        result = mailcast("run-due", str(folder), state=state, now=now, TZ="UTC")
        assert result.code == 0, result.err
        sent_flags.append(bool(result.out))
    assert sent_flags == [True, True, False, True]
    occurrences = [r["occurrence"] for r in mailcast("status", "--json", state=state, TZ="UTC").json() if r["run"]]
    assert occurrences == ["2026-03-27T08:00:00+00:00", "2026-03-28T08:00:00+00:00", "2026-03-29T07:00:00+00:00"]


def test_campaign_without_schedule_is_never_started_by_run_due(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    write_campaign(folder / "plain", 2)
    result = mailcast("run-due", str(folder), state=tmp_path / "state.db", now="2026-12-01T10:00:00+00:00")
    assert (result.code, result.out) == (0, "")
    assert not (folder / "plain" / "outbox").exists()


def test_one_broken_campaign_does_not_stop_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    write_campaign(folder / "good", 2, extra={"schedule": {"start": "2026-12-01 09:00"}})
    (folder / "broken").mkdir()
    (folder / "broken" / "broken.yaml").write_text("from: x@example.com\ncolour: red\n", encoding="utf-8")
    result = mailcast("run-due", str(folder), state=tmp_path / "state.db", now="2026-12-01T10:00:00+00:00", TZ="UTC")
    assert result.code == 78
    assert "broken.yaml" in result.err and "colour" in result.err
    assert len(maildir_recipients(folder / "good" / "outbox")) == 2


def test_run_due_logs_in_with_each_campaigns_password_variable(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password="right")
    folder = tmp_path / "campaigns"
    transport = smtp(server.port, username="news", password_env="NEWS_SMTP_PASSWORD")
    write_campaign(folder / "news", 2, transport=transport, extra={"schedule": {"start": "2026-12-01 09:00"}})
    result = mailcast(
        "run-due", str(folder), state=tmp_path / "s.db", now="2026-12-01T10:00:00+00:00", TZ="UTC",
        NEWS_SMTP_PASSWORD="right",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert sorted(server.recipients()) == ["r1@example.com", "r2@example.com"]


def test_sigterm_stops_run_due_before_the_next_campaign(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    import signal

    from helpers import signal_when, start_mailcast

    server = smtp_server(delay=0.05)
    folder = tmp_path / "campaigns"
    schedule = {"schedule": {"start": "2026-12-01 09:00"}}
    write_campaign(folder / "a", 40, name="a", transport=smtp(server.port), extra=schedule)
    write_campaign(folder / "b", 3, name="b", extra=schedule)
    proc = start_mailcast("run-due", str(folder), state=tmp_path / "s.db", now="2026-12-01T10:00:00+00:00", TZ="UTC")
    err = signal_when(proc, server, 3, signal.SIGTERM)
    assert proc.returncode == 75 and "Traceback" not in err
    assert len(server.messages) < 40 and not (folder / "b" / "outbox").exists()


def test_run_due_skips_quietly_a_campaign_another_process_holds(tmp_path: Path) -> None:
    from mailcast.lock import CampaignLock

    folder = tmp_path / "campaigns"
    write_campaign(folder / "held", 2, name="held", extra={"schedule": {"start": "2026-12-01 09:00"}})
    write_campaign(folder / "free", 2, name="free", extra={"schedule": {"start": "2026-12-01 09:00"}})
    state = tmp_path / "state.db"
    with CampaignLock(tmp_path / "state.db.locks", "held"):  # where StateStore.locks_folder puts them
        result = mailcast("run-due", str(folder), state=state, now="2026-12-01T10:00:00+00:00", TZ="UTC")
    assert result.code == 0, result.err
    assert result.err == "" and "held" not in result.out and "of free: 2 sent" in result.out
    assert not (folder / "held" / "outbox").exists()
    assert len(maildir_recipients(folder / "free" / "outbox")) == 2
    later = mailcast("run-due", str(folder), state=state, now="2026-12-01T10:05:00+00:00", TZ="UTC")
    assert later.code == 0 and "of held: 2 sent" in later.out  # once free, the next run-due sends it


def test_run_due_alone_with_a_held_campaign_prints_nothing(tmp_path: Path) -> None:
    from mailcast.lock import CampaignLock

    folder = tmp_path / "campaigns"
    write_campaign(folder / "held", 2, name="held", extra={"schedule": {"start": "2026-12-01 09:00"}})
    with CampaignLock(tmp_path / "state.db.locks", "held"):
        result = mailcast("run-due", str(folder), state=tmp_path / "state.db", now="2026-12-01T10:00:00+00:00")
    assert (result.code, result.out, result.err) == (0, "", "")
    assert not (folder / "held" / "outbox").exists()


def test_rows_left_in_doubt_are_told_once_and_never_resent(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(drop_on_data={"r2@example.com"})
    folder = tmp_path / "campaigns"
    campaign = write_campaign(folder / "news", 3, transport=smtp(server.port))
    state = tmp_path / "state.db"
    sent = mailcast("send", str(campaign), "--yes", state=state)
    assert sent.code == 75 and "r2@example.com" in sent.out
    first = mailcast("run-due", str(folder), state=state)
    assert first.code == 75
    assert "r2@example.com" in first.out and "--resend-in-doubt" in first.out
    second = mailcast("run-due", str(folder), state=state)
    assert (second.code, second.out, second.err) == (0, "", "")
    assert sorted(server.recipients()) == ["r1@example.com", "r3@example.com"]  # r2's copy was dropped unanswered
