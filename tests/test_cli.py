"""The command line as a new user meets it: init, check, preview, help, errors without tracebacks."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest

from helpers import mailcast, write_campaign

COMMANDS = [
    "init", "check", "preview", "send", "test", "run-due", "status", "pause", "resume", "cancel",
    "warmup", "report", "suppress", "suppress list", "suppress add", "suppress remove", "suppress import",
    "bounces", "bounces import",
]  # fmt: skip
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str, tmp_path: Path) -> None:
    result = mailcast(*command.split(), "--help", state=tmp_path / "s.db")
    assert result.code == 0
    assert "Usage:" in result.out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"**{command.split()[-1]}" in readme or f"`{command.split()[-1]}" in readme


def test_init_scaffolds_a_campaign_that_checks_clean_and_sends(tmp_path: Path) -> None:
    folder = tmp_path / "spring"
    state = tmp_path / "s.db"
    assert mailcast("init", str(folder), state=state).code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["body.html", "body.txt", "campaign.yaml", "recipients.csv"]
    check = mailcast("check", str(folder / "campaign.yaml"), state=state)
    assert check.code == 0 and "2 of 2 recipients ready" in check.out
    assert mailcast("send", str(folder / "campaign.yaml"), "--yes", state=state).code == 0
    assert len(list((folder / "outbox" / "new").iterdir())) == 2
    again = mailcast("init", str(folder), state=state)
    assert again.code == 2 and "already exist" in again.err


def test_a_broken_campaign_gets_all_four_problems_in_one_check(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    rows = (
        ["email,first_name"]
        + [f"p{i}@example.com,P{i}" for i in range(1, 6)]
        + ["bob@@example.com,Bob", "z@example.com,Z"]
    )
    folder.mkdir()
    (folder / "recipients.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")  # the bad address is on line 7
    html = (
        ["<html><body>"] + ["<p>line</p>"] * 10 + ["{% if first_name %}<p>Hi</p>"] + ["</body></html>"]
    )  # unclosed if: line 12
    (folder / "body.html").write_text("\n".join(html) + "\n", encoding="utf-8")
    (folder / "body.txt").write_text("Hello {{ first_name }}, your code is {{ coupon }}\n", encoding="utf-8")
    (folder / "campaign.yaml").write_text(
        "from: news@example.com\nsubject: Hi\ntemplate: {html: body.html, text: body.txt}\nrecipients: recipients.csv\n",
        encoding="utf-8",
    )
    result = mailcast("check", str(folder / "campaign.yaml"), state=tmp_path / "s.db")
    assert result.code == 65
    assert re.search(r"recipients\.csv:7: .*bob@@example\.com", result.out)
    assert re.search(r"body\.html:1[23]: .*syntax error", result.out)
    assert re.search(r"body\.txt.*'coupon'", result.out)
    data = mailcast("check", str(folder / "campaign.yaml"), "--json", state=tmp_path / "s.db").json()
    assert data["ok"] is False
    assert {(e.get("file"), e.get("line")) for e in data["errors"]} >= {("recipients.csv", 7), ("body.html", 12)}

    # with an unknown key too, one check still reports all four, and exits 78 for the campaign file
    with (folder / "campaign.yaml").open("a", encoding="utf-8") as handle:
        handle.write("colour: red\n")
    everything = mailcast("check", str(folder / "campaign.yaml"), state=tmp_path / "s.db")
    assert everything.code == 78
    assert re.search(r"campaign\.yaml:5: unknown key colour", everything.out)
    assert re.search(r"recipients\.csv:7: .*bob@@example\.com", everything.out)
    assert re.search(r"body\.html:12: .*syntax error", everything.out)
    assert re.search(r"body\.txt.*'coupon'", everything.out)


def test_preview_shows_one_message_and_writes_eml_files(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 4)
    state = tmp_path / "s.db"
    shown = mailcast("preview", str(campaign), "--row", "3", state=state)
    assert shown.code == 0
    assert "To: r3@example.com" in shown.out and "Subject: Hi Name3" in shown.out and "Hello Name3" in shown.out
    by_address = mailcast("preview", str(campaign), "--email", "R2@example.com", state=state)
    assert "To: r2@example.com" in by_address.out
    missing = mailcast("preview", str(campaign), "--row", "9", state=state)
    assert missing.code == 2 and "row 9" in missing.err
    out = tmp_path / "eml"
    written = mailcast("preview", str(campaign), "--out", str(out), "--limit", "3", state=state)
    assert written.code == 0
    files = sorted(out.glob("*.eml"))
    assert len(files) == 3
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["To"] == "r1@example.com" and parsed["Subject"] == "Hi Name1"
    assert not state.exists()  # preview touches no state


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert mailcast("send", state=tmp_path / "s.db").code == 2
    assert mailcast("send", "x.yaml", "--limit", "0", state=tmp_path / "s.db").code == 2


def test_bad_mailcast_now_is_explained(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1)
    result = mailcast("send", str(campaign), "--yes", state=tmp_path / "s.db", now="tomorrow")
    assert result.code == 2 and "MAILCAST_NOW" in result.err


def test_suppress_add_list_remove_import(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    assert mailcast("suppress", "add", "A@example.com", "b@example.com", "--reason", "asked", state=state).code == 0
    assert mailcast("suppress", "add", "not-an-address", state=state).code == 2
    listed = mailcast("suppress", "list", "--json", state=state).json()
    assert sorted(e["email"] for e in listed) == ["A@example.com", "b@example.com"]
    assert mailcast("suppress", "remove", "a@example.com", state=state).code == 0
    csv_file = tmp_path / "unsub.csv"
    csv_file.write_text("email\nc@example.com\n", encoding="utf-8")
    assert mailcast("suppress", "import", str(csv_file), state=state).code == 0
    listed = mailcast("suppress", "list", "--json", state=state).json()
    assert sorted(e["email"] for e in listed) == ["b@example.com", "c@example.com"]
    plain = tmp_path / "unsub.txt"
    plain.write_text("e@example.com\nf@example.com\n", encoding="utf-8")
    assert mailcast("suppress", "import", str(plain), state=state).code == 0
    assert len(mailcast("suppress", "list", "--json", state=state).json()) == 4
    plain.write_text("g@example.com\nnot-an-address\n", encoding="utf-8")
    bad = mailcast("suppress", "import", str(plain), state=state)
    assert bad.code == 65 and f"{plain}:2" in bad.err
    campaign = write_campaign(tmp_path / "c", emails=["b@example.com", "d@example.com"])
    assert mailcast("send", str(campaign), "--yes", state=state).code == 1
    assert mailcast("status", "--json", state=state).json()[0]["suppressed"] == 1


def test_report_csv_is_spreadsheet_safe(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "s.db"
    mailcast("send", str(campaign), "--yes", state=state)
    out = tmp_path / "report.csv"
    result = mailcast("report", str(campaign), "--csv", str(out), state=state)
    assert result.code == 0
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "email,status,attempts,last_reply,sent_at,message_id"
    assert len(lines) == 3 and all(",sent,1," in line for line in lines[1:])


def test_status_table_for_people(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 2)
    state = tmp_path / "s.db"
    mailcast("send", str(campaign), "--yes", state=state)
    table = mailcast("status", state=state)
    assert table.code == 0
    assert "news" in table.out and "completed" in table.out and "2/2" in table.out


def test_messages_in_logs_and_pipes_keep_each_line_whole(tmp_path: Path) -> None:
    # a hint that names long paths, printed where no terminal is (cron mails, log files): no line is cut
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "campaign"
    campaign = write_campaign(deep, 2)
    first, other = tmp_path / "first.db", tmp_path / ("another-state-file-" * 4 + ".db")
    assert mailcast("send", str(campaign), "--yes", "--limit", "1", state=first).code == 75
    refused = mailcast("send", str(campaign), "--yes", state=other)
    assert refused.code == 74
    suggested = f"mailcast --state {other} send {campaign} --new-state"
    assert len(suggested) > 160
    assert any(suggested in line for line in refused.err.splitlines()), refused.err
