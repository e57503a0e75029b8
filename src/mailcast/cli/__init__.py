"""The command line: parse options, call one core function, show its result, pick the exit code.

This module holds the app, the options every command shares and the steps they share; the
commands are in campaign_commands.py (init, check, preview, send, test, run-due),
run_commands.py (status, pause, resume, cancel, warmup, report) and suppress_commands.py.

Heavy modules are imported inside the commands that need them, so `mailcast --help` stays quick.
Annotations are real objects here, not strings (no `from __future__ import annotations`): Typer
reads every command's signature to build the help, and strings would each be parsed again.
"""

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mailcast import __version__
from mailcast.errors import MailcastError

if TYPE_CHECKING:
    from rich.console import Console

    from mailcast.campaign import Campaign
    from mailcast.settings import Settings
    from mailcast.state import StateStore

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    name="mailcast",
    help="Send personalised email campaigns from the terminal and from cron: checked, exactly once, with warm-up.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)
suppress_app = typer.Typer(
    help="The suppression list: addresses that are never sent to.", no_args_is_help=True, context_settings=HELP_OPTIONS
)
app.add_typer(suppress_app, name="suppress")

F = TypeVar("F", bound=Callable[..., Any])
CampaignArg = Annotated[Path, typer.Argument(help="The campaign file (YAML).", metavar="CAMPAIGN")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout and nothing else.")]
STATE_KEY = "mailcast.state"
INTERRUPTED = 130  # Ctrl-C outside a send: nothing was changed


def _remember_state(ctx: typer.Context, value: Path | None) -> Path | None:
    """`--state` may stand before the command or after it; either way it is kept in the Typer context."""
    if value is not None:
        ctx.find_root().meta[STATE_KEY] = value
    return value


StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="The state file. Default: $MAILCAST_STATE, else mailcast/state.db in your state directory.",
        metavar="PATH",
        callback=_remember_state,
    ),
]


def _reports_errors(func: F) -> F:
    """Turn a MailcastError into its message (no traceback) and its exit code from the README's table."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MailcastError as exc:
            from mailcast.display import make_console, show_error

            show_error(make_console(stderr=True), exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(INTERRUPTED) from None

    return run  # type: ignore[return-value]


def command(*args: Any, target: typer.Typer = app, **kwargs: Any) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        target.command(*args, **kwargs)(_reports_errors(func))
        return func

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailcast {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    state: StateOpt = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """The options before the command; --state may also follow the command."""


# Shared steps ---------------------------------------------------------------


def state_path(ctx: typer.Context) -> Path:
    given = ctx.find_root().meta.get(STATE_KEY)
    if given is not None:
        return Path(given)
    if os.environ.get("MAILCAST_STATE"):
        return Path(os.environ["MAILCAST_STATE"])
    from platformdirs import user_state_path

    return user_state_path("mailcast") / "state.db"


def open_store(ctx: typer.Context, *, must_exist: bool = False) -> "StateStore | None":
    """The state store; None when `must_exist` and there is no state file yet (nothing to read)."""
    from mailcast.state import StateStore

    path = state_path(ctx)
    remains = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    if must_exist and not path.exists() and not any(p.exists() for p in remains):
        return None
    return StateStore(path)  # refuses what is left of a deleted file


@contextmanager
def reading_store(ctx: typer.Context) -> "Iterator[StateStore | None]":
    """The state store for commands that only read it: None when there is no state file yet."""
    store = open_store(ctx, must_exist=True)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def read_settings() -> "Settings":
    from mailcast.clock import current_time, local_zone
    from mailcast.settings import Settings

    env = dict(os.environ)
    fixed = env.get("MAILCAST_NOW")
    first = current_time(env)
    from datetime import datetime, timezone

    clock = (lambda: first) if fixed else functools.partial(datetime.now, timezone.utc)
    return Settings(clock=clock, zone=local_zone(), env=env)


def ask_missing_password(campaign: "Campaign", settings: "Settings") -> None:
    """At a terminal, ask for the SMTP password (hidden, on stderr) when the variable that
    transport.password_env names is not set, as mailmerge does: once per command, before anything is
    sent; it goes into `settings.env`, where the core looks it up. Without a terminal (cron) nothing
    is asked, and the core says which variable to set (exit 78)."""
    from mailcast.campaign import SmtpTransport

    transport = campaign.transport
    if not isinstance(transport, SmtpTransport) or not transport.password_env:
        return
    name = transport.password_env
    if settings.env.get(name) or not sys.stdin.isatty():
        return
    import getpass

    from mailcast.errors import ConfigError

    try:
        password = getpass.getpass(
            f"Password for {transport.username} at {transport.host} (${name} is not set): ", stream=sys.stderr
        )
    except EOFError:
        password = ""
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # the typing was hidden: end the prompt's line before "Interrupted."
        raise
    if not password:
        raise ConfigError(
            f"no password was typed for {transport.username} at {transport.host}, and {name} is not set",
            hint=f"Type it at the prompt, or set the variable first: export {name}='…'",
        )
    settings.env = {**settings.env, name: password}


def load(path: Path) -> "Campaign":
    from mailcast.campaign_file import load_campaign

    return load_campaign(path)


def campaign_name(value: str) -> "tuple[str, Campaign | None]":
    from mailcast.campaign_file import campaign_named

    return campaign_named(value)


def console_for_output() -> "Console":
    from mailcast.display import make_console

    return make_console()


def main() -> None:
    app()


# The commands register themselves with `app` when imported.
from mailcast.cli import bounce_commands, campaign_commands, run_commands, suppress_commands  # noqa: E402

__all__ = ["app", "bounce_commands", "campaign_commands", "main", "run_commands", "suppress_commands"]
