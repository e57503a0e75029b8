"""How tables look: boxes at a wide terminal, records at a narrow one, plain lines in pipes."""

from __future__ import annotations

from rich.console import Console

from mailcast.display import show_table

COLUMNS = ["campaign", "status", "sent"]
ROWS = [["spring-news", "completed", "300/300"], ["weekly", "paused: daily limit reached", "12/40"]]


def render(*, terminal: bool, width: int) -> str:
    console = Console(force_terminal=terminal, width=width, record=True, color_system=None)
    show_table(console, COLUMNS, ROWS, right=["sent"])
    return console.export_text()


def test_a_wide_terminal_gets_a_table() -> None:
    text = render(terminal=True, width=120)
    assert "┃ campaign" in text and "300/300" in text and "paused: daily limit reached" in text


def test_a_narrow_terminal_gets_one_record_under_another_with_nothing_cut() -> None:
    text = render(terminal=True, width=30)
    assert "┃" not in text and "…" not in text
    assert [line.split()[:2] for line in text.splitlines() if line.startswith("sent")] == [
        ["sent", "300/300"],
        ["sent", "12/40"],
    ]


def test_pipes_get_plain_aligned_lines() -> None:
    lines = render(terminal=False, width=200).splitlines()
    assert lines[0].split() == ["campaign", "status", "sent"]
    assert lines[1].split() == ["spring-news", "completed", "300/300"]
    assert len({len(line) for line in lines}) == 1  # columns lined up (the last one right-aligned)
