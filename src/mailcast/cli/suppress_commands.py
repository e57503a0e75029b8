"""`mailcast suppress`: the suppression list.

(Annotations are real objects, not strings: Typer reads each signature to build the help.)
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from mailcast.cli import (
    JsonOpt,
    StateOpt,
    command,
    console_for_output,
    open_store,
    read_settings,
    reading_store,
    suppress_app,
)

# Suppression list ----------------------------------------------------------


@command("list", target=suppress_app)
def suppress_list(ctx: typer.Context, as_json: JsonOpt = False, state: StateOpt = None) -> None:
    """List suppressed addresses (expired entries are left out)."""
    from mailcast.display import print_json

    settings = read_settings()
    with reading_store(ctx) as store:
        entries = store.suppressions(now=settings.clock()) if store else []
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    from mailcast.display import show_table

    if not entries:
        console_for_output().print("The suppression list is empty.")
        return
    cells = [[e.email, e.reason, e.added_at[:16], (e.expires_at or "never")[:16]] for e in entries]
    show_table(console_for_output(), ["email", "reason", "added", "expires"], cells)


def _expiry(days: int | None) -> Any:
    from datetime import timedelta

    return read_settings().clock() + timedelta(days=days) if days else None


@command("add", target=suppress_app)
def suppress_add(
    ctx: typer.Context,
    addresses: Annotated[list[str], typer.Argument(help="Addresses to suppress.", metavar="ADDR")],
    reason: Annotated[str, typer.Option(help="Why (shown in lists and reports).")] = "blocked by hand",
    days: Annotated[int | None, typer.Option(help="Expire after N days (default: never).", min=1)] = None,
    state: StateOpt = None,
) -> None:
    """Add addresses to the suppression list."""
    from mailcast.suppression import checked_addresses

    pairs = checked_addresses(addresses)
    store = open_store(ctx)
    assert store is not None
    with store:
        count = store.suppress(pairs, reason=reason, now=read_settings().clock(), expires_at=_expiry(days))
    console_for_output().print(f"Suppressed {count} address(es).")


@command("remove", target=suppress_app)
def suppress_remove(
    ctx: typer.Context,
    addresses: Annotated[list[str], typer.Argument(help="Addresses to take off the list.", metavar="ADDR")],
    state: StateOpt = None,
) -> None:
    """Take addresses off the suppression list."""
    store = open_store(ctx, must_exist=True)
    count = 0
    if store is not None:
        with store:
            count = store.unsuppress(a.strip().lower() for a in addresses)
    console_for_output().print(f"Removed {count} address(es).")


@command("import", target=suppress_app)
def suppress_import(
    ctx: typer.Context,
    csv_file: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with an email column, or a plain list of one address per line.", metavar="FILE"
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (shown in lists and reports).")] = "imported",
    days: Annotated[int | None, typer.Option(help="Expire after N days (default: never).", min=1)] = None,
    state: StateOpt = None,
) -> None:
    """Import addresses into the suppression list from a CSV file."""
    from mailcast.suppression import load_address_list

    pairs = load_address_list(csv_file)
    store = open_store(ctx)
    assert store is not None
    with store:
        count = store.suppress(pairs, reason=reason, now=read_settings().clock(), expires_at=_expiry(days))
    console_for_output().print(f"Suppressed {count} address(es) from {csv_file}.")
