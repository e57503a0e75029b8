"""check_campaign: rendered rows checked, strict vs permissive."""

from __future__ import annotations

from pathlib import Path

from mailcast.campaign_file import load_campaign
from mailcast.checks import check_campaign


def make(tmp_path: Path, csv: str, extra: str = "") -> Path:
    (tmp_path / "recipients.csv").write_text(csv, encoding="utf-8")
    (tmp_path / "body.txt").write_text("Hi {{ name }}\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        'from: a@example.com\nsubject: "{{ name }}"\ntemplate: {text: body.txt}\nrecipients: recipients.csv\n' + extra,
        encoding="utf-8",
    )
    return path


CSV = 'email,name\na@example.com,Ann\nb@example.com,"two\nlines"\nc@example.com,' + "x" * 101 + "\nd@example.com,\n"


def test_rendered_subjects_are_checked(tmp_path: Path) -> None:
    report = check_campaign(load_campaign(make(tmp_path, CSV)))
    found = {(p.line, p.row): p.message for p in report.errors}
    assert set(found) == {(3, 2), (5, 3), (6, 4)}
    assert "line break" in found[(3, 2)]
    assert "101 characters" in found[(5, 3)]
    assert "empty" in found[(6, 4)]
    assert not report.ok


def test_permissive_skips_bad_rows(tmp_path: Path) -> None:
    report = check_campaign(load_campaign(make(tmp_path, CSV, "validation: permissive\n")))
    assert report.ok
    assert [r.email for r in report.sendable] == ["a@example.com"]
    assert [row for row, _, _ in report.skipped] == [2, 3, 4]
    assert all("skipped" in w.message for w in report.warnings)


def test_ad_marker_counts_toward_the_subject(tmp_path: Path) -> None:
    csv = "email,name\na@example.com," + "x" * 96 + "\n"
    assert check_campaign(load_campaign(make(tmp_path, csv))).ok
    report = check_campaign(load_campaign(make(tmp_path, csv, "ad_marker: after\n")))
    assert "101 characters" in report.errors[0].message


def test_ad_marker_reaches_the_message(tmp_path: Path) -> None:
    from datetime import datetime, timezone
    from email import message_from_bytes, policy

    from mailcast.compose import Composer

    campaign = load_campaign(make(tmp_path, "email,name\na@example.com,Sale\n", "ad_marker: before\n"))
    report = check_campaign(campaign)
    assert report.templates is not None
    row = report.sendable[0]
    composed = Composer(campaign, report.templates).compose(
        values=row.values, email=row.email, run_token="t", key=row.key, date=datetime.now(timezone.utc)
    )
    assert message_from_bytes(composed.data, policy=policy.default)["Subject"] == "[AD] Sale"


def test_control_characters_in_values_never_reach_a_header(tmp_path: Path) -> None:
    report = check_campaign(load_campaign(make(tmp_path, "email,name\na@example.com,An\x1bn\nb@example.com,Bo\n")))
    assert [(p.row, "control character" in p.message) for p in report.errors] == [(1, True)]


def test_skipped_rows_keep_their_address_as_written(tmp_path: Path) -> None:
    csv = "email,name\na@example.com,A\nnot-an-address,B\nc@example.com\n"
    report = check_campaign(load_campaign(make(tmp_path, csv, "validation: permissive\n")))
    assert [(row, email) for row, email, _ in report.skipped] == [(2, "not-an-address"), (3, "c@example.com")]
    assert (report.rows_checked, len(report.sendable)) == (3, 1)
