"""Commands on runs in the state file: status, pause, resume, cancel, warmup, report.

(Annotations are real objects, not strings: Typer reads each signature to build the help.)
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailcast.cli import (
    JsonOpt,
    StateOpt,
    campaign_name,
    command,
    console_for_output,
    read_settings,
    reading_store,
)
from mailcast.errors import UsageError

if TYPE_CHECKING:
    from mailcast.campaign import Campaign


def _campaigns_under(folder: Path) -> "list[Campaign]":
    """For status: every campaign under the folder that loads (run-due's own folder)."""
    if not folder.is_dir():
        return []
    from mailcast.due import loadable_campaigns

    return loadable_campaigns(folder)


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

    name, loaded = campaign_name(campaign) if campaign else (None, None)
    settings = read_settings()
    with reading_store(ctx) as store:
        scheduled = [loaded] if loaded is not None else _campaigns_under(Path("campaigns"))
        rows = build_status(store, scheduled, only=name, now=settings.clock(), zone=settings.zone)
    if as_json:
        print_json([r.as_dict() for r in rows])
    else:
        status_table(console_for_output(), rows)


def _change_status(ctx: typer.Context, campaign: str, action: str) -> None:
    from mailcast import controls

    change = {"pause": controls.pause_run, "resume": controls.resume_run, "cancel": controls.cancel_run}[action]
    name, _ = campaign_name(campaign)
    now = read_settings().clock()
    with reading_store(ctx) as store:
        message = change(store, name, now=now)
    console_for_output().print(message, markup=False)


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

    settings = read_settings()
    with reading_store(ctx) as store:
        rows = build_warmup(store, now=settings.clock(), zone=settings.zone)
    if as_json:
        print_json([r.as_dict() for r in rows])
    else:
        warmup_table(console_for_output(), rows)


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

    if csv_file is not None and csv_file.is_dir():
        raise UsageError(f"{csv_file} is a folder", hint="Give --csv the path of a file to write, such as report.csv.")
    if csv_file is not None and csv_file.exists() and not force:
        raise UsageError(
            f"{csv_file} already exists; report does not overwrite it", hint="Choose a new file, or add --force."
        )
    name, _ = campaign_name(campaign)
    with reading_store(ctx) as store:
        report = build_report(store, name, run_id=run)
    if csv_file is not None:
        write_report_csv(report, csv_file)
    if as_json:
        print_json(report.as_dict())
    else:
        report_tables(console_for_output(), report)
        if csv_file is not None:
            console_for_output().print(f"Wrote {len(report.recipients)} recipient(s) to {csv_file}")
