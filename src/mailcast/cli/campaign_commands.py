"""Commands on a campaign file: init, check, preview, send, test, run-due.

(Annotations are real objects, not strings: Typer reads each signature to build the help.)
"""

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailcast.cli import (
    CampaignArg,
    JsonOpt,
    StateOpt,
    ask_missing_password,
    command,
    console_for_output,
    load,
    open_store,
    read_settings,
    state_path,
)
from mailcast.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from mailcast.errors import Problem
    from mailcast.outcomes import SendOutcome
    from mailcast.planning import SendOptions, SendPlan


@command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="The folder to create the campaign in.", metavar="DIR")],
) -> None:
    """Scaffold a working campaign: campaign.yaml, recipients.csv, body.html, body.txt."""
    from mailcast.scaffold import scaffold_campaign

    written = scaffold_campaign(folder)
    console = console_for_output()
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
        campaign = load(campaign_file)
    except ProblemsError as exc:
        if exc.partial is None:
            if not as_json:
                raise
            print_json(
                {"ok": False, "errors": [p.as_dict() for p in exc.problems], "warnings": [], "rows": 0, "sendable": 0}
            )
            raise typer.Exit(int(exc.exit_code)) from None
        campaign, config_problems = exc.partial, exc.problems
    report = check_campaign(campaign, env=os.environ)  # a password variable not set here is a warning
    errors = config_problems + report.errors
    if as_json:
        print_json(report.as_dict(file_problems=config_problems))
    else:
        console = console_for_output()
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


def _other_rows(warnings: "Sequence[Problem]") -> None:
    """Other rows' problems, on stderr: this row can be looked at; the campaign cannot be sent yet."""
    if warnings:
        from mailcast.display import make_console, show_problems

        show_problems(make_console(stderr=True), [], warnings)


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

    campaign = load(campaign_file)
    settings = read_settings()
    console = console_for_output()
    if out is not None:
        written = write_previews(campaign, out, now=settings.clock(), limit=limit)
        console.print(f"Wrote {len(written)} message(s) to {out}/")
        return
    from mailcast.display import show_message

    message = preview_message(campaign, now=settings.clock(), row=row, email=email)
    show_message(console, message.data, row=message.row)
    _other_rows(message.warnings)


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
    from mailcast.integrity import check_state_file
    from mailcast.sending import SendOptions, send_campaign
    from mailcast.signals import stops_gently

    campaign = load(campaign_file)
    settings = read_settings()
    if not dry_run:  # a dry run connects to nothing
        ask_missing_password(campaign, settings)
    store = open_store(ctx, must_exist=True)
    if store is None and not dry_run:  # no state file is made for a campaign whose runs are in another one
        check_state_file(campaign, None, new_state=new_state, path=state_path(ctx))
        store = open_store(ctx)
    console = console_for_output()
    options = SendOptions(
        dry_run=dry_run, limit=limit, resend_in_doubt=resend_in_doubt, again=again, new_state=new_state
    )

    said: list[str] = []  # notes already shown before sending
    confirm = _Confirmation(console, options, ask=not yes and sys.stdin.isatty(), quiet=as_json, said=said)

    progress: TerminalProgress | LogProgress | None = None
    if not as_json:
        progress = TerminalProgress(console) if console.is_terminal else LogProgress(console)
    try:
        with stops_gently(settings.stop):
            outcome = send_campaign(campaign, store, settings, options, progress=progress, confirm=confirm)
    finally:
        if progress is not None:
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): the state file has it all
                progress.stop()
        if store is not None:
            store.close()
    with contextlib.suppress(OSError):
        _show_outcome(console, outcome, as_json=as_json, said=said)
    raise typer.Exit(int(outcome.exit_code))


class _Confirmation:
    """Asked before a new run is recorded or mail goes: at a terminal, a question (Ctrl-C means no);
    under --yes or without a terminal, yes, with a change of content said before anything is sent."""

    def __init__(self, console: "Console", options: "SendOptions", *, ask: bool, quiet: bool, said: list[str]) -> None:
        self.console, self.options, self.ask, self.quiet, self.said = console, options, ask, quiet, said

    def __call__(self, plan: "SendPlan") -> bool:
        if not self.ask:
            if plan.content_change and not self.quiet:
                self.console.print(plan.content_change, soft_wrap=True, markup=False)
                self.said.append(plan.content_change)
            return True
        from mailcast.signals import signals_interrupt

        try:
            with signals_interrupt():
                answer = bool(typer.confirm(self._question(plan), default=False, err=True))
        except typer.Abort:  # Ctrl-C or end of input at the prompt: the answer is no
            sys.stderr.write("\n")
            return False
        if plan.content_change:
            self.said.append(plan.content_change)
        return answer

    def _question(self, plan: "SendPlan") -> str:
        cap, limit = plan.allowance.remaining, self.options.limit
        now_count = min(n for n in (plan.to_send, cap, limit) if n is not None)
        question = (
            f"Send {now_count} message(s) of {plan.campaign.name} from {plan.campaign.sender} to {plan.destination}?"
        )
        if plan.resume_at is not None:
            question = f"{plan.blocked} Record the run so that send or run-due sends it then?"
        if plan.in_doubt and not self.options.resend_in_doubt:
            question = f"{plan.in_doubt} recipient(s) are in doubt and will not be resent. " + question
        if plan.content_change:
            question = f"{plan.content_change} {question}"
        return question


def _show_outcome(console: "Console", outcome: "SendOutcome", *, as_json: bool, said: list[str]) -> None:
    from mailcast.display import print_json

    if as_json:
        print_json(outcome.as_dict())
    else:
        for note in outcome.notes:
            if note not in said:
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
    from mailcast.testsend import send_test

    campaign = load(campaign_file)
    settings = read_settings()
    ask_missing_password(campaign, settings)
    results = send_test(campaign, settings, to=to, row=row)
    console = console_for_output()
    for address, delivery in results:
        console.print(f"{delivery.status}: {address}: {delivery.reply}", markup=False, soft_wrap=True)
    _other_rows(results.warnings)
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
    from mailcast.signals import stops_gently

    console = console_for_output()
    store = open_store(ctx)
    assert store is not None
    settings = read_settings()
    try:
        with stops_gently(settings.stop):
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
