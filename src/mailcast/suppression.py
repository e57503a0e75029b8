"""Addresses for the suppression list, as `suppress add` and `suppress import` take them."""

from __future__ import annotations

from pathlib import Path

from mailcast.addresses import check_address
from mailcast.errors import ProblemsError, UsageError

MAX_IMPORT = 1_000_000


def checked_addresses(addresses: list[str]) -> list[tuple[str, str]]:
    """(address, key) for each address given, every one checked first: one bad address changes nothing."""
    problems, pairs = [], []
    for address in addresses:
        try:
            check_address(address.strip())
        except ValueError as exc:
            problems.append(str(exc))
        pairs.append((address.strip(), address.strip().lower()))
    if problems:
        raise UsageError("; ".join(problems), hint="Fix the addresses; nothing was changed.")
    return pairs


def load_address_list(path: Path) -> list[tuple[str, str]]:
    """(address, key) from a CSV file with an `email` column, or from a plain list of one address per
    line; every problem is raised at once with its line (nothing is imported then)."""
    from mailcast.recipients import load_recipients

    try:
        first_line = path.read_text(encoding="utf-8-sig").lstrip().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        first_line = ""  # load_recipients says what is wrong with the file
    headerless = "@" in first_line and "email" not in [c.strip() for c in first_line.split(",")]
    loaded = load_recipients(path, "email", shown=str(path), max_rows=MAX_IMPORT, headerless=headerless)
    if loaded.errors:
        raise ProblemsError(problems=loaded.errors)
    return [(r.email, r.key) for r in loaded.rows]
