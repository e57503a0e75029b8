"""The command line: parse options, call one core function, show its result, pick the exit code.

Heavy modules are imported inside the commands that need them, so `mailcast --help` stays quick.
Annotations are real objects here, not strings (no `from __future__ import annotations`): Typer
reads every command's signature to build the help, and strings would each be parsed again.
"""

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mailcast import __version__
from mailcast.errors import ExitCode, MailcastError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from mailcast.campaign import Campaign
    from mailcast.sending import SendOutcome, Settings, StopRequest
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
    """Turn a MailcastError into its message (no traceback) and its exit code from SPEC's table."""

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


def _state_path(ctx: typer.Context) -> Path:
    given = ctx.find_root().meta.get(STATE_KEY)
    if given is not None:
        return Path(given)
    if os.environ.get("MAILCAST_STATE"):
        return Path(os.environ["MAILCAST_STATE"])
    from platformdirs import user_state_path

    return user_state_path("mailcast") / "state.db"


def _open_store(ctx: typer.Context, *, must_exist: bool = False) -> "StateStore | None":
    """The state store; None when `must_exist` and there is no state file yet (nothing to read)."""
    from mailcast.state import StateStore

    path = _state_path(ctx)
    if must_exist and not path.exists():
        return None
    return StateStore(path)


@contextmanager
def _reading_store(ctx: typer.Context) -> "Iterator[StateStore | None]":
    """The state store for commands that only read it: None when there is no state file yet."""
    store = _open_store(ctx, must_exist=True)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


GENTLE_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill or timeout, a closed terminal


def _installed(handlers: dict[int, Any]) -> dict[int, Any]:
    """Install handlers for the signals not ignored (under nohup, SIGHUP stays ignored); the old ones."""
    return {
        signum: signal.signal(signum, handler)
        for signum, handler in handlers.items()
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


@contextmanager
def _stops_gently(stop: "StopRequest") -> Iterator[None]:
    """Ctrl-C, SIGTERM (kill, cron's timeout) or SIGHUP (the terminal closed) set `stop`: the send
    finishes and records the messages in flight and starts no new one, so none is left in doubt.
    A second Ctrl-C or SIGTERM stops at once; a second SIGHUP (a closing terminal sends two) is ignored."""

    def first(signum: int, frame: object) -> None:
        stop.set()
        _installed(
            {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_IGN}
        )
        again = {
            int(signal.SIGINT): "; Ctrl-C again to stop at once",
            int(signal.SIGTERM): "; a second SIGTERM stops at once",
        }
        with contextlib.suppress(OSError):  # a closed terminal has nowhere to say it
            sys.stderr.write(f"Stopping (messages in flight are finished first{again.get(signum, '')})\n")

    before = _installed(dict.fromkeys(GENTLE_SIGNALS, first))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt inside (at a prompt, they mean no)."""
    before = _installed(dict.fromkeys(GENTLE_SIGNALS, signal.default_int_handler))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _settings() -> "Settings":
    from mailcast.clock import current_time, local_zone
    from mailcast.sending import Settings

    env = dict(os.environ)
    fixed = env.get("MAILCAST_NOW")
    first = current_time(env)
    clock = (lambda: first) if fixed else (lambda: current_time({}))
    return Settings(clock=clock, zone=local_zone(), env=env)


def _load(path: Path) -> "Campaign":
    from mailcast.campaign import load_campaign

    return load_campaign(path)


def _campaign_name(value: str) -> "tuple[str, Campaign | None]":
    """A campaign given as a file (loaded) or as the name it has in the state file.

    A file with problems still names its campaign (its `name` key, else its stem), so that
    status, report, pause and cancel work while someone is fixing it.
    """
    from mailcast.errors import ProblemsError

    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            campaign = _load(path)
        except ProblemsError as exc:
            if not path.is_file():
                raise
            if exc.partial is not None:
                return exc.partial.name, None
            return _name_in(path), None
        return campaign.name, campaign
    return value, None


def _name_in(path: Path) -> str:
    """The campaign's name as its file gives it, read as leniently as possible."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else path.stem


def _console() -> "Console":
    from mailcast.display import make_console

    return make_console()


# Commands -------------------------------------------------------------------


@command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="The folder to create the campaign in.", metavar="DIR")],
) -> None:
    """Scaffold a working campaign: campaign.yaml, recipients.csv, body.html, body.txt."""
    from mailcast.scaffold import scaffold_campaign

    written = scaffold_campaign(folder)
    console = _console()
    for path in written:
        console.print(f"created {path}")
    console.print(f"Next: mailcast check {folder / 'campaign.yaml'}")


@command("check")
def check_command(campaign_file: CampaignArg, as_json: JsonOpt = False) -> None:
    """Validate YAML, CSV, templates and every rendered row; print every problem with its place; send nothing."""
    from mailcast.checks import check_campaign
    from mailcast.display import print_json, show_problems
    from mailcast.errors import Problem, ProblemsError

    config_problems: list[Problem] = []
    try:
        campaign = _load(campaign_file)
    except ProblemsError as exc:
        if exc.partial is None:
            if not as_json:
                raise
            print_json({"ok": False, "errors": [p.as_dict() for p in exc.problems], "warnings": []})
            raise typer.Exit(int(exc.exit_code)) from None
        campaign, config_problems = exc.partial, exc.problems
    report = check_campaign(campaign)
    errors = config_problems + report.errors
    if as_json:
        print_json(
            {
                "ok": not errors,
                "errors": [p.as_dict() for p in errors],
                "warnings": [p.as_dict() for p in report.warnings],
                "rows": report.rows_checked,
                "sendable": len(report.sendable),
            }
        )
    else:
        console = _console()
        if errors or report.warnings:
            show_problems(console, errors, report.warnings)
        if not errors:
            console.print(
                f"OK: {campaign.name}: {len(report.sendable)} of {report.rows_checked} recipients ready to send."
            )
    if config_problems:
        raise typer.Exit(int(ExitCode.CONFIG))
    if errors:
        raise typer.Exit(int(ExitCode.DATA))


@command("preview")
def preview_command(
    campaign_file: CampaignArg,
    row: Annotated[
        int | None, typer.Option(help="Show the message of data row N (1 = first row after the header).", min=1)
    ] = None,
    email: Annotated[str | None, typer.Option(help="Show the message of the recipient with this address.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write one .eml file per recipient into DIR instead.", metavar="DIR")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="With --out: at most N files.", min=1)] = None,
) -> None:
    """Render without sending: one message to the terminal, or with --out one .eml file per recipient."""
    from mailcast.preview import preview_message, write_previews

    campaign = _load(campaign_file)
    settings = _settings()
    console = _console()
    if out is not None:
        written = write_previews(campaign, out, now=settings.clock(), limit=limit)
        console.print(f"Wrote {len(written)} message(s) to {out}/")
        return
    from mailcast.display import show_message

    message = preview_message(campaign, now=settings.clock(), row=row, email=email)
    show_message(console, message.data, row=message.row)


@command("send")
def send_command(
    ctx: typer.Context,
    campaign_file: CampaignArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render and count only: connect to nothing, change no state.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    limit: Annotated[
        int | None, typer.Option(help="Send at most N messages now; the rest wait for the next send.", min=1)
    ] = None,
    resend_in_doubt: Annotated[
        bool, typer.Option("--resend-in-doubt", help="Send again to recipients left in doubt by a crash.")
    ] = False,
    again: Annotated[
        bool, typer.Option("--again", help="Start a new run of a campaign whose last run finished.")
    ] = False,
    new_state: Annotated[
        bool,
        typer.Option(
            "--new-state",
            help="Start over in this state file although the campaign's runs are recorded in another one.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    state: StateOpt = None,
) -> None:
    """Start or continue this campaign's run now."""
    from mailcast.display import LogProgress, TerminalProgress
    from mailcast.sending import SendOptions, SendPlan, send_campaign

    campaign = _load(campaign_file)
    settings = _settings()
    store = _open_store(ctx, must_exist=dry_run)
    console = _console()
    options = SendOptions(
        dry_run=dry_run, limit=limit, resend_in_doubt=resend_in_doubt, again=again, new_state=new_state
    )

    def confirm(plan: SendPlan) -> bool:
        if yes or not sys.stdin.isatty():
            return True
        cap = plan.remaining_today
        now_count = plan.to_send if cap is None else min(plan.to_send, cap)
        if limit is not None:
            now_count = min(now_count, limit)
        question = (
            f"Send {now_count} message(s) of {plan.campaign.name} from {plan.campaign.sender} to {plan.destination}?"
        )
        if plan.resume_at is not None:
            question = f"{plan.blocked} Record the run so that send or run-due sends it then?"
        if plan.in_doubt and not resend_in_doubt:
            question = f"{plan.in_doubt} recipient(s) are in doubt and will not be resent. " + question
        if plan.content_change:
            question = f"{plan.content_change} {question}"
        try:
            with _signals_interrupt():
                return typer.confirm(question, default=False, err=True)
        except typer.Abort:  # Ctrl-C or end of input at the prompt: the answer is no
            return False

    progress: TerminalProgress | LogProgress | None = None
    if not as_json:
        progress = TerminalProgress(console) if console.is_terminal else LogProgress(console)
    try:
        with _stops_gently(settings.stop):
            outcome = send_campaign(campaign, store, settings, options, progress=progress, confirm=confirm)
    finally:
        if progress is not None:
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): the state file has it all
                progress.stop()
        if store is not None:
            store.close()
    with contextlib.suppress(OSError):
        _show_outcome(console, outcome, as_json=as_json)
    raise typer.Exit(int(outcome.exit_code))


def _show_outcome(console: "Console", outcome: "SendOutcome", *, as_json: bool) -> None:
    from mailcast.display import print_json

    if as_json:
        print_json(
            {
                "campaign": outcome.campaign,
                "run": outcome.run.id if outcome.run else None,
                "exit_code": int(outcome.exit_code),
                "summary": outcome.summary,
                "counts": outcome.counts,
                "sent_now": outcome.sent_now,
                "failed_now": outcome.failed_now,
                "deferred_now": outcome.deferred_now,
                "in_doubt": outcome.in_doubt,
                "notes": outcome.notes,
            }
        )
    else:
        for note in outcome.notes:
            console.print(note, soft_wrap=True, markup=False)
        if outcome.in_doubt:
            console.print(
                f"In doubt (not resent; use --resend-in-doubt once you know they did not arrive): {', '.join(outcome.in_doubt)}",
                soft_wrap=True,
                markup=False,
            )
        console.print(outcome.summary, soft_wrap=True, markup=False)


@command("test")
def send_test_command(
    campaign_file: CampaignArg,
    to: Annotated[list[str], typer.Option("--to", help="A test address (repeat for more, at most 20).")],
    row: Annotated[
        int | None, typer.Option(help="Render the message of data row N (default: the first).", min=1)
    ] = None,
) -> None:
    """Send one row's message to test addresses; not recorded as campaign progress."""
    from mailcast.sending import send_test

    campaign = _load(campaign_file)
    results = send_test(campaign, _settings(), to=to, row=row)
    console = _console()
    for address, delivery in results:
        console.print(f"{delivery.status}: {address}: {delivery.reply}", markup=False, soft_wrap=True)
    if any(d.status != "sent" for _, d in results):
        raise typer.Exit(int(ExitCode.UNDELIVERED))


@command("run-due")
def run_due_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Campaign files or folders (default: campaigns/).", metavar="PATH")
    ] = None,
    state: StateOpt = None,
) -> None:
    """The cron entry point: start due scheduled and recurring runs, continue paused or deferred runs whose time has come.

    Prints nothing and exits 0 when nothing is due.
    """
    from mailcast.display import LogProgress, make_console, show_error
    from mailcast.due import run_due, worst

    console = _console()
    store = _open_store(ctx)
    assert store is not None
    settings = _settings()
    try:
        with _stops_gently(settings.stop):
            results = run_due(
                list(paths or [Path("campaigns")]), store, settings, progress=lambda c: LogProgress(console)
            )
    finally:
        store.close()
    errors = make_console(stderr=True)
    for result in results:
        if result.error is not None:
            errors.print(f"{result.file}:", markup=False)
            show_error(errors, result.error)
        elif result.outcome is not None:
            for note in result.outcome.notes:
                console.print(note, markup=False, soft_wrap=True)
            console.print(result.outcome.summary, markup=False, soft_wrap=True)
    raise typer.Exit(int(worst([r.exit_code for r in results])))


def _scheduled_campaigns(only: "Campaign | None") -> "list[Campaign]":
    """For status: the campaign given, else every loadable campaign under campaigns/."""
    if only is not None:
        return [only]
    from mailcast.due import campaign_files

    found = []
    folder = Path("campaigns")
    if folder.is_dir():
        for file in campaign_files([folder]):
            try:
                found.append(_load(file))
            except MailcastError:
                continue
    return found


@command("status")
def status_command(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Argument(help="A campaign file or name (default: all).", metavar="[CAMPAIGN]")
    ] = None,
    as_json: JsonOpt = False,
    state: StateOpt = None,
) -> None:
    """The task list: one row per run with type, status, progress and when it resumes."""
    from mailcast.display import print_json, status_table
    from mailcast.reports import build_status

    name, loaded = _campaign_name(campaign) if campaign else (None, None)
    settings = _settings()
    with _reading_store(ctx) as store:
        rows = build_status(store, _scheduled_campaigns(loaded), only=name, now=settings.clock(), zone=settings.zone)
    if as_json:
        print_json([r.as_dict() for r in rows])
    else:
        status_table(_console(), rows)


def _change_status(ctx: typer.Context, campaign: str, action: str) -> None:
    from mailcast import controls

    change = {"pause": controls.pause_run, "resume": controls.resume_run, "cancel": controls.cancel_run}[action]
    name, _ = _campaign_name(campaign)
    now = _settings().clock()
    with _reading_store(ctx) as store:
        message = change(store, name, now=now)
    _console().print(message, markup=False)


@command("pause")
def pause_command(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="A campaign file or name.", metavar="CAMPAIGN")],
    state: StateOpt = None,
) -> None:
    """Pause the campaign's run; a running send stops after the message in flight."""
    _change_status(ctx, campaign, "pause")


@command("resume")
def resume_command(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="A campaign file or name.", metavar="CAMPAIGN")],
    state: StateOpt = None,
) -> None:
    """Resume a run paused by hand, so that send or run-due continues it."""
    _change_status(ctx, campaign, "resume")


@command("cancel")
def cancel_command(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="A campaign file or name.", metavar="CAMPAIGN")],
    state: StateOpt = None,
) -> None:
    """Cancel the campaign's run; what was not sent is not sent."""
    _change_status(ctx, campaign, "cancel")


@command("warmup")
def warmup_command(ctx: typer.Context, as_json: JsonOpt = False, state: StateOpt = None) -> None:
    """Per sender domain: warm-up level, today's limit, sent today, remaining, when it resets."""
    from mailcast.display import print_json, warmup_table
    from mailcast.reports import build_warmup

    settings = _settings()
    with _reading_store(ctx) as store:
        rows = build_warmup(store, now=settings.clock(), zone=settings.zone)
    if as_json:
        print_json([r.as_dict() for r in rows])
    else:
        warmup_table(_console(), rows)


@command("report")
def report_command(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="A campaign file or name.", metavar="CAMPAIGN")],
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the recipients to this CSV file.", metavar="FILE")
    ] = None,
    run: Annotated[int | None, typer.Option(help="Report this run (default: the latest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --csv: overwrite an existing file.")] = False,
    as_json: JsonOpt = False,
    state: StateOpt = None,
) -> None:
    """Outcome per recipient and totals by status and recipient domain."""
    from mailcast.display import print_json, report_tables
    from mailcast.reports import build_report, write_report_csv

    if csv_file is not None and csv_file.exists() and not force:
        raise UsageError(
            f"{csv_file} already exists; report does not overwrite it", hint="Choose a new file, or add --force."
        )
    name, _ = _campaign_name(campaign)
    with _reading_store(ctx) as store:
        report = build_report(store, name, run_id=run)
    if csv_file is not None:
        write_report_csv(report, csv_file)
    if as_json:
        print_json(report.as_dict())
    else:
        report_tables(_console(), report)
        if csv_file is not None:
            _console().print(f"Wrote {len(report.recipients)} recipient(s) to {csv_file}")


# Suppression list ----------------------------------------------------------


@command("list", target=suppress_app)
def suppress_list(ctx: typer.Context, as_json: JsonOpt = False, state: StateOpt = None) -> None:
    """List suppressed addresses (expired entries are left out)."""
    from mailcast.display import print_json

    settings = _settings()
    with _reading_store(ctx) as store:
        entries = store.suppressions(now=settings.clock()) if store else []
    if as_json:
        print_json(
            [
                {"email": e.email, "reason": e.reason, "added_at": e.added_at, "expires_at": e.expires_at}
                for e in entries
            ]
        )
        return
    from mailcast.display import show_table

    if not entries:
        _console().print("The suppression list is empty.")
        return
    cells = [[e.email, e.reason, e.added_at[:16], (e.expires_at or "never")[:16]] for e in entries]
    show_table(_console(), ["email", "reason", "added", "expires"], cells)


def _keys(addresses: list[str]) -> list[tuple[str, str]]:
    from mailcast.campaign import check_address

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


def _expiry(days: int | None) -> Any:
    from datetime import timedelta

    return _settings().clock() + timedelta(days=days) if days else None


@command("add", target=suppress_app)
def suppress_add(
    ctx: typer.Context,
    addresses: Annotated[list[str], typer.Argument(help="Addresses to suppress.", metavar="ADDR")],
    reason: Annotated[str, typer.Option(help="Why (shown in lists and reports).")] = "blocked by hand",
    days: Annotated[int | None, typer.Option(help="Expire after N days (default: never).", min=1)] = None,
    state: StateOpt = None,
) -> None:
    """Add addresses to the suppression list."""
    pairs = _keys(addresses)
    store = _open_store(ctx)
    assert store is not None
    with store:
        count = store.suppress(pairs, reason=reason, now=_settings().clock(), expires_at=_expiry(days))
    _console().print(f"Suppressed {count} address(es).")


@command("remove", target=suppress_app)
def suppress_remove(
    ctx: typer.Context,
    addresses: Annotated[list[str], typer.Argument(help="Addresses to take off the list.", metavar="ADDR")],
    state: StateOpt = None,
) -> None:
    """Take addresses off the suppression list."""
    store = _open_store(ctx, must_exist=True)
    count = 0
    if store is not None:
        with store:
            count = store.unsuppress(a.strip().lower() for a in addresses)
    _console().print(f"Removed {count} address(es).")


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
    from mailcast.recipients import load_recipients

    try:
        first_line = csv_file.read_text(encoding="utf-8-sig").lstrip().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        first_line = ""  # load_recipients says what is wrong with the file
    headerless = "@" in first_line and "email" not in [c.strip() for c in first_line.split(",")]
    loaded = load_recipients(csv_file, "email", shown=str(csv_file), max_rows=1_000_000, headerless=headerless)
    if loaded.errors:
        from mailcast.errors import ProblemsError

        raise ProblemsError(problems=loaded.errors)
    store = _open_store(ctx)
    assert store is not None
    pairs = [(r.email, r.key) for r in loaded.rows]
    with store:
        count = store.suppress(pairs, reason=reason, now=_settings().clock(), expires_at=_expiry(days))
    _console().print(f"Suppressed {count} address(es) from {csv_file}.")


def main() -> None:
    app()
