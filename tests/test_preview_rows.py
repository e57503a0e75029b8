"""preview and test on a good row while other rows are being fixed: the row's message, the others'
problems as warnings; a bad row says its problem; problems of the files themselves still stop them;
`preview --out` (every row) and `send` still refuse while any row is bad."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers import mailcast, smtp, write_campaign
from mailcast.campaign_file import load_campaign
from mailcast.preview import preview_message
from mailcast.settings import Settings
from mailcast.testsend import send_test
from smtp_server import TestServer

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
LONG = "x" * 100
# row 2 (line 3) has a bad address; row 4 (line 5) renders a subject of 103 characters
CSV = f"email,first_name\nr1@example.com,Ann\nbob@@example.com,Bob\nr3@example.com,Cy\nr4@example.com,{LONG}\n"


def campaign(
    folder: Path, csv: str = CSV, *, transport: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> Path:
    path = write_campaign(folder, 1, transport=transport, extra=extra)
    (folder / "recipients.csv").write_text(csv, encoding="utf-8")
    return path


def test_preview_shows_a_good_row_while_others_are_bad(tmp_path: Path) -> None:
    path = campaign(tmp_path / "c")
    state = tmp_path / "s.db"
    for args, row in ((["--row", "3"], 3), (["--email", "R3@example.com"], 3), ([], 1)):
        shown = mailcast("preview", str(path), *args, state=state)
        assert shown.code == 0, shown.err
        assert f"row {row}" in shown.out and f"To: r{row}@example.com" in shown.out
    message = preview_message(load_campaign(path), now=NOW, row=3)
    assert [(p.location, p.row) for p in message.warnings] == [("recipients.csv:3", 2), ("recipients.csv:5", 4)]
    assert "bob@@example.com" in message.warnings[0].message
    assert "103 characters" in message.warnings[1].message
    assert not state.exists()


def test_asking_for_a_bad_row_says_its_problem(tmp_path: Path) -> None:
    path = campaign(tmp_path / "c")
    state = tmp_path / "s.db"
    for args, located in (
        (["--row", "2"], "recipients.csv:3: row 2: "),
        (["--email", "bob@@example.com"], "recipients.csv:3: row 2: "),
        (["--row", "4"], "recipients.csv:5: row 4: the rendered subject is 103 characters long"),
    ):
        refused = mailcast("preview", str(path), *args, state=state)
        assert refused.code == 65, refused.out
        assert f"error: {located}" in refused.err
        assert "1 error(s)" in refused.err  # that row's problem, not the others'
        assert "From:" not in refused.out
    missing = mailcast("preview", str(path), "--row", "9", state=state)
    assert missing.code == 2 and "row 9 is not a sendable recipient (rows run from 1 to 4)" in missing.err


def test_preview_out_and_send_still_refuse_while_any_row_is_bad(tmp_path: Path) -> None:
    path = campaign(tmp_path / "c")
    state = tmp_path / "s.db"
    out = tmp_path / "eml"
    written = mailcast("preview", str(path), "--out", str(out), state=state)
    assert written.code == 65
    assert "recipients.csv:3: row 2" in written.err and "recipients.csv:5: row 4" in written.err
    assert not out.exists()
    sent = mailcast("send", str(path), "--yes", state=state)
    assert sent.code == 65
    assert not (tmp_path / "c" / "outbox").exists()


def test_problems_of_the_files_themselves_still_stop_preview_and_test(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    path = campaign(folder)
    state = tmp_path / "s.db"
    (folder / "body.txt").write_text("Hello {{ first_name }}\n{{ coupon }}\n", encoding="utf-8")
    for args in (("preview", "--row", "1"), ("test", "--to", "me@example.org", "--row", "1")):
        refused = mailcast(args[0], str(path), *args[1:], state=state)
        assert refused.code == 65
        assert "body.txt:2: body.txt uses the variable 'coupon', but recipients.csv has no such column" in refused.err
    (folder / "body.txt").write_text("Hello {{ first_name }}\n", encoding="utf-8")
    unclosed = 'email,first_name\nr1@example.com,Ann\nr2@example.com,"Bo\nr3@example.com,Cy\n'
    (folder / "recipients.csv").write_text(unclosed, encoding="utf-8")
    refused = mailcast("preview", str(path), "--row", "1", state=state)
    assert refused.code == 65 and "recipients.csv:3: a quote opens a value on this line" in refused.err


def test_test_sends_a_good_row_while_others_are_bad(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server()
    path = campaign(tmp_path / "c", transport=smtp(server.port))
    state = tmp_path / "s.db"
    refused = mailcast("test", str(path), "--to", "me@example.org", "--row", "2", state=state)
    assert refused.code == 65 and "recipients.csv:3: row 2: " in refused.err
    assert server.messages == []
    sent = mailcast("test", str(path), "--to", "me@example.org", "--row", "3", state=state)
    assert sent.code == 0, sent.err
    assert "sent: me@example.org" in sent.out
    assert [(m.to, m.parsed()["Subject"]) for m in server.messages] == [("me@example.org", "Hi Cy")]
    result = send_test(
        load_campaign(path), Settings(clock=lambda: NOW, zone=timezone.utc), to=["boss@example.org"], row=1
    )
    assert result.row == 1 and [(a, d.status) for a, d in result] == [("boss@example.org", "sent")]
    assert [p.row for p in result.warnings] == [2, 4]
    assert mailcast("status", "--json", state=state).json() == []  # recorded nowhere


def test_every_row_bad_is_every_row_s_problem(tmp_path: Path) -> None:
    path = campaign(tmp_path / "c", f"email,first_name\nbob@@example.com,Bob\nr2@example.com,{LONG}\n")
    shown = mailcast("preview", str(path), state=tmp_path / "s.db")
    assert shown.code == 65
    assert "recipients.csv:2: row 1: " in shown.err and "recipients.csv:3: row 2: " in shown.err


def test_permissive_skipped_and_repeated_rows_say_why(tmp_path: Path) -> None:
    csv = "email,first_name\nr1@example.com,Ann\nbob@@example.com,Bob\nR1@example.com,Ann again\n"
    path = campaign(tmp_path / "c", csv, extra={"validation": "permissive"})
    state = tmp_path / "s.db"
    skipped = mailcast("preview", str(path), "--row", "2", state=state)
    assert skipped.code == 65
    assert "recipients.csv:3: row 2: " in skipped.err and "(row skipped: validation is permissive)" in skipped.err
    repeated = mailcast("preview", str(path), "--row", "3", state=state)
    assert repeated.code == 2
    assert "row 3 repeats row 1 (R1@example.com), which is sent once: ask for row 1" in repeated.err
    assert preview_message(load_campaign(path), now=NOW, row=1).warnings == ()  # permissive: nothing stops a send
