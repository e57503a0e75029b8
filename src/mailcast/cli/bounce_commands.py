"""`mailcast bounces import`: bounces, complaints and unsubscribe mails read back from a mailbox.

(Annotations are real objects, not strings: Typer reads each signature to build the help.)
"""

import os
import sys
from typing import Annotated

import typer

from mailcast.cli import HELP_OPTIONS, JsonOpt, StateOpt, app, command, console_for_output, open_store, read_settings
from mailcast.errors import ConfigError

bounces_app = typer.Typer(
    help="Bounces, complaints and unsubscribe mails read back from a mailbox.",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(bounces_app, name="bounces")


def _imap_password(source: str, variable: str) -> str:
    """From the variable named by --password-env; at a terminal, asked for when it is not set."""
    from mailcast.mailbox_sources import imap_user

    user = imap_user(source)  # a malformed address is said first, before any password is asked for
    password = os.environ.get(variable)
    if password:
        return password
    if sys.stdin.isatty():
        return str(typer.prompt(f"IMAP password for {user}", hide_input=True, err=True))
    raise ConfigError(
        f"{source} needs a password, and the variable {variable} is not set",
        hint=f"Set it (export {variable}='…'), or name another with --password-env.",
    )


@command("import", target=bounces_app)
def bounces_import(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A Maildir folder, an mbox file, or imap://user@host[:port]/FOLDER (imaps:// for TLS).",
            metavar="SOURCE",
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    password_env: Annotated[
        str, typer.Option(help="With IMAP: the environment variable that holds the password.")
    ] = "MAILCAST_IMAP_PASSWORD",
    move_to: Annotated[
        str | None, typer.Option(help="With IMAP: move processed messages to this folder (default: flag them seen).")
    ] = None,
    as_json: JsonOpt = False,
    state: StateOpt = None,
) -> None:
    """Read every message of SOURCE: hard bounces, complaints and unsubscribe mails suppress their
    address and mark the recipient; soft bounces are noted. Importing twice changes nothing."""
    from mailcast.bounces import KINDS, import_feedback
    from mailcast.display import print_json, show_warnings
    from mailcast.mailbox_sources import is_imap, open_source

    settings = read_settings()
    password = _imap_password(source, password_env) if is_imap(source) else None
    console = console_for_output()
    store = open_store(ctx)
    assert store is not None
    try:
        mailbox = open_source(source, password=password, move_to=move_to)
        try:
            from mailcast.display import counting_progress

            with counting_progress(console, "reading", mailbox.count, shown=not as_json) as tick:
                summary = import_feedback(
                    mailbox, store, now=settings.clock(), zone=settings.zone, dry_run=dry_run, progress=tick
                )
        finally:
            mailbox.close()
    finally:
        store.close()
    if as_json:
        print_json(summary.as_dict())
        return
    show_warnings(console, summary.skipped)
    head = "Dry run: would change" if dry_run else "Read"
    console.print(f"{head} {source}:", markup=False)
    for kind in KINDS:
        console.print(f"  {kind}: {summary.counts[kind]}", markup=False)
