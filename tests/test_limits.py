"""Daily limits and warm-up across simulated days (MAILCAST_NOW), as a user runs them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from helpers import mailcast, maildir_recipients, smtp, start_mailcast, write_campaign
from smtp_server import TestServer


def day(n: int, hour: int = 10) -> str:
    return f"2026-12-{n:02d}T{hour:02d}:00:00+00:00"


def test_daily_limit_spreads_a_run_over_four_days(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 100, extra={"limits": {"daily": 30}})
    state = tmp_path / "state.db"
    outbox = tmp_path / "c" / "outbox"

    first = mailcast("send", str(campaign), "--yes", state=state, now=day(1))
    assert first.code == 75
    assert "daily limit of 30" in first.out and "70 left" in first.out and "2026-12-02 00:00" in first.out
    row = mailcast("status", "--json", state=state, now=day(1)).json()[0]
    assert (row["status"], row["sent"], row["pending"]) == ("paused", 30, 70)
    assert row["resume_at"].startswith("2026-12-02T00:00")

    same_day = mailcast("send", str(campaign), "--yes", state=state, now=day(1, 18))
    assert same_day.code == 75 and "used up" in same_day.out
    assert len(maildir_recipients(outbox)) == 30

    warm = mailcast("warmup", "--json", state=state, now=day(1, 18)).json()
    assert warm == [
        {
            "domain": "example.com",
            "level": 1,
            "limit": 30,
            "sent_today": 30,
            "remaining": 0,
            "resets_at": warm[0]["resets_at"],
        }
    ]

    assert mailcast("send", str(campaign), "--yes", state=state, now=day(2)).code == 75
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(3)).code == 75
    last = mailcast("send", str(campaign), "--yes", state=state, now=day(4))
    assert last.code == 0 and "Completed" in last.out
    received = Counter(maildir_recipients(outbox))
    assert len(received) == 100 and set(received.values()) == {1}


def test_run_due_continues_a_paused_run_the_next_day(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 8, extra={"limits": {"daily": 5}})
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(1)).code == 75
    quiet = mailcast("run-due", str(tmp_path / "c"), state=state, now=day(1, 23))
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    next_day = mailcast("run-due", str(tmp_path / "c"), state=state, now="2026-12-02T00:01:00+00:00")
    assert next_day.code == 0 and "3 sent now" in next_day.out
    assert len(maildir_recipients(tmp_path / "c" / "outbox")) == 8


def test_a_campaign_that_meets_a_used_up_limit_is_recorded_and_goes_the_next_day(tmp_path: Path) -> None:
    first = write_campaign(tmp_path / "a", 5, name="a", extra={"limits": {"daily": 5}})
    second = write_campaign(tmp_path / "b", 4, name="b", extra={"limits": {"daily": 5}})
    state = tmp_path / "state.db"
    assert mailcast("send", str(first), "--yes", state=state, now=day(1)).code == 0
    waiting = mailcast("send", str(second), "--yes", state=state, now=day(1))
    assert waiting.code == 75 and "used up" in waiting.out and "run-due" in waiting.out
    assert not (tmp_path / "b" / "outbox").exists()
    row = next(r for r in mailcast("status", "--json", state=state, now=day(1)).json() if r["campaign"] == "b")
    assert (row["status"], row["pending"]) == ("paused", 4) and row["resume_at"].startswith("2026-12-02T00:00")
    next_day = mailcast("run-due", str(second), state=state, now=day(2))
    assert next_day.code == 0 and "4 sent now" in next_day.out
    assert len(maildir_recipients(tmp_path / "b" / "outbox")) == 4


def test_standard_warmup_sends_500_then_1000(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1600)
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(1)).code == 75
    assert mailcast("status", "--json", state=state).json()[0]["sent"] == 500
    warm = mailcast("warmup", "--json", state=state, now=day(2)).json()[0]
    assert (warm["level"], warm["limit"], warm["sent_today"]) == (2, 1000, 0)
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(2)).code == 75
    assert mailcast("status", "--json", state=state).json()[0]["sent"] == 1500


def test_rejections_of_5_percent_lower_the_level(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    rejected = {f"r{i}@example.com": "554 5.7.1 Rejected" for i in (15, 16)}
    server = smtp_server(replies=rejected)
    campaign = write_campaign(
        tmp_path / "c", 40, transport=smtp(server.port), extra={"limits": {"warmup": [10, 20, 30]}}
    )
    state = tmp_path / "state.db"
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(1)).code == 75  # 10 sent, clean
    assert mailcast("warmup", "--json", state=state, now=day(2)).json()[0]["limit"] == 20
    assert mailcast("send", str(campaign), "--yes", state=state, now=day(2)).code == 75  # 20 tried, 2 rejected = 10%
    warm = mailcast("warmup", "--json", state=state, now=day(3)).json()[0]
    assert (warm["level"], warm["limit"]) == (1, 10)


def test_two_campaigns_of_one_domain_share_the_limit(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(delay=0.005)
    limits = {"limits": {"daily": 25}}
    one = write_campaign(tmp_path / "a", 30, name="one", transport=smtp(server.port), extra=limits)
    two = write_campaign(
        tmp_path / "b", name="two", transport=smtp(server.port), extra=limits,
        emails=[f"s{i}@example.org" for i in range(1, 31)],
    )  # fmt: skip
    state = tmp_path / "state.db"
    procs = [start_mailcast("send", str(c), "--yes", state=state, now=day(1)) for c in (one, two)]
    outcomes = [(p.wait(timeout=120), p.communicate()) for p in procs]
    assert sorted(code for code, _ in outcomes) == [75, 75], outcomes
    assert len(server.messages) == 25
    assert mailcast("warmup", "--json", state=state, now=day(1)).json()[0]["sent_today"] == 25
