"""Group commit: claims from many connections share disk syncs, and each is still claimed once."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

from mailcast.send_loop import GroupClaims
from mailcast.state import Claimed, NewRecipient, StateStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 12, 1)


def test_claims_arriving_during_a_commit_go_in_the_next_one_together(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = store.create_run(
            campaign="news",
            campaign_file="/x/news.yaml",
            type="batch",
            occurrence=None,
            sender_domain="example.com",
            now=NOW,
            recipients=[NewRecipient(i, f"p{i}@example.com", f"p{i}@example.com", {}) for i in range(1, 161)],
        )
        commits: list[int] = []
        real = store.claim_many

        def slow_claim_many(*args: Any, **kwargs: Any) -> Any:
            commits.append(args[1])  # how many claims this commit carries
            time.sleep(0.02)  # a disk whose sync takes 20 ms
            return real(*args, **kwargs)

        store.claim_many = slow_claim_many  # type: ignore[method-assign]
        claims = GroupClaims(store, run)
        got: list[str] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while isinstance(one := claims.take(day=DAY, limit=None, now=NOW), Claimed):
                    got.append(one.key)
            except BaseException as exc:  # a worker's error must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(got) == sorted(f"p{i}@example.com" for i in range(1, 161))  # each once
        assert store.counts(run.id)["sending"] == 160
        assert len(commits) < 40 and max(commits) > 1  # far fewer syncs than claims


def test_a_limit_reached_inside_a_batch_stops_those_beyond_it(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run = store.create_run(
            campaign="news",
            campaign_file="/x/news.yaml",
            type="batch",
            occurrence=None,
            sender_domain="example.com",
            now=NOW,
            recipients=[NewRecipient(i, f"p{i}@example.com", f"p{i}@example.com", {}) for i in range(1, 11)],
        )
        claimed, stop = store.claim_many(run, 10, day=DAY, limit=4, now=NOW)
        assert len(claimed) == 4 and stop == "limit"
        assert store.counts(run.id)["sending"] == 4 and store.counts(run.id)["pending"] == 6


def test_the_rate_cap_holds_when_claims_commit_together(tmp_path: Path, smtp_server: Any, monkeypatch: Any) -> None:
    """A disk sync slower than 1/rate batches the claims of several connections; the messages
    themselves still leave 1/rate seconds apart."""
    import mailcast.sending
    import mailcast.transports
    from helpers import smtp, write_campaign
    from mailcast.campaign_file import load_campaign
    from mailcast.sending import SendOptions, Settings, send_campaign

    server = smtp_server()
    campaign = load_campaign(
        write_campaign(tmp_path / "c", 12, transport=smtp(server.port, connections=4), extra={"limits": {"rate": 5}})
    )
    clock = [0.0]
    lock = threading.Lock()
    sent_at: list[float] = []
    real_open = mailcast.transports.open_connection

    def open_timed(*args: Any, **kwargs: Any) -> Any:
        connection = real_open(*args, **kwargs)
        real_send = connection.send

        def send(*a: Any, **k: Any) -> Any:
            with lock:
                sent_at.append(clock[0])
            return real_send(*a, **k)

        connection.send = send  # type: ignore[method-assign]
        return connection

    monkeypatch.setattr(mailcast.sending, "open_connection", open_timed)

    def sleep(seconds: float) -> None:
        with lock:
            clock[0] += seconds

    settings = Settings(clock=lambda: NOW, zone=timezone.utc, sleep=sleep, monotonic=lambda: clock[0])
    with StateStore(tmp_path / "state.db") as store:
        real_claim = store.claim_many

        def slow_claim_many(*args: Any, **kwargs: Any) -> Any:
            with lock:
                clock[0] += 0.5  # each commit's sync takes longer than 1/rate (0.2 s)
            return real_claim(*args, **kwargs)

        store.claim_many = slow_claim_many  # type: ignore[method-assign]
        outcome = send_campaign(campaign, store, settings, SendOptions())
    assert outcome.sent_now == 12 and len(server.messages) == 12
    ordered = sorted(sent_at)
    assert min(b - a for a, b in pairwise(ordered)) >= 0.2 - 1e-9
